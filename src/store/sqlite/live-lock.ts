import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { StoreError, errorMessage } from '../../errors.js';

/**
 * "A gateway is serving this store": an advisory lock file `<db>.lock` holding the owner's PID.
 * The serve command takes it for as long as it runs; restore refuses a store whose lock is held
 * by a live process (the CLI's other commands share the store with a running gateway and ignore
 * the lock). Node has no flock(2), so liveness is the PID: a lock whose process is gone (crash,
 * kill -9, reboot) is stale and taken over.
 *
 * - The file is created atomically with its content (written to a private temp file, then
 *   link(2)ed into place, which fails with EEXIST exactly like O_CREAT|O_EXCL), so nobody ever
 *   reads a half-written lock.
 * - PID reuse: the lock also records the process start time (Linux /proc); a live PID with a
 *   different start time is another process, and the lock is stale. In a container restarted with
 *   the same PID, our own PID in a lock we do not hold in this process is stale too.
 * - A lock from another host (shared filesystem) cannot be checked and counts as live.
 * - Taking over a stale lock removes it only if it is still the same file (inode) that was read;
 *   the window between that check and unlink(2) is the remaining race of PID files.
 */

export interface LiveLockHolder {
  readonly pid: number;
  readonly host: string | null;
  /** Epoch ms when the lock was taken. */
  readonly since: number | null;
}

/** Removes the lock file if it is still ours. Idempotent; also runs at a clean process exit. */
export type ReleaseLiveLock = () => void;

interface LockFileContent {
  pid: number;
  host?: string;
  since?: number;
  start?: string;
}

/** Lock files this process holds, by path, with the inode it created. */
const held = new Map<string, number>();

export function liveLockPath(dbPath: string): string {
  return `${resolve(dbPath)}.lock`;
}

/** Start time of a process in clock ticks since boot (Linux); undefined when unknown. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may contain spaces and parentheses, so count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function readLock(path: string): { content: LockFileContent | undefined; ino: number } | undefined {
  let text: string;
  let ino: number;
  try {
    ino = lstatSync(path).ino;
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError(`cannot read the lock file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'object' && parsed !== null && Number.isSafeInteger((parsed as LockFileContent).pid)) {
      return { content: parsed as LockFileContent, ino };
    }
  } catch {
    // fall through: unparseable
  }
  return { content: undefined, ino };
}

function isLive(path: string, content: LockFileContent | undefined, ino: number): boolean {
  // Never written by us (the file appears complete or not at all): garbage is stale.
  if (content === undefined) return false;
  if (content.host !== undefined && content.host !== hostname()) return true;
  if (content.pid === process.pid) return held.get(path) === ino;
  if (content.pid <= 0) return false;
  try {
    process.kill(content.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: the process exists but belongs to someone else.
  }
  if (content.start !== undefined) {
    const now = processStartTime(content.pid);
    if (now !== undefined && now !== content.start) return false;
  }
  return true;
}

function holderOf(content: LockFileContent | undefined): LiveLockHolder {
  return { pid: content?.pid ?? 0, host: content?.host ?? null, since: content?.since ?? null };
}

/** Who serves the store at `dbPath`, or undefined when nobody (no lock, or a stale one). */
export function liveLockHolder(dbPath: string): LiveLockHolder | undefined {
  const path = liveLockPath(dbPath);
  const lock = readLock(path);
  if (lock === undefined || !isLive(path, lock.content, lock.ino)) return undefined;
  return holderOf(lock.content);
}

function removeIfSame(path: string, ino: number): void {
  try {
    if (lstatSync(path).ino === ino) unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Takes the lock for this process and resolves with the function that releases it. Rejects with
 * StoreError when a live process holds it (naming the PID), or when this process holds it already.
 */
export function acquireLiveLock(dbPath: string): Promise<ReleaseLiveLock> {
  try {
    return Promise.resolve(acquire(dbPath));
  } catch (err) {
    return Promise.reject(err instanceof StoreError ? err : new StoreError(errorMessage(err), { cause: err }));
  }
}

function acquire(dbPath: string): ReleaseLiveLock {
  const path = liveLockPath(dbPath);
  if (held.has(path)) throw new StoreError(`this process holds the lock ${path} already`);
  const content: LockFileContent = { pid: process.pid, host: hostname(), since: Date.now() };
  const start = processStartTime(process.pid);
  if (start !== undefined) content.start = start;

  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(content)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(tmp, path);
        const ino = lstatSync(path).ino;
        held.set(path, ino);
        return makeLock(path, ino);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const other = readLock(path);
      if (other === undefined) continue; // released meanwhile
      if (isLive(path, other.content, other.ino)) {
        const h = holderOf(other.content);
        throw new StoreError(
          `the store ${resolve(dbPath)} is in use by process ${h.pid}${h.host !== null && h.host !== hostname() ? ` on ${h.host}` : ''} (lock file ${path})`,
        );
      }
      removeIfSame(path, other.ino);
    }
    throw new StoreError(`cannot take the lock ${path}: it keeps changing hands`);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(`cannot take the lock ${path}: ${errorMessage(err)}`, { cause: err });
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // not created, or already gone
    }
  }
}

function makeLock(path: string, ino: number): ReleaseLiveLock {
  const onExit = (): void => release();
  const release = (): void => {
    if (held.get(path) !== ino) return;
    held.delete(path);
    process.removeListener('exit', onExit);
    try {
      removeIfSame(path, ino);
    } catch {
      // Cannot remove it (permissions changed?): it names our PID, so it is stale once we exit.
    }
  };
  // A clean exit that forgot to release still leaves no lock behind; a crash leaves a stale one.
  process.once('exit', onExit);
  return release;
}
