import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import QRCode from 'qrcode';
import { InvalidInputError, NotFoundError } from '../../errors.js';
import type { GatewayConfig } from '../../config/config.js';
import { withStore } from '../context.js';
import { requireUser } from './users.js';

/** Push devices: an ntfy topic per phone (a long random name is what keeps others off it). */

function pushProvider(config: GatewayConfig, wanted: string | undefined, type: 'ntfy'): string {
  const candidates = Object.values(config.providers).filter((p) => p.type === type && (wanted === undefined || p.name === wanted));
  const [first] = candidates;
  if (first === undefined) throw new InvalidInputError(wanted === undefined ? `no ${type} provider in the configuration` : `no ${type} provider named '${wanted}'`);
  return first.name;
}

export function registerDevices(program: Command): void {
  const devices = program.command('devices').description('push devices of users');

  devices
    .command('add-ntfy <user>')
    .description('create a secret ntfy topic for the user and print how to subscribe the phone to it')
    .option('-c, --config <file>', 'configuration file')
    .option('--provider <name>', 'the ntfy provider (default: the first one)')
    .option('--label <text>', 'name of the device', 'phone')
    .option('--no-qr', 'no QR code')
    .action(async (name: string, opts: { config?: string; provider?: string; label: string; qr: boolean }) => {
      await withStore(opts.config, async ({ store, config }) => {
        const user = await requireUser(store, name);
        const provider = pushProvider(config, opts.provider, 'ntfy');
        // 128 random bits: the topic is the only thing between a stranger and the user's prompts.
        const topic = `mfa_${randomBytes(16).toString('hex')}`;
        const device = await store.addPushDevice({ userId: user.id, provider, address: topic, label: opts.label });
        const settings = config.providers[provider];
        const base = settings?.type === 'ntfy' ? settings.base_url.replace(/\/+$/, '') : '';
        const url = `${base}/${topic}`;
        process.stdout.write(`push device ${device.id} for ${user.username}\nsubscribe the ntfy app to: ${url}\n`);
        if (opts.qr && process.stdout.isTTY) process.stdout.write(await QRCode.toString(`ntfy://${url.replace(/^https?:\/\//, '')}`, { type: 'terminal', small: true }));
      });
    });

  devices
    .command('list <user>')
    .description("the user's push devices (addresses are not shown)")
    .option('-c, --config <file>', 'configuration file')
    .action(async (name: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const user = await requireUser(store, name);
        for (const d of await store.listPushDevices(user.id)) {
          process.stdout.write(`${d.id}\t${d.provider}\t${d.label}\tadded ${new Date(d.createdAt).toISOString()}\tlast used ${d.lastUsedAt === null ? 'never' : new Date(d.lastUsedAt).toISOString()}\n`);
        }
      });
    });

  devices
    .command('delete <id>')
    .description('remove a push device')
    .option('-c, --config <file>', 'configuration file')
    .action(async (id: string, opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        try {
          await store.deletePushDevice(id);
        } catch (err) {
          if (err instanceof NotFoundError) throw new NotFoundError(`no push device '${id}'`);
          throw err;
        }
        process.stdout.write(`removed push device ${id}\n`);
      });
    });
}
