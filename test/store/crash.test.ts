/**
 * Crash safety: a writer process killed with SIGKILL in the middle of its group commits loses
 * nothing it had seen committed and leaves no half-written record; several writer processes
 * appending at once keep one intact chain.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const WRITER = fileURLToPath(new URL('./fixtures/audit-writer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GROUP = 25;

interface Writer {
  /** Seqs printed so far: each is the last seq of a committed group. */
  readonly committed: number[];
  readonly firstLine: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

function startWriter(path: string, groups: number): Writer {
  const child = spawn(process.execPath, ['--import=tsx', WRITER, path, String(GROUP), String(groups)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const committed: number[] = [];
  let buffered = '';
  let stderr = '';
  let sawLine: () => void = () => undefined;
  const firstLine = new Promise<void>((resolve) => (sawLine = resolve));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? ''; // a line cut by the kill is not a report
    for (const line of lines) committed.push(Number(line));
    if (committed.length > 0) sawLine();
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      if (stderr !== '') process.stderr.write(stderr);
      resolve({ code, signal });
    });
  });
  return {
    committed,
    firstLine: Promise.race([firstLine, exited.then(({ code }) => Promise.reject(new Error(`writer exited early (${code}): ${stderr}`)))]),
    exited,
    kill: () => child.kill('SIGKILL'),
  };
}

function integrity(path: string): unknown {
  const db = new Database(path, { readonly: true });
  try {
    return db.pragma('integrity_check', { simple: true });
  } finally {
    db.close();
  }
}

void t.test('kill -9 during group commits: nothing seen committed is lost, nothing half-written appears', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mfa-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');

  // The same store is crashed five times in a row: each recovery must also be a good base for the next.
  for (let round = 1; round <= 5; round++) {
    const writer = startWriter(path, 0);
    await writer.firstLine;
    await new Promise((r) => setTimeout(r, 300));
    writer.kill();
    const { signal } = await writer.exited;
    t.equal(signal, 'SIGKILL', `round ${round}: killed while writing`);

    const reported = Math.max(...writer.committed);
    t.ok(writer.committed.length > 1, `round ${round}: it committed ${writer.committed.length} groups before the kill`);
    t.ok(
      writer.committed.every((s, i) => i === 0 || s === writer.committed[i - 1]! + GROUP),
      `round ${round}: one group of ${GROUP} per line`,
    );

    t.equal(integrity(path), 'ok', `round ${round}: the file is intact`);
    const store = await openSqliteStore({ path });
    const v = await store.verifyAudit();
    t.same(v.problems, [], `round ${round}: the chain verifies`);
    t.ok(v.ok);
    // Killed after a COMMIT but before its line was printed: one whole group more, never part of one.
    const extra = v.records - reported;
    t.ok(extra === 0 || extra === GROUP, `round ${round}: ${v.records} records, ${reported} reported committed (extra ${extra})`);
    await store.close();
  }
});

void t.test('several processes appending at once keep one intact chain', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mfa-multi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'gateway.db');
  // Created first, so the writers race on appends rather than on the first migration.
  await (await openSqliteStore({ path })).close();

  const groups = 40;
  const writers = [startWriter(path, groups), startWriter(path, groups), startWriter(path, groups)];
  const exits = await Promise.all(writers.map((w) => w.exited));
  t.same(
    exits.map((e) => e.code),
    [0, 0, 0],
    'all writers finished',
  );
  const all = writers.flatMap((w) => w.committed).sort((a, b) => a - b);
  t.equal(new Set(all).size, all.length, 'no two groups got the same seqs');

  const store = await openSqliteStore({ path });
  t.same(await store.verifyAudit(), { ok: true, records: 3 * groups * GROUP, problems: [] });
  await store.close();
});
