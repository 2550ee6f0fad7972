import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { spawnPeer } from './peer-process.js';
import type { PeerProcess } from './peer-process.js';
import { assertLoopback } from './ports.js';
import { trackChild } from './process-reaper.js';

/**
 * The real gateway process for end-to-end tests: `node bin/mfa-gateway.js serve --config F`
 * from the repository root, exactly what `npx mfa-gateway serve` runs. Every line it prints is
 * kept (memory and `<dir>/gateway.log`), as is every CLI run's output (`<dir>/cli.log`), so a
 * test can grep all output of the run for secrets.
 */

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const GATEWAY_BIN = join(REPO_ROOT, 'bin', 'mfa-gateway.js');

export interface GatewayConfigOptions {
  radiusPort: number;
  acctPort: number;
  /** Absolute path (the data directory: store, generated secrets). */
  dataDir: string;
  /** Client secret file, relative to dataDir (default radius-secret, generated on first start). */
  clientSecretFile?: string;
  /** Listen address (default 127.0.0.1; loopback only). */
  address?: string;
  /** The client's source addresses (default [127.0.0.1]). */
  clientAddresses?: string[];
  requireMessageAuthenticator?: boolean;
  firstFactor?: string;
  methods?: string[];
  unenrolled?: 'reject' | 'allow';
  logLevel?: string;
  maxFailures?: number;
  lockMinutes?: number;
  /** store.sqlite.fsync_before_reply (default: the gateway's, true). */
  fsyncBeforeReply?: boolean;
  /** YAML appended verbatim: top-level keys this function does not write (challenge, totp, hotp, gateway). */
  extra?: string;
}

const q = (s: string): string => JSON.stringify(s); // a JSON string is a YAML double-quoted scalar

/** A config of the shape of conf/gateway.yaml, for one client and one policy. */
export function gatewayConfig(opts: GatewayConfigOptions): string {
  const address = opts.address ?? '127.0.0.1';
  assertLoopback(address);
  const addresses = (opts.clientAddresses ?? ['127.0.0.1']).map(q).join(', ');
  const methods = (opts.methods ?? ['totp']).map(q).join(', ');
  return `# written by test/peers/gateway.ts
data_dir: ${q(opts.dataDir)}
keys:
  master_key: {file: master.key, generate: true}
store:
  sqlite:
    path: gateway.db${opts.fsyncBeforeReply === undefined ? '' : `
    fsync_before_reply: ${opts.fsyncBeforeReply}`}
log:
  level: ${opts.logLevel ?? 'info'}
radius:
  listen:
    - {address: ${q(address)}, port: ${opts.radiusPort}}
  accounting_listen:
    - {address: ${q(address)}, port: ${opts.acctPort}}
clients:
  - name: test-nas
    addresses: [${addresses}]
    secret: {file: ${q(opts.clientSecretFile ?? 'radius-secret')}, generate: true}
    policy: default
    require_message_authenticator: ${opts.requireMessageAuthenticator ?? true}
policies:
  default:
    first_factor: ${q(opts.firstFactor ?? 'local')}
    methods: [${methods}]
    unenrolled: ${opts.unenrolled ?? 'reject'}
    fail_mode: secure
lockout:
  max_failures: ${opts.maxFailures ?? 5}
  lock_minutes: ${opts.lockMinutes ?? 15}
${opts.extra ?? ''}
`;
}

export interface StartGatewayOptions {
  /** The whole YAML config (gatewayConfig() or hand-written). */
  configYaml: string;
  /** Where gateway.yaml and the logs go (created if missing). */
  dir: string;
  /** Extra environment for the gateway and CLI runs (e.g. for `{env: NAME}` secrets). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Node.js options before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] to profile it. */
  nodeArgs?: string[];
  /** Register stop() as a teardown of this tap test. */
  t?: { teardown(fn: () => unknown): unknown };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunningGateway {
  radiusPort: number;
  acctPort: number;
  configFile: string;
  dataDir: string;
  /** The first client's secret file, when it is a {file:} secret. */
  secretFile: string | undefined;
  logFile: string;
  process: ChildProcess;
  pid: number;
  /** The parsed `ready` log line. */
  ready: Record<string, unknown>;
  /** Everything the gateway printed so far (stdout and stderr). */
  logs(): string;
  /** logs() plus the output of every cli() run: what a secret-leak check greps. */
  allLogs(): string;
  /** The first client's shared secret (read from secretFile). */
  secret(): string;
  /** `node bin/mfa-gateway.js <args> --config <file>`; `input` is written to stdin. */
  cli(args: string[], input?: string): Promise<CliResult>;
  /** SIGTERM (or `signal`), SIGKILL after 10 s; resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  readonly peer: PeerProcess;
}

interface ConfigShape {
  data_dir?: string;
  radius?: { listen?: Array<{ port?: number }>; accounting_listen?: Array<{ port?: number }> };
  clients?: Array<{ secret?: { file?: string } }>;
}

export async function startGateway(opts: StartGatewayOptions): Promise<RunningGateway> {
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const configFile = join(opts.dir, 'gateway.yaml');
  writeFileSync(configFile, opts.configYaml, { mode: 0o600 });
  const shape = (parseYaml(opts.configYaml) ?? {}) as ConfigShape;
  const dataDir = resolve(opts.dir, shape.data_dir ?? '../data');
  const secretName = shape.clients?.[0]?.secret?.file;
  const secretFile = secretName === undefined ? undefined : resolve(dataDir, secretName);
  const env = { ...process.env, ...opts.env };
  const cliLogFile = join(opts.dir, 'cli.log');
  const cliOutput: string[] = [];

  const peer = spawnPeer({
    name: 'mfa-gateway',
    command: process.execPath,
    args: [...(opts.nodeArgs ?? []), GATEWAY_BIN, 'serve', '--config', configFile],
    cwd: REPO_ROOT,
    env,
    logFile: join(opts.dir, 'gateway.log'),
    marker: configFile,
  });

  let ready: Record<string, unknown>;
  try {
    const line = await peer.waitForLine((l) => parseJson(l)?.msg === 'ready', opts.readyTimeoutMs ?? 60000, "'ready' log line");
    ready = parseJson(line) ?? {};
  } catch (err) {
    await peer.stop('SIGKILL');
    throw err;
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => (await peer.stop(signal, 10000)).code;
  opts.t?.teardown(() => stop());

  return {
    radiusPort: shape.radius?.listen?.[0]?.port ?? 1812,
    acctPort: shape.radius?.accounting_listen?.[0]?.port ?? 1813,
    configFile,
    dataDir,
    secretFile,
    logFile: peer.logFile,
    process: peer.child,
    pid: peer.pid,
    ready,
    logs: () => peer.logs(),
    allLogs: () => [peer.logs(), ...cliOutput].join('\n'),
    secret() {
      if (secretFile === undefined) throw new Error('the first client has no {file:} secret');
      return readFileSync(secretFile, 'utf8').trim();
    },
    async cli(args, input) {
      const result = await runCli([...args, '--config', configFile], env, configFile, input);
      // Only outputs are logged: args and stdin may hold the test's own passwords.
      const record = `--- mfa-gateway ${args[0] ?? ''} (exit ${result.code})\n${result.stdout}${result.stderr}`;
      cliOutput.push(record);
      appendFileSync(cliLogFile, `${record}\n`);
      return result;
    },
    stop,
    peer,
  };
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `node bin/mfa-gateway.js <args>` from the repository root, tracked by `marker`; `input` goes to stdin; SIGKILL after 60 s. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, marker: string, input: string | undefined): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [GATEWAY_BIN, ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    trackChild(child, 'mfa-gateway cli', marker);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined); // a command that does not read stdin may exit first
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (signal === null ? '' : `\n[killed by ${signal}]\n`);
      resolvePromise({ code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr });
    });
  });
}
