import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { isIP } from 'node:net';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { InvalidInputError } from '../../errors.js';
import { configPath, readSecret } from '../context.js';
import { AttributeType, Code, attr, formatAttribute, getAttribute, readText, type RadiusAttribute } from '../../radius/codec/index.js';
import { sendRequest } from '../../radius/request-client.js';

const CODE_NAMES: Record<number, string> = { [Code.AccessAccept]: 'Access-Accept', [Code.AccessReject]: 'Access-Reject', [Code.AccessChallenge]: 'Access-Challenge' };

function parseServer(server: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(server);
  const host = m?.[1];
  if (!host || isIP(host) === 0) throw new InvalidInputError(`--server: '${server}' is not HOST:PORT with an IP address`);
  return { host, port: m[2] === undefined ? 1812 : Number(m[2]) };
}

async function configSecret(option: string | undefined): Promise<Buffer> {
  const { config } = await loadConfig(configPath(option), { generateSecrets: false });
  const first = config.clients[0];
  if (!first) throw new InvalidInputError('no client in the configuration: pass --secret-file');
  return first.secret;
}

export function registerTry(program: Command): void {
  program
    .command('try')
    .description('act as a NAS: send an Access-Request (with Message-Authenticator), answer a challenge, print the reply')
    .requiredOption('--server <host:port>', 'the gateway (or any RADIUS server)')
    .option('--secret-file <file>', 'file holding the shared secret (default: the secret of the first client in the config)')
    .option('-c, --config <file>', 'configuration file (for the default secret)')
    .requiredOption('--user <name>', 'User-Name')
    .option('--password <password>', 'User-Password (add ,CODE for an inline code, ,push for a push); visible to other users in `ps`: prefer --password-stdin')
    .option('--password-stdin', 'read the User-Password from the first line of stdin')
    .option('--code <code>', 'answer an Access-Challenge with this code (else asked on the terminal)')
    .option('--nas-identifier <id>', 'NAS-Identifier', 'mfa-gateway-try')
    .option('--timeout <ms>', 'per try (a push or call waits up to the client\'s approval_timeout_seconds: use --timeout 70000 --tries 1)', '3000')
    .option('--tries <n>', 'retransmissions of the same packet', '3')
    .action(async (opts: { server: string; secretFile?: string; config?: string; user: string; password?: string; passwordStdin?: boolean; code?: string; nasIdentifier: string; timeout: string; tries: string }) => {
      const { host, port } = parseServer(opts.server);
      const secret = opts.secretFile !== undefined ? Buffer.from((await readFile(opts.secretFile, 'utf8')).replace(/\r?\n$/, ''), 'utf8') : await configSecret(opts.config);
      const base: RadiusAttribute[] = [attr.text(AttributeType.UserName, opts.user), attr.text(AttributeType.NasIdentifier, opts.nasIdentifier)];
      const timeoutMs = Number(opts.timeout);
      const tries = Number(opts.tries);
      if ((opts.password === undefined) === (opts.passwordStdin !== true)) throw new InvalidInputError('pass --password or --password-stdin (one of them)');
      const password = opts.password ?? (await readSecret('Password: ', true));
      let answer: Buffer = Buffer.from(password, 'utf8');
      let extra: RadiusAttribute[] = [];
      for (let round = 0; round < 5; round++) {
        const { reply, roundTripMs } = await sendRequest({ host, port, secret, attributes: [...base, ...extra], password: answer, timeoutMs, tries });
        process.stdout.write(`Received ${CODE_NAMES[reply.code] ?? `code ${reply.code}`} id ${reply.identifier} from ${host}:${port} in ${roundTripMs.toFixed(1)} ms\n`);
        for (const a of reply.attributes) {
          const { name, value } = formatAttribute(a);
          process.stdout.write(`\t${name} = ${a.type === AttributeType.State ? `<${a.value.length} bytes>` : value}\n`);
        }
        if (reply.code === Code.AccessAccept) return;
        if (reply.code !== Code.AccessChallenge) {
          process.exitCode = 1;
          return;
        }
        const state = getAttribute(reply, AttributeType.State);
        if (!state) throw new InvalidInputError('the Access-Challenge carries no State');
        let code = opts.code;
        if (code === undefined || round > 0) {
          if (!process.stdin.isTTY) throw new InvalidInputError('challenged: pass --code or run on a terminal');
          const prompt = getAttribute(reply, AttributeType.ReplyMessage);
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          code = await rl.question(`${prompt === undefined ? 'Code' : readText(prompt)}: `);
          rl.close();
        }
        answer = Buffer.from(code, 'utf8');
        extra = [attr.octets(AttributeType.State, state)];
      }
      process.exitCode = 1;
    });
}
