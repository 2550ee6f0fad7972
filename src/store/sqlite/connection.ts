import { chmodSync, closeSync, constants as fsConstants, fchmodSync, fstatSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { GatewayError, StoreError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { latestVersion, type Migration } from '../migrations/migration.js';

/**
 * Opening a SQLite store file: its mode, the connection settings, the schema migrations. Shared by
 * the store and by restore (which checks a backup's schema before putting it in place).
 */

/** How long a writer waits for another process's write transaction before failing. */
export const BUSY_TIMEOUT_MS = 5000;

/** Creates the file with mode 0600 (and its directory) before SQLite opens it with its default mode. */
export function prepareFile(path: string, log: Logger): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new StoreError(`${path} is not a regular file`);
    // The store holds sealed OATH secrets and password hashes: nobody else reads it.
    if ((st.mode & 0o077) !== 0) {
      fchmodSync(fd, 0o600);
      log.warn({ path, mode: (st.mode & 0o777).toString(8) }, 'store file was readable by others; mode set to 0600');
    }
  } finally {
    closeSync(fd);
  }
  // SQLite gives -wal and -shm the main file's mode when it creates them; older ones may be looser.
  for (const companion of [`${path}-wal`, `${path}-shm`]) {
    try {
      if ((statSync(companion).mode & 0o077) !== 0) chmodSync(companion, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

export function openConnection(path: string, readonly: boolean): Database.Database {
  const db = new Database(path, { readonly, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  try {
    // Refuse some other database before changing anything in it (its journal mode, for one).
    schemaVersionOf(db, path);
    if (!readonly) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new StoreError(`${path}: cannot switch to WAL mode (journal_mode is ${String(mode)})`);
      db.pragma('secure_delete = ON');
    }
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('trusted_schema = OFF');
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

const CREATE_SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version     INTEGER NOT NULL PRIMARY KEY,
  name        TEXT    NOT NULL,
  applied_at  BIGINT  NOT NULL
)`;

/** The schema version of an open database: 0 when new; throws when it is some other database. */
export function schemaVersionOf(db: Database.Database, path: string): number {
  const has = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
  if (has === undefined) {
    const others = db.prepare(`SELECT COUNT(*) AS n FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`).get() as { n: number };
    if (others.n > 0) throw new StoreError(`${path} is not an mfa-gateway store (it has tables but no schema_migrations)`);
    return 0;
  }
  return (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
}

function newerSchemaError(path: string, version: number, known: number): StoreError {
  return new StoreError(
    `${path} has schema version ${version}, newer than this build of mfa-gateway knows (${known}): upgrade mfa-gateway, or restore a backup made by this version`,
  );
}

/** Applies pending migrations, each in its own IMMEDIATE transaction, re-checking the version inside it (another process may be migrating too). */
export function migrate(db: Database.Database, path: string, readonly: boolean, migrations: readonly Migration[], log: Logger): number {
  const known = latestVersion(migrations);
  let version = schemaVersionOf(db, path);
  if (version > known) throw newerSchemaError(path, version, known);
  if (readonly) {
    if (version < known) {
      throw new StoreError(`${path} has schema version ${version}, older than this build (${known}); open it read-write once to migrate it`);
    }
    return version;
  }
  const applyOne = db.transaction((m: Migration): boolean => {
    const now = schemaVersionOf(db, path);
    if (now > known) throw newerSchemaError(path, now, known);
    if (now >= m.version) return false;
    db.exec(CREATE_SCHEMA_MIGRATIONS);
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    return true;
  });
  for (const m of migrations) {
    if (m.version <= version) continue;
    try {
      if (applyOne.immediate(m)) log.info({ path, version: m.version, name: m.name }, 'store migration applied');
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new StoreError(`${path}: migration ${m.version} (${m.name}) failed: ${errorMessage(err)}`, { cause: err });
    }
    version = m.version;
  }
  return version;
}

/** fsync a file or directory (a rename or create is durable only once its directory is synced). */
export function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
