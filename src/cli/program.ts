import { Command } from 'commander';
import { registerAudit } from './commands/audit.js';
import { registerBackup } from './commands/backup.js';
import { registerBypass } from './commands/bypass.js';
import { registerDevices } from './commands/devices.js';
import { registerServe } from './commands/serve.js';
import { registerSync } from './commands/sync.js';
import { registerTokens } from './commands/tokens.js';
import { registerTry } from './commands/try.js';
import { registerUsers } from './commands/users.js';

export function buildProgram(): Command {
  const program = new Command('mfa-gateway')
    .description('second-factor gateway for RADIUS logins')
    .configureOutput({
      // One line on stderr per error (the CLI contract), with the hint on the same line.
      outputError: (message, write) => write(`${message.trimEnd()} (run with --help for usage)\n`),
    })
    .exitOverride();
  registerServe(program);
  registerUsers(program);
  registerTokens(program);
  registerAudit(program);
  registerBackup(program);
  registerTry(program);
  registerSync(program);
  registerBypass(program);
  registerDevices(program);
  // exitOverride and output settings are inherited only by commands added after they are set.
  const inherit = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.commands.forEach(inherit);
  };
  program.commands.forEach(inherit);
  return program;
}
