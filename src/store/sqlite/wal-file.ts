import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';

/** What the store needs of its write-ahead log: fsync it off the event loop, or on it, and let go. */
export interface WalSync {
  /** Settles once everything written to the WAL before the call is on disk. */
  sync(): Promise<void>;
  /** The same, blocking. */
  syncNow(): void;
  close(): void;
}

/**
 * The write-ahead log of one open store, made durable through one file descriptor kept open as
 * long as the store is: a single trip to the thread pool per fsync instead of three (open, fsync,
 * close), and on a fast disk those trips were most of a login's wait for its audit record.
 *
 * The descriptor stays the WAL's: SQLite removes the WAL only when the last connection to the
 * database closes, and the store's own connection is open until close(); after a checkpoint the
 * WAL is rewritten from its start or truncated, the same file either way. A WAL that does not
 * exist (yet) holds nothing to sync: what it held is in the database file, which SQLite syncs
 * itself when it checkpoints.
 *
 * fdatasync, as SQLite itself uses on Linux: the data and the file size, not the timestamps.
 */
export class WalFile implements WalSync {
  private fd: number | undefined;
  private inFlight = 0;
  private closed = false;

  constructor(readonly path: string) {}

  /** Settles once everything written to the WAL before the call is on disk. */
  sync(): Promise<void> {
    let fd: number | undefined;
    try {
      fd = this.descriptor();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    if (fd === undefined) return Promise.resolve();
    const open = fd;
    this.inFlight++;
    return new Promise<void>((resolve, reject) => {
      fdatasync(open, (err) => {
        this.inFlight--;
        if (this.closed && this.inFlight === 0) this.release();
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** The same, blocking: for close, when nothing may be left waiting. */
  syncNow(): void {
    const fd = this.descriptor();
    if (fd !== undefined) fdatasyncSync(fd);
  }

  /** Closes the descriptor, once no fsync still runs on it (a closed number could be reused meanwhile). */
  close(): void {
    this.closed = true;
    if (this.inFlight === 0) this.release();
  }

  private descriptor(): number | undefined {
    if (this.closed) throw new Error(`${this.path}: the store is closed`);
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    }
    return this.fd;
  }

  private release(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}
