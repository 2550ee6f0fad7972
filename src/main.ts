import { CommanderError } from 'commander';
import { buildProgram } from './cli/program.js';
import { ConfigError, GatewayError, errorMessage } from './errors.js';

/**
 * Process entry: runs one command and returns its exit code. Errors end as one clear line on
 * stderr (config errors as one `path.to.key: message` line each) and a non-zero code.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof ConfigError) {
      process.stderr.write(`mfa-gateway: ${err.message}\n`);
      for (const issue of err.issues) process.stderr.write(`${issue}\n`);
      return 2;
    }
    const code = err instanceof GatewayError ? ` [${err.code}]` : '';
    process.stderr.write(`mfa-gateway: ${errorMessage(err)}${code}\n`);
    return 1;
  }
}
