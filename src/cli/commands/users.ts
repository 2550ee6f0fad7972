import type { Command } from 'commander';
import { hashPassword } from '../../crypto/password-hash.js';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import type { Store } from '../../store/store.js';
import type { User, UserPatch } from '../../store/types.js';
import { methodSchema } from '../../config/schema.js';
import { readSecret, withStore } from '../context.js';

interface ProfileOptions {
  defaultMethod?: string;
  language?: string;
  email?: string;
  phone?: string;
  mobile?: string;
  firstName?: string;
  lastName?: string;
  upn?: string;
}

export async function requireUser(store: Store, name: string): Promise<User> {
  const user = (await store.findUser(name)) ?? (await store.getUser(name));
  if (!user) throw new NotFoundError(`no user '${name}'`);
  return user;
}

const USERNAME = /^[^\s\\@][^\s\\]{0,255}$/u;

function profile(opts: ProfileOptions): UserPatch {
  const patch: { -readonly [K in keyof UserPatch]: UserPatch[K] } = {};
  if (opts.email !== undefined) patch.email = opts.email;
  if (opts.phone !== undefined) patch.phone = opts.phone;
  if (opts.mobile !== undefined) patch.mobile = opts.mobile;
  if (opts.firstName !== undefined) patch.firstName = opts.firstName;
  if (opts.lastName !== undefined) patch.lastName = opts.lastName;
  if (opts.upn !== undefined) patch.upn = opts.upn;
  if (opts.language !== undefined) patch.language = opts.language;
  if (opts.defaultMethod !== undefined) {
    const parsed = methodSchema.safeParse(opts.defaultMethod);
    if (!parsed.success) throw new InvalidInputError(`--default-method must be one of ${methodSchema.options.join(', ')}`);
    patch.defaultMethod = parsed.data;
  }
  return patch;
}

function describe(user: User): Record<string, unknown> {
  const { passwordHash, pinHash, ...rest } = user;
  return { ...rest, hasPassword: passwordHash !== null, hasPin: pinHash !== null, createdAt: new Date(user.createdAt).toISOString(), updatedAt: new Date(user.updatedAt).toISOString() };
}

async function newPassword(fromStdin: boolean): Promise<string> {
  const password = await readSecret('Password: ', fromStdin);
  if (password.length < 8) throw new InvalidInputError('the password must be at least 8 characters');
  return password;
}

export function registerUsers(program: Command): void {
  const users = program.command('users').description('local users: add, list, show, change, remove');

  users
    .command('add <user>')
    .description('add a local user (password from stdin with --password-stdin, else prompted)')
    .option('-c, --config <file>', 'configuration file')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option('--no-password', 'no local password (first factor from a directory or the NAS)')
    .option('--email <email>')
    .option('--phone <phone>')
    .option('--mobile <phone>')
    .option('--first-name <name>')
    .option('--last-name <name>')
    .option('--default-method <method>', 'preferred second factor: totp, hotp, push, phone, sms, voice, email')
    .option('--language <tag>', 'language of messages to the user (en, de, …)')
    .option('--upn <upn>', 'user principal name (user@realm), also accepted as login name')
    .action(async (name: string, opts: ProfileOptions & { config?: string; passwordStdin?: boolean; password: boolean }) => {
      if (!USERNAME.test(name)) throw new InvalidInputError(`'${name}' is not a valid user name (no spaces, no backslash, not starting with @)`);
      const passwordHash = opts.password ? await hashPassword(await newPassword(opts.passwordStdin === true)) : null;
      await withStore(opts.config, async ({ store }) => {
        const user = await store.createUser({ username: name, passwordHash, ...profile(opts) });
        process.stdout.write(`added user ${user.username} (id ${user.id})\n`);
      });
    });

  users
    .command('list')
    .description('list users')
    .option('-c, --config <file>', 'configuration file')
    .option('--json', 'one JSON array')
    .action(async (opts: { config?: string; json?: boolean }) => {
      await withStore(opts.config, async ({ store }) => {
        const list = await store.listUsers();
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(list.map(describe), null, 2)}\n`);
          return;
        }
        for (const u of list) {
          const flags = [u.enabled ? 'enabled' : 'disabled', u.blocked ? 'blocked' : '', u.passwordHash ? 'password' : ''].filter(Boolean).join(',');
          process.stdout.write(`${u.username}\t${u.email ?? '-'}\t${flags}\t${u.id}\n`);
        }
      });
    });

  users
    .command('show <user>')
    .description('show one user, its tokens and lockout state')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        const tokens = await store.listTokens(user.id);
        const lockout = await store.getLockout(user.id, Date.now());
        const out = {
          ...describe(user),
          tokens: tokens.map((t) => ({ id: t.id, kind: t.kind, label: t.label, digits: t.digits, enabled: t.enabled })),
          lockout: { failures: lockout.failures, lockedUntil: lockout.lockedUntil === null ? null : new Date(lockout.lockedUntil).toISOString() },
        };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      });
    });

  users
    .command('set <user>')
    .description('change profile fields')
    .option('-c, --config <file>', 'configuration file')
    .option('--email <email>')
    .option('--phone <phone>')
    .option('--mobile <phone>')
    .option('--first-name <name>')
    .option('--last-name <name>')
    .option('--default-method <method>', 'preferred second factor: totp, hotp, push, phone, sms, voice, email')
    .option('--language <tag>', 'language of messages to the user (en, de, …)')
    .option('--upn <upn>')
    .action(async (name: string, opts: ProfileOptions & { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        await store.updateUser(user.id, profile(opts));
        process.stdout.write(`updated user ${user.username}\n`);
      });
    });

  users
    .command('set-password <user>')
    .description('set the local password (from stdin with --password-stdin, else prompted)')
    .option('-c, --config <file>', 'configuration file')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .action(async (name: string, opts: { config?: string; passwordStdin?: boolean }) => {
      const passwordHash = await hashPassword(await newPassword(opts.passwordStdin === true));
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        await store.updateUser(user.id, { passwordHash });
        process.stdout.write(`password set for ${user.username}\n`);
      });
    });

  users
    .command('set-pin <user>')
    .description('set the PIN for phone calls in PIN mode (from stdin with --pin-stdin, else prompted)')
    .option('-c, --config <file>', 'configuration file')
    .option('--pin-stdin', 'read the PIN from the first line of stdin')
    .option('--must-change', 'the user chooses a new PIN on the first call (for a temporary PIN)')
    .option('--clear', 'remove the PIN')
    .action(async (name: string, opts: { config?: string; pinStdin?: boolean; mustChange?: boolean; clear?: boolean }) => {
      await withStore(opts.config, async ({ store, config }) => {
        const user = await requireUser(store, name);
        if (opts.clear) {
          await store.updateUser(user.id, { pinHash: null, pinMustChange: false });
          process.stdout.write(`PIN removed for ${user.username}\n`);
          return;
        }
        const min = config.methods.phone?.pin_min_length ?? 4;
        const max = config.methods.phone?.pin_max_length ?? 8;
        const pin = (await readSecret('PIN: ', opts.pinStdin === true)).trim();
        if (!new RegExp(`^\\d{${min},${max}}$`).test(pin)) throw new InvalidInputError(`the PIN must be ${min} to ${max} digits`);
        await store.updateUser(user.id, { pinHash: await hashPassword(pin), pinMustChange: opts.mustChange === true });
        process.stdout.write(`PIN set for ${user.username}${opts.mustChange ? ' (to be changed on the first call)' : ''}\n`);
      });
    });

  const toggle = (command: string, description: string, patch: UserPatch, done: string): void => {
    users
      .command(`${command} <user>`)
      .description(description)
      .option('-c, --config <file>', 'configuration file')
      .action(async (name: string, opts: { config?: string }) => {
        await withStore(opts.config, async ({ store }) => {
          const user = await requireUser(store, name);
          await store.updateUser(user.id, patch);
          if (command === 'unblock' || command === 'enable') await store.clearFailures(user.id);
          process.stdout.write(`${done} ${user.username}\n`);
        });
      });
  };
  toggle('disable', 'refuse every login of this user', { enabled: false }, 'disabled');
  toggle('enable', 'allow logins again (also clears a lockout)', { enabled: true }, 'enabled');
  toggle('block', 'block the user (as after a fraud report)', { blocked: true }, 'blocked');
  toggle('unblock', 'lift a block (also clears a lockout)', { blocked: false }, 'unblocked');

  users
    .command('unlock <user>')
    .description('clear failed attempts and a lockout')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        await store.clearFailures(user.id);
        process.stdout.write(`unlocked ${user.username}\n`);
      });
    });

  users
    .command('delete <user>')
    .description('delete the user and its tokens (audit records stay)')
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        await store.deleteUser(user.id);
        process.stdout.write(`deleted user ${user.username}\n`);
      });
    });
}
