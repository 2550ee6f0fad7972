import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { directorySchema } from '../src/config/schema.js';
import { DirectorySync, type SyncReport } from '../src/directory/sync/index.js';
import { silentLogger } from '../src/log.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { ldapUtil, startSlapd, type RunningSlapd } from '../test/peers/slapd.js';
import { tempDir } from '../test/peers/temp.js';
import { summaryLine, waitForQuiet } from './report.js';

/**
 * BENCHMARKS.md, "Directory and memory": a full directory sync of BENCH_SYNC_USERS (100 000)
 * users from slapd into the SQLite store (goal < 60 s), then a delta after BENCH_SYNC_CHANGED
 * (1 000) of them changed their phone number (goal < 2 s). Anchor, in the same run: ldapsearch
 * (OpenLDAP's C client) reading the same entries the same way (LDAPS, paged, same attributes)
 * to /dev/null, i.e. what the directory alone costs. Loopback only.
 *
 *   node --import=tsx bench/directory-sync.ts
 */

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const PAGE = 500;
const LOAD_CHUNK = 5000;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const perSecond = (n: number, ms: number): string => `${Math.round((n * 1000) / ms).toLocaleString('en-US')} users/s`;
const uid = (i: number): string => `u${String(i).padStart(6, '0')}`;

function userLdif(i: number, base: string): string {
  return `dn: uid=${uid(i)},ou=people,${base}
objectClass: inetOrgPerson
uid: ${uid(i)}
cn: Bench User ${i}
givenName: Bench
sn: User${i}
mail: ${uid(i)}@example.test
telephoneNumber: +1 555 ${String(i % 10000).padStart(4, '0')}
mobile: +1 556 ${String(i % 10000).padStart(4, '0')}
`;
}

async function load(slapd: RunningSlapd, users: number): Promise<number> {
  const started = Date.now();
  for (let from = 1; from <= users; from += LOAD_CHUNK) {
    const chunk: string[] = [];
    for (let i = from; i < Math.min(users + 1, from + LOAD_CHUNK); i++) chunk.push(userLdif(i, slapd.baseDn));
    await slapd.ldapadd(chunk.join('\n'));
  }
  return Date.now() - started;
}

/** ldapsearch over LDAPS, paged like the sync, output thrown away; milliseconds. */
async function anchorSearch(slapd: RunningSlapd, filter: string, attributes: readonly string[]): Promise<number> {
  const started = Date.now();
  const r = await ldapUtil('ldapsearch', {
    url: slapd.ldapsUrl,
    bindDn: slapd.adminDn,
    password: slapd.adminPassword,
    caFile: slapd.caFile,
    args: ['-E', `pr=${PAGE}/noprompt`, '-b', `ou=people,${slapd.baseDn}`, filter, ...attributes],
    timeoutMs: 300_000,
  });
  if (r.exitCode !== 0) throw new Error(`ldapsearch failed (${r.exitCode}): ${r.stderr}`);
  return Date.now() - started;
}

const totals = (reports: readonly SyncReport[]): SyncReport => {
  const r = reports[0];
  if (r === undefined || r.status !== 'ok') throw new Error(`sync run not ok: ${JSON.stringify(reports)}`);
  return r;
};

export async function directorySyncBench(): Promise<string[]> {
  const users = env('BENCH_SYNC_USERS', 100_000);
  const changed = Math.min(users, env('BENCH_SYNC_CHANGED', 1000));
  const slapd = await startSlapd({ users: [], groups: [], logLevel: 'none' });
  const dir = tempDir('bench-sync');
  try {
    process.stderr.write(`loading ${users} users into slapd…\n`);
    const loadMs = await load(slapd, users);
    process.stderr.write(`loaded in ${seconds(loadMs)}\n`);
    const raw = directorySchema.parse({
      flavour: 'ldap',
      urls: [slapd.ldapsUrl],
      bind_dn: slapd.adminDn,
      bind_password: { env: 'UNUSED' },
      base_dn: slapd.baseDn,
      // slapd runs on this host: our clock is its clock, a 1 s margin covers modifyTimestamp's steps.
      sync: { page_size: PAGE, clock_skew_seconds: 1, max_delete_percent: 100, items: [{ name: 'people', ou: `ou=people,${slapd.baseDn}` }] },
    });
    const { bind_password: _p, ca_file: _c, ...rest } = raw;
    const directory = { ...rest, name: 'bench', bind_password: slapd.adminPassword, ca: readFileSync(slapd.caFile) };
    const store = await openSqliteStore({ path: join(dir.path, 'gateway.db') });
    const sync = new DirectorySync({ store, directories: [directory], log: silentLogger() });
    try {
      // The load's last modifyTimestamp must lie before the full run's watermark (start − 1 s).
      await new Promise((r) => setTimeout(r, 2100));
      const quietFull = await waitForQuiet(5, 30_000);
      const rssBefore = process.memoryUsage().rss;
      const fullStarted = Date.now();
      const full = totals(await sync.runOnce({ full: true }));
      const fullMs = Date.now() - fullStarted;
      const rssAfter = process.memoryUsage().rss;
      if (full.added !== users) throw new Error(`full sync added ${full.added}, expected ${users}`);
      const attrs = ['entryUUID', 'uid', 'givenName', 'sn', 'mail', 'telephoneNumber', 'mobile', 'preferredLanguage', 'pwdAccountLockedTime', 'shadowExpire'];
      const anchorFullMs = await anchorSearch(slapd, '(|(objectClass=person)(objectClass=posixAccount))', attrs);

      // 1 000 users change their phone, after the watermark's second.
      await new Promise((r) => setTimeout(r, 2100));
      const step = Math.max(1, Math.floor(users / changed));
      const edits: string[] = [];
      for (let k = 0; k < changed; k++) {
        edits.push(`dn: uid=${uid(1 + k * step)},ou=people,${slapd.baseDn}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 777 ${String(k).padStart(4, '0')}\n`);
      }
      await slapd.ldapmodify(edits.join('\n'));
      const watermark = (await store.getSyncState('directory:bench', 'people'))?.modifyTimestamp ?? '19700101000000Z';
      const quietDelta = await waitForQuiet(5, 30_000);
      const deltaStarted = Date.now();
      const delta = totals(await sync.runOnce());
      const deltaMs = Date.now() - deltaStarted;
      if (delta.kind !== 'delta' || delta.updated !== changed) throw new Error(`delta: ${delta.kind}, ${delta.updated} updated, expected ${changed}`);
      const anchorDeltaMs =
        (await anchorSearch(slapd, `(&(|(objectClass=person)(objectClass=posixAccount))(modifyTimestamp>=${watermark}))`, attrs)) +
        (await anchorSearch(slapd, '(|(objectClass=person)(objectClass=posixAccount))', ['entryUUID']));
      const noisy = (q: { quiet: boolean; busyPct: number }): string[] => (q.quiet ? [] : [`started with the machine ${q.busyPct.toFixed(0)}% busy`]);
      return [
        summaryLine({
          what: `directory sync, full: ${users.toLocaleString('en-US')} users from slapd (LDAPS, pages of ${PAGE}) into SQLite`,
          gateway: `${seconds(fullMs)} (${perSecond(users, fullMs)})`,
          anchor: `ldapsearch of the same entries ${seconds(anchorFullMs)}`,
          ratio: fullMs / anchorFullMs,
          notes: [`goal < 60 s: ${fullMs < 60_000 ? 'met' : 'MISSED'}`, `RSS +${Math.round((rssAfter - rssBefore) / 1048576)} MiB`, `load by ldapadd ${seconds(loadMs)}`, ...noisy(quietFull)],
        }),
        summaryLine({
          what: `directory sync, delta: ${changed.toLocaleString('en-US')} of ${users.toLocaleString('en-US')} users changed (changed entries, then the id listing of all)`,
          gateway: seconds(deltaMs),
          anchor: `ldapsearch of the changed entries + the entryUUID listing ${seconds(anchorDeltaMs)}`,
          ratio: deltaMs / anchorDeltaMs,
          notes: [`goal < 2 s: ${deltaMs < 2000 ? 'met' : 'MISSED'}`, `read ${delta.seen} entries in full, ${delta.updated} updated`, ...noisy(quietDelta)],
        }),
      ];
    } finally {
      await sync.stop();
      await store.close();
    }
  } finally {
    await slapd.stop();
    dir.cleanup();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  directorySyncBench().then(
    (lines) => {
      for (const line of lines) process.stdout.write(`${line}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
