import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ChainVerifier, type ChainHead } from '../../audit/chain.js';
import { rowToAuditRecord } from '../../audit/record.js';
import { GatewayError, RestoreRefusedError, StoreError, errorMessage } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { latestVersion } from '../migrations/migration.js';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.js';
import type { AuditRecord, AuditVerifyResult } from '../store.js';
import { liveLockHolder } from './live-lock.js';
import { schemaVersionOf, syncFile } from './connection.js';

export interface RestoreOptions {
  /** Restore even though a live gateway serves the target (it must be restarted afterwards). */
  readonly force: boolean;
  readonly logger?: Logger;
}

/** Copies a file to a new file (mode 0600, never readable by others even while being written) and fsyncs it. */
function copyPrivate(from: string, to: string): void {
  const src = openSync(from, 'r');
  try {
    const dst = openSync(to, 'wx', 0o600);
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      let n: number;
      while ((n = readSync(src, buf, 0, buf.length, null)) > 0) {
        let off = 0;
        while (off < n) off += writeSync(dst, buf, off, n - off);
      }
      fsyncSync(dst);
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
}

/** Checks a store file opened read-only: integrity, schema version, and the audit chain against its head. */
function inspect(db: Database.Database, label: string): AuditVerifyResult {
  const check = db.pragma('quick_check', { simple: true });
  if (check !== 'ok') throw new RestoreRefusedError(`${label} is damaged (SQLite quick_check: ${String(check)})`);
  const version = schemaVersionOf(db, label);
  const known = latestVersion(SQLITE_MIGRATIONS);
  if (version === 0) throw new RestoreRefusedError(`${label} is not an mfa-gateway store (no schema)`);
  if (version > known) {
    throw new RestoreRefusedError(`${label} has schema version ${version}, newer than this build of mfa-gateway knows (${known}): upgrade mfa-gateway first`);
  }
  const head = db.prepare<[], ChainHead>('SELECT seq, hash FROM audit_head WHERE id = 1').get();
  if (head === undefined) throw new RestoreRefusedError(`${label}: the audit chain head is missing`);
  const verifier = new ChainVerifier(head);
  for (const row of db.prepare<[], Record<string, unknown>>('SELECT * FROM audit_log ORDER BY seq').iterate()) {
    let record: AuditRecord;
    try {
      record = rowToAuditRecord(row);
    } catch (err) {
      verifier.pushUnreadable(Number(row.seq), row.id, row.hash, errorMessage(err), row.prev_hash);
      continue;
    }
    verifier.push(record);
  }
  return verifier.finish();
}

/**
 * Replaces the store at `targetPath` with the backup `backupFile` (made by `Store.backup`).
 *
 * Refuses (RestoreRefusedError) a backup that is damaged, not a store, of a newer schema, or
 * whose audit chain is broken (naming the first problem), and a target that a live gateway
 * serves (see live-lock.ts) unless `force`. The backup is first copied next to the target and the
 * checks run on that copy, so what is checked is exactly what is put in place; then stale
 * -wal/-shm/-journal files of the target are removed (SQLite would replay an old WAL onto the new
 * file) and the copy is renamed over the target: a crash leaves either the old store or the new.
 */
export function restoreSqliteStore(backupFile: string, targetPath: string, opts: RestoreOptions): Promise<{ records: number }> {
  const log = (opts.logger ?? silentLogger()).child({ module: 'store', engine: 'sqlite' });
  const source = resolve(backupFile);
  const target = resolve(targetPath);
  const tmp = join(dirname(target), `.${basename(target)}.restore-${process.pid}-${randomBytes(6).toString('hex')}`);
  const cleanup = (): void => {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]) rmSync(f, { force: true });
  };
  try {
    if (source === target) throw new RestoreRefusedError('the backup file is the store itself');
    if (!existsSync(source) || !statSync(source).isFile()) throw new RestoreRefusedError(`backup file ${source} not found`);
    // A WAL beside the backup holds part of its content; copying the main file alone would lose it.
    if (existsSync(`${source}-wal`) && statSync(`${source}-wal`).size > 0) {
      throw new RestoreRefusedError(`${source} has a -wal file beside it: it is a live database, not a finished backup (use "mfa-gateway backup")`);
    }
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    copyPrivate(source, tmp);

    let result: AuditVerifyResult;
    let copy: Database.Database | undefined;
    try {
      copy = new Database(tmp, { readonly: true, fileMustExist: true });
      result = inspect(copy, `backup ${source}`);
    } catch (err) {
      if (err instanceof RestoreRefusedError) throw err;
      throw new RestoreRefusedError(`backup ${source} is not a readable mfa-gateway store: ${errorMessage(err)}`, { cause: err });
    } finally {
      copy?.close();
    }
    if (!result.ok) {
      const more = result.problems.length > 1 ? ` (and ${result.problems.length - 1} more problems)` : '';
      throw new RestoreRefusedError(`backup ${source}: its audit chain is broken: ${result.problems[0] ?? 'unknown problem'}${more}`);
    }

    const holder = liveLockHolder(target);
    if (holder !== undefined) {
      if (!opts.force) {
        throw new RestoreRefusedError(
          `the store ${target} is in use by a running gateway (pid ${holder.pid}): stop it first, or use --force and restart it afterwards`,
        );
      }
      log.warn({ target, pid: holder.pid }, 'restoring over a store that a running gateway serves (forced); restart it');
    }

    for (const f of [`${target}-wal`, `${target}-shm`, `${target}-journal`]) rmSync(f, { force: true });
    renameSync(tmp, target);
    syncFile(dirname(target));
    cleanup();
    log.info({ backup: source, target, records: result.records }, 'store restored');
    return Promise.resolve({ records: result.records });
  } catch (err) {
    cleanup();
    if (err instanceof GatewayError) return Promise.reject(err);
    return Promise.reject(new StoreError(`restore of ${source} into ${target} failed: ${errorMessage(err)}`, { cause: err }));
  }
}
