import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that may carry a secret anywhere in a log object. pino replaces their values, so a
 * careless `log.debug({ attempt })` still never prints a password, a code or a key.
 */
export const REDACT_PATHS: readonly string[] = [
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'code',
  '*.code',
  'response',
  '*.response',
  'secret',
  '*.secret',
  'secrets',
  '*.secrets',
  'key',
  '*.key',
  'token',
  '*.token',
  'state',
  '*.state',
  'userPassword',
  '*.userPassword',
  'pin',
  '*.pin',
  'otpauthUri',
  '*.otpauthUri',
  'bindPassword',
  '*.bindPassword',
  'bind_password',
  '*.bind_password',
  'mppeKeys',
  '*.mppeKeys',
  'continuation',
  '*.continuation',
  'req.headers.authorization',
  'req.headers.cookie',
];

export interface LogSettings {
  level: string;
}

/**
 * One JSON object per line. A component binds its own `module` (and its name: `directory`,
 * `upstream`, …) on the logger it is given, and hands that same logger, unbound, to the parts it
 * builds: pino writes a child's bindings after its parent's without merging them, so a key bound
 * at two levels appears twice in the line, which strict JSON consumers (Elasticsearch) refuse.
 */
export function createLogger(settings: LogSettings, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: { pid: process.pid },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    serializers: { err: serializeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * pino's error serializer, with the error's `code` (a GatewayError's stable code, a system error's
 * ENOSPC or ECONNREFUSED) written as `errorCode`: the redaction of `*.code`, there for one-time
 * codes, would otherwise print every logged error's code as "[redacted]".
 */
function serializeError(err: unknown): unknown {
  const out: unknown = pino.stdSerializers.err(err as Error);
  if (typeof out !== 'object' || out === null || !('code' in out)) return out;
  const { code, ...rest } = out as Record<string, unknown>;
  return { ...rest, errorCode: code };
}

/** A logger that drops everything, for CLI commands and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
