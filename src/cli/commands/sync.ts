import type { Command } from 'commander';
import { DirectorySync, syncPlan, type SyncReport } from '../../directory/sync/index.js';
import { InvalidInputError } from '../../errors.js';
import { silentLogger } from '../../log.js';
import type { SyncRun } from '../../store/types.js';
import { withStore } from '../context.js';

/**
 * `mfa-gateway sync run|status`: directory sync on demand (the gateway also runs it on its
 * schedule) and the record of past runs. A progress bar only on a terminal; counts always.
 */

interface RunOptions {
  config?: string;
  directory?: string;
  item?: string;
  dryRun?: boolean;
  force?: boolean;
  full?: boolean;
}

interface StatusOptions {
  config?: string;
  directory?: string;
  limit: string;
  json?: boolean;
}

/** A one-line progress bar on stderr, redrawn at most every 100 ms; nothing when stderr is not a terminal. */
class ProgressBar {
  private lastDraw = 0;
  private drawn = false;
  constructor(private readonly out: NodeJS.WriteStream) {}

  get active(): boolean {
    return this.out.isTTY;
  }

  update(done: number, total?: number): void {
    if (!this.active) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const count = total === undefined ? `${done.toLocaleString('en-US')} entries` : `${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} entries`;
    let line = `syncing ${count}`;
    if (total !== undefined && total > 0) {
      const width = 30;
      const share = Math.min(1, done / total);
      const filled = Math.round(share * width);
      line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(share * 100)).padStart(3)}% ${count}`;
    }
    this.out.write(`\r${line.slice(0, Math.max(20, (this.out.columns || 80) - 1))}\x1b[K`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function reportLine(r: SyncReport): string {
  const counts = `${r.added} added, ${r.updated} updated, ${r.disabled} disabled, ${r.removed} removed, ${r.unchanged} unchanged`;
  const scope = r.inScope === undefined ? '' : `, ${r.inScope} in scope`;
  return `${r.directory}/${r.item}: ${r.kind} ${r.status}${r.dryRun ? ' (dry run: nothing changed)' : ''}: ${counts} (${r.seen} read${scope}) in ${seconds(r.durationMs)}; ${r.reason}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function registerSync(program: Command): void {
  const sync = program.command('sync').description('directory sync: run it now, or show past runs');

  sync
    .command('run')
    .description('sync the directories (or one directory or item) now; exit 1 when a run failed or was refused')
    .option('-c, --config <file>', 'configuration file')
    .option('--directory <name>', 'only this directory')
    .option('--item <name>', 'only this sync item')
    .option('--dry-run', 'read and compare, change nothing')
    .option('--force', 'remove users even beyond max_delete_percent')
    .option('--full', 'a full run even where a delta would do')
    .action(async (opts: RunOptions) => {
      await withStore(opts.config, async ({ config, store }) => {
        const directorySync = new DirectorySync({ store, directories: Object.values(config.directories), log: silentLogger() });
        const bar = new ProgressBar(process.stderr);
        let reports: SyncReport[];
        try {
          reports = await directorySync.runOnce({
            ...(opts.directory === undefined ? {} : { directory: opts.directory }),
            ...(opts.item === undefined ? {} : { item: opts.item }),
            dryRun: opts.dryRun === true,
            force: opts.force === true,
            full: opts.full === true,
            ...(bar.active ? { onProgress: (done: number, total?: number) => bar.update(done, total) } : {}),
          });
        } finally {
          bar.clear();
        }
        for (const r of reports) {
          process.stdout.write(`${reportLine(r)}\n`);
          for (const line of r.errors) process.stdout.write(`  ${line}\n`);
        }
        const bad = reports.filter((r) => r.status !== 'ok');
        if (bad.length > 0) {
          const first = bad[0]!;
          const why = first.errors.find((e) => e.startsWith('refused') || e.startsWith('search failed') || e.startsWith('cannot sync')) ?? first.errors[0] ?? first.status;
          const more = bad.length > 1 ? ` (and ${bad.length - 1} more item(s) not ok)` : '';
          process.stderr.write(`mfa-gateway: sync ${first.status}: ${first.directory}/${first.item}: ${why}${more}\n`);
          process.exitCode = 1;
        }
      });
    });

  sync
    .command('status')
    .description('the last runs of each directory and sync item')
    .option('-c, --config <file>', 'configuration file')
    .option('--directory <name>', 'only this directory')
    .option('--limit <n>', 'runs shown per item', '1')
    .option('--json', 'one JSON array')
    .action(async (opts: StatusOptions) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInputError('--limit must be a whole number from 1 to 1000');
      await withStore(opts.config, async ({ config, store }) => {
        const plans = Object.values(config.directories)
          .map(syncPlan)
          .filter((p) => p !== undefined)
          .filter((p) => opts.directory === undefined || p.name === opts.directory);
        if (plans.length === 0) {
          throw new InvalidInputError(opts.directory === undefined ? 'no directory has a sync section' : `no directory '${opts.directory}' with a sync section`);
        }
        const rows: Array<{ directory: string; item: string; lastFullAt: number | null; runs: SyncRun[] }> = [];
        for (const plan of plans) {
          for (const item of plan.items) {
            const state = await store.getSyncState(plan.source, item.name);
            rows.push({ directory: plan.name, item: item.name, lastFullAt: state?.lastFullAt ?? null, runs: await store.listSyncRuns({ source: plan.source, item: item.name, limit }) });
          }
        }
        if (opts.json === true) {
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        const table: string[][] = [['DIRECTORY', 'ITEM', 'STARTED', 'KIND', 'STATUS', 'ADDED', 'UPDATED', 'DISABLED', 'REMOVED', 'UNCHANGED', 'DURATION', 'LAST FULL', 'PROBLEMS']];
        for (const row of rows) {
          const full = row.lastFullAt === null ? '-' : iso(row.lastFullAt);
          if (row.runs.length === 0) table.push([row.directory, row.item, 'never', '-', '-', '-', '-', '-', '-', '-', '-', full, '-']);
          for (const r of row.runs) {
            table.push([
              row.directory,
              row.item,
              iso(r.startedAt),
              r.kind,
              r.status,
              String(r.added),
              String(r.updated),
              String(r.disabled),
              String(r.removed),
              String(r.unchanged),
              seconds(r.finishedAt - r.startedAt),
              full,
              r.errors.length === 0 ? '-' : (r.errors[0] ?? '').slice(0, 100) + (r.errors.length > 1 ? ` (+${r.errors.length - 1})` : ''),
            ]);
          }
        }
        const widths = table[0]!.map((_, i) => Math.max(...table.map((cells) => (cells[i] ?? '').length)));
        for (const cells of table) process.stdout.write(`${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}\n`);
      });
    });
}
