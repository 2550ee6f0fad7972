import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { AlreadyExistsError, InvalidInputError, RestoreRefusedError, StoreError, StoreReadOnlyError } from '../../src/errors.js';
import { checkMigrations, latestVersion } from '../../src/store/migrations/migration.js';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations/sqlite.js';
import { openStore } from '../../src/store/open-store.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { migrate, openConnection } from '../../src/store/sqlite/connection.js';
import { acquireLiveLock, liveLockHolder, liveLockPath } from '../../src/store/sqlite/live-lock.js';
import { openSqliteStore, restoreSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { WalSync } from '../../src/store/sqlite/wal-file.js';
import type { Store } from '../../src/store/store.js';
import { makeEntry, storeContract } from './contract.js';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'mfa-store-'));
}

function mode(file: string): string {
  return (statSync(file).mode & 0o777).toString(8);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

void t.test('the SQLite engine passes the store contract', async (t) => {
  storeContract(t, async () => {
    const dir = tempDir();
    const path = join(dir, 'data', 'gateway.db');
    const store = await openSqliteStore({ path });
    return {
      store,
      openAnother: () => openSqliteStore({ path }),
      cleanup: async () => {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});

void t.test('files: directory created, database, -wal and -shm are mode 0600', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nested', 'deeper', 'gateway.db');
  const store = await openSqliteStore({ path });
  await store.appendAudit(makeEntry());
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    t.ok(existsSync(f), `${f} exists`);
    t.equal(mode(f), '600', `${f} is 0600`);
  }
  await store.close();

  // A store file left readable by others (copied by hand, say) is tightened on open.
  const loose = join(dir, 'loose.db');
  writeFileSync(loose, '', { mode: 0o644 });
  await (await openSqliteStore({ path: loose })).close();
  t.equal(mode(loose), '600');
});

void t.test('WAL, and a writer waits for another process instead of failing (busy_timeout)', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  const store = await openSqliteStore({ path });
  const raw = new Database(path, { readonly: true });
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal', 'WAL is recorded in the file');
  raw.close();

  // Another process (the CLI, say) holds the write lock for 400 ms.
  const blocker = spawn(
    process.execPath,
    [
      '-e',
      `const D = require(${JSON.stringify(require.resolve('better-sqlite3'))});
       const db = new D(${JSON.stringify(path)});
       db.exec('BEGIN IMMEDIATE');
       db.prepare("INSERT INTO single_use_claims VALUES ('cli', 'k', 0, 9e15)").run();
       process.stdout.write('locked\\n');
       Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 400);
       db.exec('COMMIT');`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((r) => blocker.once('exit', r));
  await new Promise<void>((resolve) => blocker.stdout.once('data', () => resolve()));
  const started = Date.now();
  t.equal(await store.claimOnce('gw', 'k', 9e15, 0), true, 'the write went through');
  const waited = Date.now() - started;
  t.ok(waited >= 200, `it waited for the other process (${waited} ms)`);
  t.equal(await store.claimOnce('cli', 'k', 9e15, 0), false, "and then sees the other process's commit");
  await exited;
  await store.close();
});

void t.test('migration 4: synced users get their DN, through a full run of every item next', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  // A store as the previous release left it: migrations 1–3, one synced user, a delta-ready item.
  writeFileSync(path, '', { mode: 0o600 });
  const old = openConnection(path, false);
  migrate(old, path, false, SQLITE_MIGRATIONS.slice(0, 3), silentLogger());
  old.prepare(`INSERT INTO users (id, username, username_key, enabled, blocked, source, external_id, created_at, updated_at) VALUES ('g-1', 'ann', 'ann', 1, 0, 'directory:corp', 'g-1', 1, 1)`).run();
  old.prepare(`INSERT INTO sync_state (source, item, item_hash, last_full_at, last_run_at) VALUES ('directory:corp', 'staff', 'h', 5, 6)`).run();
  old.close();

  const store = await openSqliteStore({ path });
  t.teardown(() => store.close());
  t.match(await store.findUser('ann'), { directoryDn: null }, 'no DN until the next sync');
  t.match(await store.getSyncState('directory:corp', 'staff'), { lastFullAt: null, lastRunAt: 6 }, 'the next run is a full one');
});

void t.test('migrations: recorded at open, idempotent, a newer schema refused', async (t) => {
  checkMigrations(SQLITE_MIGRATIONS);
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  await (await openSqliteStore({ path })).close();
  await (await openSqliteStore({ path })).close();

  const raw = new Database(path);
  const rows = raw.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as { version: number; name: string; applied_at: number }[];
  t.same(
    rows.map((r) => [r.version, r.name]),
    SQLITE_MIGRATIONS.map((m) => [m.version, m.name]),
    'each migration recorded once',
  );
  t.ok(rows.every((r) => r.applied_at > 0));
  raw.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(latestVersion(SQLITE_MIGRATIONS) + 1, 'from-the-future', Date.now());
  raw.close();

  const known = latestVersion(SQLITE_MIGRATIONS);
  await t.rejects(openSqliteStore({ path }), { constructor: StoreError, message: new RegExp(`schema version ${known + 1}, newer than this build of mfa-gateway knows \\(${known}\\)`) });
  await t.rejects(openSqliteStore({ path, readonly: true }), StoreError, 'read-only too');

  const foreign = join(dir, 'other.db');
  const other = new Database(foreign);
  other.exec('CREATE TABLE stuff (x)');
  other.close();
  await t.rejects(openSqliteStore({ path: foreign }), { constructor: StoreError, message: /not an mfa-gateway store/ }, 'some other database is left alone');

  t.throws(() => checkMigrations([{ version: 2, name: 'x', sql: '' }]), /expected 1/);
});

void t.test('migrations: several processes opening a new store at once all succeed', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  const writer = fileURLToPath(new URL('./fixtures/audit-writer.ts', import.meta.url));
  const exits = await Promise.all(
    Array.from(
      { length: 4 },
      () =>
        new Promise<number | null>((resolve) => {
          const child = spawn(process.execPath, ['--import=tsx', writer, path, '10', '1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
          child.on('close', resolve);
        }),
    ),
  );
  t.same(exits, [0, 0, 0, 0], 'every process opened, migrated or not, and appended');
  const raw = new Database(path, { readonly: true });
  t.equal((raw.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n, SQLITE_MIGRATIONS.length, 'each migration applied once');
  raw.close();
  const store = await openSqliteStore({ path });
  t.same(await store.verifyAudit(), { ok: true, records: 40, problems: [] });
  await store.close();
});

void t.test('read-only: reads work, writes are refused, nothing is created', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  await t.rejects(openSqliteStore({ path, readonly: true }), StoreError, 'a missing store is not created');
  t.equal(existsSync(path), false);
  const rw = await openSqliteStore({ path });
  await rw.createUser({ username: 'alice' });
  await rw.appendAudit(makeEntry());
  const ro = await openSqliteStore({ path, readonly: true });
  t.equal((await ro.findUser('ALICE'))?.username, 'alice');
  t.same(await ro.verifyAudit(), { ok: true, records: 1, problems: [] });
  await t.rejects(ro.createUser({ username: 'bob' }), StoreReadOnlyError);
  await t.rejects(ro.appendAudit(makeEntry()), StoreReadOnlyError);
  await ro.close();
  await rw.close();
});

void t.test('openStore dispatches on the engine', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openStore({ engine: 'sqlite', sqlite: { path: join(dir, 'g.db') } });
  t.equal(store.engine, 'sqlite');
  await store.close();
  await t.rejects(openStore({ engine: 'postgres' }), { constructor: StoreError, message: /not available in this build/ });
  await t.rejects(openSqliteStore({ path: ':memory:' }), InvalidInputError);
});

async function filledStore(path: string, records: number): Promise<Store> {
  const store = await openSqliteStore({ path });
  const u = await store.createUser({ username: 'alice', upn: 'alice@corp.example' });
  await store.addToken({ userId: u.id, kind: 'totp', label: 'app', algorithm: 'SHA1', digits: 6, period: 30, sealedSecret: Buffer.from('sealed') });
  await Promise.all(Array.from({ length: records }, () => store.appendAudit(makeEntry())));
  return store;
}

void t.test('a failed group commit rejects every record of the group and commits none', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  const store = await filledStore(path, 3);

  // Sabotage from another connection: any insert of user 'boom' aborts its transaction.
  const raw = new Database(path);
  raw.exec(`CREATE TRIGGER sabotage BEFORE INSERT ON audit_log WHEN NEW.username = 'boom' BEGIN SELECT RAISE(ABORT, 'sabotaged'); END`);
  t.throws(() => raw.prepare('UPDATE audit_log SET username = ? WHERE seq = 1').run('x'), /append-only/, 'audit_log refuses updates');
  t.throws(() => raw.prepare('DELETE FROM audit_log WHERE seq = 1').run(), /append-only/, 'and deletes');

  const group = await Promise.allSettled([
    store.appendAudit(makeEntry()),
    store.appendAudit(makeEntry({ username: 'boom' })),
    store.appendAudit(makeEntry()),
  ]);
  t.same(
    group.map((r) => r.status),
    ['rejected', 'rejected', 'rejected'],
    'the whole group fails',
  );
  const reason: unknown = group[0]?.status === 'rejected' ? group[0].reason : undefined;
  t.ok(reason instanceof StoreError, 'with StoreError');
  t.ok(reason instanceof StoreError && reason.cause instanceof Database.SqliteError, "SQLite's error is the cause");
  t.same(await store.verifyAudit(), { ok: true, records: 3, problems: [] }, 'none of it committed');

  raw.exec('DROP TRIGGER sabotage');
  raw.close();
  const next = await store.appendAudit(makeEntry());
  t.equal(next.seq, 4, 'the chain goes on without a gap');
  await store.close();
});

void t.test('backup and restore: round trip', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'live', 'gateway.db');
  const backup = join(dir, 'backups', 'one.db');
  const store = await filledStore(path, 40);
  await store.backup(backup);
  t.equal(mode(backup), '600', 'the backup is 0600');
  t.same(readdirSync(join(dir, 'backups')), ['one.db'], 'self-contained: no -wal or -shm beside it');
  await t.rejects(store.backup(backup), AlreadyExistsError, 'never overwrites a file');

  // Changes after the backup are undone by the restore.
  await store.createUser({ username: 'bob' });
  await store.appendAudit(makeEntry());
  await store.close();

  const result = await restoreSqliteStore(backup, path, { force: false });
  t.same(result, { records: 40 });
  t.equal(mode(path), '600');
  t.same(
    readdirSync(join(dir, 'live')).filter((f) => f.startsWith('.')),
    [],
    'no temp file left behind',
  );
  const back = await openSqliteStore({ path });
  t.equal((await back.findUser('bob')), undefined, 'state is the backup');
  const alice = await back.findUser('Alice@Corp.Example');
  t.ok(alice);
  t.ok((await back.listTokens(alice!.id))[0]?.sealedSecret.equals(Buffer.from('sealed')));
  t.same(await back.verifyAudit(), { ok: true, records: 40, problems: [] });
  const next = await back.appendAudit(makeEntry());
  t.equal(next.seq, 41, 'the chain goes on from the backup');
  await back.close();

  // Restore into a new location works too.
  const fresh = join(dir, 'elsewhere', 'g.db');
  t.same(await restoreSqliteStore(backup, fresh, { force: false }), { records: 40 });

  await t.rejects(restoreSqliteStore(join(dir, 'missing.db'), path, { force: false }), RestoreRefusedError);
  const junk = join(dir, 'junk.db');
  writeFileSync(junk, 'this is not a database'.repeat(100));
  await t.rejects(restoreSqliteStore(junk, path, { force: false }), RestoreRefusedError);
});

void t.test('backup while appends go on is a consistent snapshot', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  const store = await filledStore(path, 3000);
  let done = false;
  const backingUp = store.backup(join(dir, 'b.db')).finally(() => (done = true));
  let appended = 0;
  while (!done) {
    await Promise.all(Array.from({ length: 10 }, () => store.appendAudit(makeEntry())));
    appended += 10;
  }
  await backingUp;
  await store.close();
  t.ok(appended > 0, `${appended} records appended while the backup ran`);
  const r = await restoreSqliteStore(join(dir, 'b.db'), join(dir, 'r.db'), { force: false });
  t.ok(r.records >= 3000 && r.records <= 3000 + appended, `the backup verifies (${r.records} records)`);
});

void t.test('restore refuses a live store without force, and accepts with force', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  const store = await filledStore(path, 5);
  await store.backup(join(dir, 'b.db'));
  await store.close();

  // The serving gateway is another process holding the lock.
  const holder = spawn(
    process.execPath,
    [
      '--import=tsx',
      '--input-type=module',
      '-e',
      `import { acquireLiveLock } from ${JSON.stringify(new URL('../../src/store/sqlite/live-lock.ts', import.meta.url).href)};
       await acquireLiveLock(${JSON.stringify(path)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => {
    holder.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    holder.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('locked')) resolve();
    });
    holder.on('exit', (code) => reject(new Error(`lock holder exited (${code})`)));
  });
  t.equal(liveLockHolder(path)?.pid, holder.pid, 'the holder is seen');
  await t.rejects(acquireLiveLock(path), { constructor: StoreError, message: new RegExp(`in use by process ${holder.pid}`) }, 'a second gateway is refused');

  await t.rejects(restoreSqliteStore(join(dir, 'b.db'), path, { force: false }), {
    constructor: RestoreRefusedError,
    message: new RegExp(`in use by a running gateway \\(pid ${holder.pid}\\)`),
  });
  t.same(await restoreSqliteStore(join(dir, 'b.db'), path, { force: true }), { records: 5 }, 'forced');

  // Once the holder is gone (kill -9: no cleanup), its lock is stale: restore and acquire proceed.
  const exited = new Promise((r) => holder.on('exit', r));
  holder.kill('SIGKILL');
  await exited;
  t.ok(existsSync(liveLockPath(path)), 'the stale lock file is still there');
  t.equal(liveLockHolder(path), undefined, 'but nobody holds it');
  t.same(await restoreSqliteStore(join(dir, 'b.db'), path, { force: false }), { records: 5 });
  const release = await acquireLiveLock(path);
  t.equal(mode(liveLockPath(path)), '600');
  t.equal(liveLockHolder(path)?.pid, process.pid);
  await t.rejects(acquireLiveLock(path), StoreError, 'not twice in one process');
  await t.rejects(restoreSqliteStore(join(dir, 'b.db'), path, { force: false }), RestoreRefusedError, 'our own live lock counts too');
  release();
  release();
  t.equal(existsSync(liveLockPath(path)), false, 'released');

  // A lock file naming our own PID that this process does not hold is from an earlier life
  // (a container restarted with the same PID): stale.
  writeFileSync(liveLockPath(path), JSON.stringify({ pid: process.pid, since: 1 }), { mode: 0o600 });
  t.equal(liveLockHolder(path), undefined);
  const again = await acquireLiveLock(path);
  again();
  // Garbage in the lock file is stale too.
  writeFileSync(liveLockPath(path), 'garbage', { mode: 0o600 });
  (await acquireLiveLock(path))();
});

void t.test('restore refuses a backup whose chain was edited, or whose schema is newer', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  const store = await filledStore(path, 10);
  await store.backup(join(dir, 'b.db'));
  await store.backup(join(dir, 'newer.db'));
  await store.close();

  const raw = new Database(join(dir, 'b.db'));
  raw.exec('DROP TRIGGER audit_log_no_update');
  raw.prepare('UPDATE audit_log SET result = ? WHERE seq = 4').run('reject');
  const id = (raw.prepare('SELECT id FROM audit_log WHERE seq = 4').get() as { id: string }).id;
  raw.close();
  await t.rejects(restoreSqliteStore(join(dir, 'b.db'), path, { force: false }), {
    constructor: RestoreRefusedError,
    message: new RegExp(`audit chain is broken: seq 4 \\(id ${id}\\): content does not match its hash`),
  });

  const newer = new Database(join(dir, 'newer.db'));
  newer.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('future');
  newer.close();
  await t.rejects(restoreSqliteStore(join(dir, 'newer.db'), path, { force: false }), {
    constructor: RestoreRefusedError,
    message: /schema version 99, newer than this build/,
  });

  // The refused restores left the store as it was.
  const still = await openSqliteStore({ path });
  t.same(await still.verifyAudit(), { ok: true, records: 10, problems: [] });
  t.equal((await collect(still.queryAudit())).length, 10);
  await still.close();
  t.same(
    readdirSync(dir).filter((f) => f.startsWith('.')),
    [],
    'no temp file left behind',
  );
});

void t.test('an audit append settles only after its WAL fsync (unless fsync_before_reply is off), and a failed fsync fails it', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  /** A WAL whose thread-pool fsync waits until the test releases it; both kinds of fsync counted. */
  const gatedWal = () => {
    const gate = { calls: 0, inline: 0, release: (): void => undefined, fail: false, failInline: false };
    const openWal = (walPath: string): WalSync => {
      t.match(walPath, /gateway[^/]*\.db-wal$/, "the write-ahead log is what gets fsync'd");
      return {
        sync: () => {
          gate.calls++;
          return new Promise<void>((resolve, reject) => {
            gate.release = () => (gate.fail ? reject(new Error('EIO')) : resolve());
          });
        },
        syncNow: () => {
          gate.inline++;
          if (gate.failInline) throw new Error('EIO');
        },
        close: () => undefined,
      };
    };
    return { gate, openWal };
  };
  const settled = async (p: Promise<unknown>): Promise<boolean> => {
    let done = false;
    void p.then(
      () => (done = true),
      () => (done = true),
    );
    await new Promise((r) => setTimeout(r, 50));
    return done;
  };

  const strict = gatedWal();
  const store = await openSqliteStore({ path: join(dir, 'gateway.db'), openWal: strict.openWal });
  // A quiet store: one record alone is fsync'd on the event loop, before its append settles.
  t.equal((await store.appendAudit(makeEntry())).seq, 1);
  t.same([strict.gate.inline, strict.gate.calls], [1, 0], 'a lone record: one inline fsync, none on the thread pool');

  // Records that come together go to the thread pool, and settle only once that fsync is done.
  const first = [store.appendAudit(makeEntry()), store.appendAudit(makeEntry())];
  t.notOk(await settled(Promise.race(first)), 'committed, but not settled while the fsync is outstanding');
  t.same([strict.gate.inline, strict.gate.calls], [1, 1], 'two records: one fsync on the pool');
  const second = store.appendAudit(makeEntry());
  t.notOk(await settled(second), 'a commit made during the fsync waits for the next one (not inline: an fsync runs)');
  t.equal(strict.gate.inline, 1);
  strict.gate.release();
  t.same(
    (await Promise.all(first)).map((r) => r.seq),
    [2, 3],
    'settle once their fsync is done',
  );
  t.notOk(await settled(second), 'the later commit is not covered by the earlier fsync');
  t.equal(strict.gate.calls, 2, 'a second fsync covers it');
  strict.gate.fail = true;
  strict.gate.release();
  await t.rejects(second, StoreError, 'a failed fsync fails the appends waiting on it (their replies are not sent)');
  strict.gate.failInline = true;
  await t.rejects(store.appendAudit(makeEntry()), StoreError, 'so does a failed inline fsync');
  strict.gate.failInline = false;
  await store.close();

  const relaxed = gatedWal();
  const fast = await openSqliteStore({ path: join(dir, 'gateway-fast.db'), openWal: relaxed.openWal, fsyncBeforeReply: false });
  const record = fast.appendAudit(makeEntry());
  t.ok(await settled(record), 'fsync_before_reply off: settles at COMMIT');
  t.same([relaxed.gate.calls, relaxed.gate.inline], [1, 0], 'the fsync still follows, on the pool, unwaited');
  relaxed.gate.release();
  t.equal((await fast.verifyAudit()).records, 1, 'the record is there');
  await fast.close();
});

void t.test('write failures on the audit path log at most 10 lines a minute per kind, not one per attempt', async (t) => {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: Array<{ msg: string; err?: { errorCode?: string } }> = [];
  const logger = createLogger({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) });
  const failingWal = (): WalSync => ({
    sync: () => Promise.reject(new Error('EIO')),
    syncNow: () => {
      throw new Error('EIO');
    },
    close: () => undefined,
  });
  const path = join(dir, 'gateway.db');
  const store = await openSqliteStore({ path, logger, openWal: failingWal });
  for (let i = 0; i < 14; i++) await t.rejects(store.appendAudit(makeEntry()), StoreError);
  const fsyncLines = lines.filter((l) => l.msg.startsWith('write-ahead log fsync failed'));
  t.equal(fsyncLines.length, 10, '14 failed fsyncs, 10 lines');
  t.ok(fsyncLines.every((l) => l.err?.errorCode === 'GW_ERR_STORE'), 'each with its error code');

  // A store whose chain head is gone fails every group commit.
  const other = new Database(path);
  other.prepare('DELETE FROM audit_head').run();
  other.close();
  for (let i = 0; i < 14; i++) await t.rejects(store.appendAudit(makeEntry()), StoreError);
  t.equal(lines.filter((l) => l.msg === 'audit group commit failed').length, 10, '14 failed commits, 10 lines');
  await store.close();
});
