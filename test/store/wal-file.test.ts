import { mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { WalFile } from '../../src/store/sqlite/wal-file.js';

/** How many of this process's descriptors are open on `path` (Linux /proc). */
const descriptorsOn = (path: string): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // closed meanwhile (the listing's own descriptor)
    }
  }).length;

void t.test('syncs through one descriptor, opened on first use and closed once no sync runs on it', async (t) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'mfa-wal-')));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db-wal');
  const wal = new WalFile(path);
  await wal.sync();
  writeFileSync(path, '');
  t.equal(descriptorsOn(path), 0, 'no WAL yet: nothing to sync, nothing opened');

  writeFileSync(path, 'frames');
  await Promise.all([wal.sync(), wal.sync(), wal.sync()]);
  t.equal(descriptorsOn(path), 1, 'one descriptor for every sync');
  wal.syncNow();

  // Closed while a sync runs: the descriptor goes only when that sync is done.
  const running = wal.sync();
  wal.close();
  t.equal(descriptorsOn(path), 1, 'kept for the sync in flight');
  await running;
  t.equal(descriptorsOn(path), 0, 'then closed');
  await t.rejects(wal.sync(), /closed/, 'no sync after close');
  t.throws(() => wal.syncNow(), /closed/);
  wal.close();
});
