import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { exportAudit } from '../../audit/export.js';
import { InvalidInputError } from '../../errors.js';
import type { AuditQuery } from '../../store/types.js';
import { withStore } from '../context.js';

function parseTime(value: string, option: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidInputError(`${option}: not a date/time (use ISO 8601, e.g. 2026-11-25 or 2026-11-25T10:00:00Z)`);
  return ms;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the hash-chained audit log: verify, export');

  audit
    .command('verify')
    .description('check the hash chain; exit 0 only when it is intact, else name each broken record')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      await withStore(opts.config, async ({ store }) => {
        const result = await store.verifyAudit();
        if (result.ok) {
          process.stdout.write(`audit chain intact: ${result.records} records\n`);
          return;
        }
        for (const problem of result.problems) process.stdout.write(`${problem}\n`);
        process.stderr.write(`audit chain BROKEN: ${result.problems.length} problem(s) in ${result.records} records\n`);
        process.exitCode = 1;
      });
    });

  audit
    .command('export')
    .description('export audit records as CSV or JSON')
    .option('-c, --config <file>', 'configuration file')
    .option('--format <format>', 'csv or json', 'csv')
    .option('--since <time>', 'records received at or after this time')
    .option('--until <time>', 'records received before this time')
    .option('--user <user>', 'only this user (name or id)')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (opts: { config?: string; format: string; since?: string; until?: string; user?: string; output?: string }) => {
      if (opts.format !== 'csv' && opts.format !== 'json') throw new InvalidInputError('--format must be csv or json');
      const format = opts.format;
      const query: { -readonly [K in keyof AuditQuery]: AuditQuery[K] } = {};
      if (opts.since !== undefined) query.since = parseTime(opts.since, '--since');
      if (opts.until !== undefined) query.until = parseTime(opts.until, '--until');
      if (opts.user !== undefined) query.user = opts.user;
      await withStore(opts.config, async ({ store }) => {
        const out = opts.output === undefined ? process.stdout : createWriteStream(opts.output, { flags: 'wx', mode: 0o600 });
        await exportAudit(store.queryAudit(query), format, out);
        if (out !== process.stdout) {
          out.end();
          await once(out, 'finish');
        }
      });
    });
}
