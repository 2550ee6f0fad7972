import type { Command } from 'commander';
import QRCode from 'qrcode';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import { enrolOathToken } from '../../verify/oath.js';
import { withStore } from '../context.js';
import { requireUser } from './users.js';

const BASE32 = /^[A-Z2-7]+=*$/;

export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('OATH tokens (TOTP/HOTP): enrol, list, delete');

  tokens
    .command('add-totp <user>')
    .description('enrol a TOTP token; prints the otpauth:// URI and a QR code for the app')
    .option('-c, --config <file>', 'configuration file')
    .option('--secret <base32>', 'import an existing seed instead of generating one')
    .option('--digits <n>', '6 or 8', '6')
    .option('--period <seconds>', 'time step', '30')
    .option('--algorithm <alg>', 'SHA1, SHA256 or SHA512', 'SHA1')
    .option('--hotp', 'counter-based (HOTP) instead of time-based')
    .option('--label <label>', 'name shown in the app (default: the UPN or user name)')
    .option('--no-qr', 'do not print the QR code')
    .action(
      async (
        name: string,
        opts: { config?: string; secret?: string; digits: string; period: string; algorithm: string; hotp?: boolean; label?: string; qr: boolean },
      ) => {
        const digits = Number(opts.digits);
        const period = Number(opts.period);
        const algorithm = opts.algorithm.toUpperCase();
        if (digits !== 6 && digits !== 8) throw new InvalidInputError('--digits must be 6 or 8');
        if (!Number.isInteger(period) || period < 10 || period > 300) throw new InvalidInputError('--period must be 10..300 seconds');
        if (algorithm !== 'SHA1' && algorithm !== 'SHA256' && algorithm !== 'SHA512') throw new InvalidInputError('--algorithm must be SHA1, SHA256 or SHA512');
        const secret = opts.secret?.replace(/[\s-]/g, '').toUpperCase();
        if (secret !== undefined && (!BASE32.test(secret) || secret.replace(/=+$/, '').length < 16)) {
          throw new InvalidInputError('--secret must be base32 (A-Z, 2-7) of at least 16 characters (80 bits)');
        }
        await withStore(opts.config, async ({ store, keys, config }) => {
          const user = await requireUser(store, name);
          const enrolled = await enrolOathToken(store, keys, user, {
            issuer: config.totp.issuer,
            kind: opts.hotp ? 'hotp' : 'totp',
            digits,
            period,
            algorithm,
            ...(secret === undefined ? {} : { secretBase32: secret }),
            ...(opts.label === undefined ? {} : { label: opts.label }),
          });
          process.stdout.write(`${enrolled.uri}\n`);
          if (opts.qr && process.stdout.isTTY) process.stdout.write(await QRCode.toString(enrolled.uri, { type: 'terminal', small: true }));
          process.stderr.write(`enrolled ${enrolled.token.kind} token ${enrolled.token.id} for ${user.username}\n`);
        });
      },
    );

  tokens
    .command('list <user>')
    .description("list a user's tokens")
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        for (const t of await store.listTokens(user.id)) {
          const last = t.lastUsedAt === null ? 'never used' : `last used ${new Date(t.lastUsedAt).toISOString()}`;
          process.stdout.write(`${t.id}\t${t.kind}\t${t.algorithm}/${t.digits}/${t.period}s\t${t.label}\t${t.enabled ? 'enabled' : 'disabled'}\t${last}\n`);
        }
      });
    });

  tokens
    .command('delete <token-id>')
    .description('delete a token')
    .option('-c, --config <file>', 'configuration file')
    .action(async (id: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const token = await store.getToken(id);
        if (!token) throw new NotFoundError(`no token '${id}'`);
        await store.deleteToken(id);
        process.stdout.write(`deleted token ${id}\n`);
      });
    });
}
