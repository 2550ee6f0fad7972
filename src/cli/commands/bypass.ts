import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import { withStore } from '../context.js';
import { requireUser } from './users.js';

/** One-time bypasses of the second factor: for a user whose phone is lost, for the next N minutes. */
export function registerBypass(program: Command): void {
  const bypass = program.command('bypass').description('one-time bypasses of the second factor');

  bypass
    .command('add <user>')
    .description('let the user log in with the first factor alone, once (or --uses N times), within the next N minutes')
    .option('-c, --config <file>', 'configuration file')
    .requiredOption('--minutes <n>', 'how long the bypass is valid (1..1440)')
    .option('--uses <n>', 'how many logins it covers', '1')
    .option('--reason <text>', 'why (kept with the bypass)')
    .action(async (name: string, opts: { config?: string; minutes: string; uses: string; reason?: string }) => {
      const minutes = Number(opts.minutes);
      const uses = Number(opts.uses);
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) throw new InvalidInputError('--minutes must be a whole number from 1 to 1440');
      if (!Number.isInteger(uses) || uses < 1 || uses > 100) throw new InvalidInputError('--uses must be a whole number from 1 to 100');
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        const now = Date.now();
        const added = await store.addBypass({ userId: user.id, expiresAt: now + minutes * 60_000, uses, reason: opts.reason ?? null, now });
        process.stdout.write(`bypass for ${user.username}: ${uses} login${uses === 1 ? '' : 's'} until ${new Date(added.expiresAt).toISOString()} (id ${added.id})\n`);
      });
    });

  bypass
    .command('list')
    .description('live bypasses')
    .option('-c, --config <file>', 'configuration file')
    .option('--user <user>', 'of one user')
    .action(async (opts: { config?: string; user?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const userId = opts.user === undefined ? undefined : (await requireUser(store, opts.user)).id;
        for (const b of await store.listBypasses(userId, Date.now())) {
          const user = await store.getUser(b.userId);
          process.stdout.write(`${user?.username ?? b.userId}\t${b.usesLeft} left\tuntil ${new Date(b.expiresAt).toISOString()}\t${b.reason ?? '-'}\t${b.id}\n`);
        }
      });
    });

  bypass
    .command('delete <user>')
    .description("remove the user's bypasses")
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        const n = await store.deleteBypasses(user.id);
        process.stdout.write(`removed ${n} bypass${n === 1 ? '' : 'es'} of ${user.username}\n`);
      });
    });
}
