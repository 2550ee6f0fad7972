import type { Command } from 'commander';
import path from 'node:path';
import { loadConfig } from '../../config/load.js';
import { restoreSqliteStore } from '../../store/sqlite/sqlite-store.js';
import { configPath, withStore } from '../context.js';

export function registerBackup(program: Command): void {
  program
    .command('backup <file>')
    .description('online, consistent copy of the whole store (safe while the gateway runs)')
    .option('-c, --config <file>', 'configuration file')
    .action(async (file: string, opts: { config?: string }) => {
      const target = path.resolve(file);
      await withStore(opts.config, async ({ store }) => {
        await store.backup(target);
        process.stdout.write(`backup written to ${target}\n`);
      });
    });

  program
    .command('restore <file>')
    .description("replace the store with a backup (its audit chain is verified first; refuses a running gateway's store unless --force)")
    .option('-c, --config <file>', 'configuration file')
    .option('--force', 'restore even though a gateway is using the store')
    .action(async (file: string, opts: { config?: string; force?: boolean }) => {
      const { config } = await loadConfig(configPath(opts.config));
      const result = await restoreSqliteStore(path.resolve(file), config.store.sqlite.path, { force: opts.force === true });
      process.stdout.write(`restored ${config.store.sqlite.path} from ${path.resolve(file)} (${result.records} audit records, chain verified)\n`);
    });
}
