import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ChainVerifier, sealAuditRecord, type ChainHead } from '../../audit/chain.js';
import { AUDIT_ROW_COLUMNS, auditRowValues, normaliseAuditEntry, rowToAuditRecord, storableText } from '../../audit/record.js';
import {
  AlreadyExistsError,
  GatewayError,
  InvalidInputError,
  NotFoundError,
  StoreError,
  StoreReadOnlyError,
  errorMessage,
} from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import { LINES_PER_MINUTE, RateLimitedLog } from '../../rate-limited-log.js';
import { looksLikeDn, normaliseDn } from '../../directory/dn.js';
import { SQLITE_MIGRATIONS } from '../migrations/sqlite.js';
import { UserNameIndex } from '../user-name-index.js';
import type {
  AccountingEntry,
  Bypass,
  NewBypass,
  NewPushDevice,
  NewSentCode,
  PushDevice,
  SentCode,
  AuditEntry,
  AuditQuery,
  AuditRecord,
  AuditVerifyResult,
  DirectoryConflict,
  DirectoryMember,
  DirectoryRemoveOptions,
  DirectoryRemoveResult,
  DirectorySource,
  DirectoryUpsertResult,
  DirectoryUserData,
  DirectoryWriteOptions,
  LockoutState,
  NewOathToken,
  NewSyncRun,
  NewUser,
  OathToken,
  Store,
  SyncedUser,
  SyncRun,
  SyncRunQuery,
  SyncState,
  User,
  UserIndexStats,
  UserPatch,
} from '../store.js';
import { toBypass, toPushDevice, toSentCode, verificationStatements, type VerificationStatements } from './verification-statements.js';
import { BUSY_TIMEOUT_MS, migrate, openConnection, prepareFile, syncFile } from './connection.js';
import { WalFile, type WalSync } from './wal-file.js';

export { restoreSqliteStore, type RestoreOptions } from './restore.js';

/**
 * The embedded engine: one SQLite file (WAL), shared by the gateway process and the CLI.
 *
 * - Durability: WAL. Administrative writes commit with synchronous=FULL (fsync'd before COMMIT
 *   returns). The hot path (audit records, single-use claims, failure counts) commits with
 *   synchronous=NORMAL, which already survives a crash or kill -9 of the process, and then has
 *   the WAL file fsync'd before an audit append settles: an attempt is never answered before its
 *   audit record, and every claim written before it, would survive a power loss. Under load the
 *   fsync runs off the event loop (libuv's thread pool), which goes on deciding other attempts
 *   meanwhile, and one fsync serves every commit made before it began; a lone record on a quiet
 *   gateway is fsync'd inline, which is quicker (see whenDurable).
 * - Concurrency: every write is one statement or one BEGIN IMMEDIATE transaction, so a writer
 *   takes the write lock before reading what it decides on (no lost updates between the gateway
 *   and the CLI); busy_timeout makes a writer wait for the other process instead of failing.
 *   better-sqlite3 is synchronous, so that wait blocks the event loop; the other process's
 *   transactions are short, and the wait is bounded by BUSY_TIMEOUT_MS.
 * - Audit: group commit (see appendAudit) and the chain head, read inside the write
 *   transaction, because another process may have appended since.
 * - Long reads (queryAudit, verifyAudit) run on a separate read-only connection inside one read
 *   transaction, in pages, yielding to the event loop between pages: a consistent snapshot that
 *   neither blocks the writer (WAL) nor the event loop.
 */

export interface SqliteStoreOptions {
  /** The database file; its directory is created (mode 0700) when missing. */
  readonly path: string;
  readonly logger?: Logger;
  /** Open without writing anything (no migration, no WAL switch); every write throws StoreReadOnlyError. */
  readonly readonly?: boolean;
  /**
   * true (default): an audit append settles only once the write-ahead log holding it is fsync'd,
   * so no reply leaves before its record would survive a power loss. false: it settles at COMMIT
   * (the record survives a crash or kill -9 of the process) and the fsync follows on the thread
   * pool without being waited for: a power loss may lose the last moments of records.
   */
  readonly fsyncBeforeReply?: boolean;
  /** How the write-ahead log is fsync'd (default: a WalFile on it; tests slow it down to observe the ordering). */
  readonly openWal?: (walPath: string) => WalSync;
}

/** Upper bound of records per audit transaction; a larger burst becomes several transactions. */
const AUDIT_BATCH_MAX = 5000;
const READ_PAGE = 1000;

/** The case-folded form of a user name or UPN that uniqueness and lookups use. */
export function nameKey(name: string): string {
  return storableText(name).normalize('NFC').toLowerCase();
}

// --- errors ----------------------------------------------------------------------------------

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

/** Every fault leaves the store as a GatewayError; SQLite's own error stays as the cause. */
function toStoreError(op: string, err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = sqliteCode(err);
  if (code?.startsWith('SQLITE_READONLY') === true) {
    return new StoreReadOnlyError(`${op}: the store is read-only (${errorMessage(err)})`, { cause: err });
  }
  if (code === 'SQLITE_BUSY' || code?.startsWith('SQLITE_BUSY_') === true) {
    return new StoreError(`${op}: the store is locked by another process for more than ${BUSY_TIMEOUT_MS} ms`, { cause: err });
  }
  return new StoreError(`${op}: ${errorMessage(err)}`, { cause: err });
}

// --- input checks ----------------------------------------------------------------------------

function invalid(message: string): never {
  throw new InvalidInputError(message);
}

function text(field: string, v: unknown): string {
  if (typeof v !== 'string') invalid(`${field} must be a string`);
  return v;
}

function nonEmpty(field: string, v: unknown): string {
  const s = text(field, v);
  if (s.trim().length === 0) invalid(`${field} must not be empty`);
  if (s.length > 1024) invalid(`${field} is too long`);
  return s;
}

function optText(field: string, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  return text(field, v);
}

function bool(field: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') invalid(`${field} must be a boolean`);
  return v;
}

function int(field: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) invalid(`${field} must be an integer from ${min} to ${max}`);
  return v;
}

function time(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) invalid(`${field} must be a finite number (epoch ms)`);
  return v;
}

function source(v: unknown): string {
  if (v === undefined) return 'local';
  if (v === 'local' || (typeof v === 'string' && /^directory:.+/.test(v))) return v;
  invalid(`source must be 'local' or 'directory:<name>'`);
}

// --- rows ------------------------------------------------------------------------------------

interface UserRow {
  id: string;
  username: string;
  username_key: string;
  upn: string | null;
  upn_key: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  phone: string | null;
  mobile: string | null;
  default_method: string | null;
  language: string | null;
  enabled: number;
  blocked: number;
  password_hash: string | null;
  source: string;
  created_at: number;
  updated_at: number;
  synced_at: number | null;
  /** Added by migration 2; NULL for local users. */
  external_id: string | null;
  /** Added by migration 3. */
  pin_hash: string | null;
  pin_must_change: number;
  /** Added by migration 4; NULL for local users. */
  directory_dn: string | null;
  dn_key: string | null;
}

/** A user row with its SQLite rowid, what the in-memory name index points at. */
interface IndexedUserRow extends UserRow {
  row_number: number;
}

/**
 * Every users column, rowid first, in one fixed order: the name lookups that run on every login
 * read rows in raw mode (one array each) and indexedUserRowOf names the values. A row object
 * from better-sqlite3 is built one property at a time, and at this width V8 turns it into a slow
 * dictionary: 4 KB of garbage per login and about a third of findUser's time (measured).
 */
const USER_ROW_COLUMNS = [
  'row_number',
  'id',
  'username',
  'username_key',
  'upn',
  'upn_key',
  'first_name',
  'last_name',
  'email',
  'phone',
  'mobile',
  'default_method',
  'language',
  'enabled',
  'blocked',
  'password_hash',
  'source',
  'created_at',
  'updated_at',
  'synced_at',
  'external_id',
  'pin_hash',
  'pin_must_change',
  'directory_dn',
  'dn_key',
] as const satisfies readonly (keyof IndexedUserRow)[];
// Compile-time check that the list names every column of the row type.
const _everyUserColumn: Exclude<keyof IndexedUserRow, (typeof USER_ROW_COLUMNS)[number]> extends never ? true : never = true;
const USER_ROW_SELECT = USER_ROW_COLUMNS.map((c) => (c === 'row_number' ? 'rowid AS row_number' : c)).join(', ');
const USER_ROW_AT = Object.fromEntries(USER_ROW_COLUMNS.map((c, i) => [c, i])) as Record<keyof IndexedUserRow, number>;

function userCol<K extends keyof IndexedUserRow>(v: readonly unknown[], k: K): IndexedUserRow[K] {
  return v[USER_ROW_AT[k]] as IndexedUserRow[K];
}

/** A raw row of USER_ROW_SELECT as a row object (one literal: one allocation, one hidden class). */
function indexedUserRowOf(v: readonly unknown[] | undefined): IndexedUserRow | undefined {
  if (v === undefined) return undefined;
  return {
    row_number: userCol(v, 'row_number'),
    id: userCol(v, 'id'),
    username: userCol(v, 'username'),
    username_key: userCol(v, 'username_key'),
    upn: userCol(v, 'upn'),
    upn_key: userCol(v, 'upn_key'),
    first_name: userCol(v, 'first_name'),
    last_name: userCol(v, 'last_name'),
    email: userCol(v, 'email'),
    phone: userCol(v, 'phone'),
    mobile: userCol(v, 'mobile'),
    default_method: userCol(v, 'default_method'),
    language: userCol(v, 'language'),
    enabled: userCol(v, 'enabled'),
    blocked: userCol(v, 'blocked'),
    password_hash: userCol(v, 'password_hash'),
    source: userCol(v, 'source'),
    created_at: userCol(v, 'created_at'),
    updated_at: userCol(v, 'updated_at'),
    synced_at: userCol(v, 'synced_at'),
    external_id: userCol(v, 'external_id'),
    pin_hash: userCol(v, 'pin_hash'),
    pin_must_change: userCol(v, 'pin_must_change'),
    directory_dn: userCol(v, 'directory_dn'),
    dn_key: userCol(v, 'dn_key'),
  };
}

function toUser(r: UserRow): User {
  return {
    id: r.id,
    username: r.username,
    upn: r.upn,
    firstName: r.first_name,
    lastName: r.last_name,
    email: r.email,
    phone: r.phone,
    mobile: r.mobile,
    defaultMethod: r.default_method,
    language: r.language,
    enabled: r.enabled === 1,
    blocked: r.blocked === 1,
    passwordHash: r.password_hash,
    pinHash: r.pin_hash,
    pinMustChange: r.pin_must_change === 1,
    source: r.source as User['source'],
    directoryDn: r.directory_dn,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    syncedAt: r.synced_at,
  };
}

interface TokenRow {
  id: string;
  user_id: string;
  kind: string;
  label: string;
  algorithm: string;
  digits: number;
  period: number;
  counter: number;
  sealed_secret: Buffer;
  last_used_step: number | null;
  enabled: number;
  created_at: number;
  last_used_at: number | null;
}

function toToken(r: TokenRow): OathToken {
  return {
    id: r.id,
    userId: r.user_id,
    kind: r.kind as OathToken['kind'],
    label: r.label,
    algorithm: r.algorithm as OathToken['algorithm'],
    digits: r.digits,
    period: r.period,
    counter: r.counter,
    sealedSecret: Buffer.from(r.sealed_secret),
    lastUsedStep: r.last_used_step,
    enabled: r.enabled === 1,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

interface LockoutRow {
  failures: number;
  locked_until: number | null;
}

/** The user columns a create or update writes (everything but the timestamps). */
interface UserValues {
  id: string;
  username: string;
  username_key: string;
  upn: string | null;
  upn_key: string | null;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  phone: string | null;
  mobile: string | null;
  default_method: string | null;
  language: string | null;
  enabled: number;
  blocked: number;
  password_hash: string | null;
  pin_hash: string | null;
  pin_must_change: number;
  source: string;
}

function userValues(id: string, u: Omit<NewUser, 'id'>): UserValues {
  const username = nonEmpty('username', u.username);
  // An empty UPN means "none"; as a value it would make every UPN-less user collide.
  const upnText = optText('upn', u.upn);
  const upn = upnText === null || upnText.trim() === '' ? null : upnText;
  return {
    id,
    username,
    username_key: nameKey(username),
    upn,
    upn_key: upn === null ? null : nameKey(upn),
    first_name: optText('firstName', u.firstName),
    last_name: optText('lastName', u.lastName),
    email: optText('email', u.email),
    phone: optText('phone', u.phone),
    mobile: optText('mobile', u.mobile),
    default_method: optText('defaultMethod', u.defaultMethod),
    language: optText('language', u.language),
    enabled: bool('enabled', u.enabled, true) ? 1 : 0,
    blocked: bool('blocked', u.blocked, false) ? 1 : 0,
    password_hash: optText('passwordHash', u.passwordHash),
    pin_hash: optText('pinHash', u.pinHash),
    pin_must_change: bool('pinMustChange', u.pinMustChange, false) ? 1 : 0,
    source: source(u.source),
  };
}

/** A hot-path write waiting for its group transaction (relaxedOp). */
interface RelaxedOp {
  readonly name: string;
  readonly fn: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

type RelaxedResult = { ok: true; value: unknown } | { ok: false; err: unknown };

interface PendingAudit {
  readonly entry: AuditEntry;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (err: GatewayError) => void;
}

// --- the store -------------------------------------------------------------------------------

function statements(db: Database.Database) {
  const auditInsertCols = AUDIT_ROW_COLUMNS.join(', ');
  const auditInsertVals = AUDIT_ROW_COLUMNS.map(() => '?').join(', ');
  const userCols =
    'id, username, username_key, upn, upn_key, first_name, last_name, email, phone, mobile, default_method, language, enabled, blocked, password_hash, pin_hash, pin_must_change, source';
  return {
    userById: db.prepare<[string], IndexedUserRow>('SELECT rowid AS row_number, * FROM users WHERE id = ?'),
    // Raw rows (indexedUserRowOf): the lookups of every login.
    userByUsername: db.prepare<[string], unknown[]>(`SELECT ${USER_ROW_SELECT} FROM users WHERE username_key = ?`).raw(true),
    userByUpn: db.prepare<[string], unknown[]>(`SELECT ${USER_ROW_SELECT} FROM users WHERE upn_key = ?`).raw(true),
    userByRow: db.prepare<[number], unknown[]>(`SELECT ${USER_ROW_SELECT} FROM users WHERE rowid = ?`).raw(true),
    // Two are enough to know that a DN is ambiguous.
    usersByDnKey: db.prepare<[string], UserRow>('SELECT * FROM users WHERE dn_key = ? LIMIT 2'),
    userNameKeys: db.prepare<[], [number, string, string | null]>('SELECT rowid, username_key, upn_key FROM users').raw(),
    userCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM users'),
    usersAll: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY username_key, id'),
    userCreateConflict: db.prepare<[{ id: string; u: string; p: string | null }], UserRow>(
      'SELECT * FROM users WHERE id = @id OR username_key IN (@u, @p) OR upn_key IN (@u, @p) LIMIT 1',
    ),
    userUpdateConflict: db.prepare<[{ id: string; u: string; p: string | null }], UserRow>(
      'SELECT * FROM users WHERE id <> @id AND (username_key IN (@u, @p) OR upn_key IN (@u, @p)) LIMIT 1',
    ),
    userInsert: db.prepare<[UserValues & { created_at: number; updated_at: number }]>(
      `INSERT INTO users (${userCols}, created_at, updated_at) VALUES (${userCols
        .split(', ')
        .map((c) => `@${c}`)
        .join(', ')}, @created_at, @updated_at)`,
    ),
    userUpdate: db.prepare<[UserValues & { updated_at: number }]>(
      `UPDATE users SET ${userCols
        .split(', ')
        .filter((c) => c !== 'id')
        .map((c) => `${c} = @${c}`)
        .join(', ')}, updated_at = @updated_at WHERE id = @id`,
    ),
    userDelete: db.prepare<[string]>('DELETE FROM users WHERE id = ?'),

    tokenById: db.prepare<[string], TokenRow>('SELECT * FROM oath_tokens WHERE id = ?'),
    tokensOfUser: db.prepare<[string], TokenRow>('SELECT * FROM oath_tokens WHERE user_id = ? ORDER BY created_at, id'),
    tokenInsert: db.prepare<[Omit<TokenRow, 'last_used_step' | 'last_used_at'>]>(
      `INSERT INTO oath_tokens (id, user_id, kind, label, algorithm, digits, period, counter, sealed_secret, enabled, created_at)
       VALUES (@id, @user_id, @kind, @label, @algorithm, @digits, @period, @counter, @sealed_secret, @enabled, @created_at)`,
    ),
    tokenDelete: db.prepare<[string]>('DELETE FROM oath_tokens WHERE id = ?'),
    // The single conditional writes whose row count says who won.
    totpClaim: db.prepare<[{ id: string; step: number; now: number }]>(
      `UPDATE oath_tokens SET last_used_step = @step, last_used_at = @now
       WHERE id = @id AND kind = 'totp' AND (last_used_step IS NULL OR last_used_step < @step)`,
    ),
    hotpAdvance: db.prepare<[{ id: string; expected: number; next: number; now: number }]>(
      `UPDATE oath_tokens SET counter = @next, last_used_at = @now
       WHERE id = @id AND kind = 'hotp' AND counter = @expected`,
    ),

    lockoutGet: db.prepare<[string], LockoutRow>('SELECT failures, locked_until FROM lockouts WHERE user_id = ?'),
    lockoutPut: db.prepare<[{ user_id: string; failures: number; locked_until: number | null; now: number }]>(
      `INSERT INTO lockouts (user_id, failures, locked_until, updated_at) VALUES (@user_id, @failures, @locked_until, @now)
       ON CONFLICT (user_id) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until, updated_at = excluded.updated_at`,
    ),
    lockoutClear: db.prepare<[string]>('DELETE FROM lockouts WHERE user_id = ?'),

    claimInsert: db.prepare<[{ kind: string; key: string; now: number; expires: number }]>(
      `INSERT INTO single_use_claims (kind, claim_key, claimed_at, expires_at) VALUES (@kind, @key, @now, @expires)
       ON CONFLICT (kind, claim_key) DO NOTHING`,
    ),
    claimsPrune: db.prepare<[number]>('DELETE FROM single_use_claims WHERE expires_at < ?'),

    auditHead: db.prepare<[], ChainHead>('SELECT seq, hash FROM audit_head WHERE id = 1'),
    auditLastSeq: db.prepare<[], { seq: number }>('SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1'),
    // A duplicate id inserts nothing (changes 0) instead of aborting the whole group commit.
    // Positional parameters (auditRowValues): binding 31 named ones looked each name up per row.
    auditInsert: db.prepare<[unknown[]]>(`INSERT INTO audit_log (${auditInsertCols}) VALUES (${auditInsertVals}) ON CONFLICT (id) DO NOTHING`),
    auditHeadSet: db.prepare<[{ seq: number; hash: string }]>('UPDATE audit_head SET seq = @seq, hash = @hash WHERE id = 1'),

    accountingInsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO accounting (received_at, client_name, client_ip, status_type, session_id, username, nas_identifier, nas_ip_address, attributes)
       VALUES (@received_at, @client_name, @client_ip, @status_type, @session_id, @username, @nas_identifier, @nas_ip_address, @attributes)`,
    ),
    accountingCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM accounting'),
    syncNormal: db.prepare('PRAGMA synchronous = NORMAL'),
    syncFull: db.prepare('PRAGMA synchronous = FULL'),
  };
}

type Statements = ReturnType<typeof statements>;

// --- directory sync: rows, checks and statements -----------------------------------------------

function directorySource(v: unknown): DirectorySource {
  if (typeof v === 'string' && /^directory:.+/.test(v)) return v as DirectorySource;
  invalid(`source must be 'directory:<name>' (a sync never touches local users)`);
}

function itemName(v: unknown): string {
  const s = nonEmpty('item', v);
  if (s.length > 128) invalid('item is too long');
  return s;
}

interface SyncStateRow {
  source: string;
  item: string;
  item_hash: string;
  server: string | null;
  invocation_id: string | null;
  highest_usn: string | null;
  modify_timestamp: string | null;
  context_csn: string | null;
  last_full_at: number | null;
  last_run_at: number;
}

function toSyncState(r: SyncStateRow): SyncState {
  return {
    source: r.source as DirectorySource,
    item: r.item,
    itemHash: r.item_hash,
    server: r.server,
    invocationId: r.invocation_id,
    highestUsn: r.highest_usn,
    modifyTimestamp: r.modify_timestamp,
    contextCsn: r.context_csn,
    lastFullAt: r.last_full_at,
    lastRunAt: r.last_run_at,
  };
}

interface SyncRunRow {
  id: number;
  source: string;
  item: string;
  kind: string;
  status: string;
  forced: number;
  started_at: number;
  finished_at: number;
  seen: number;
  added: number;
  updated: number;
  disabled: number;
  removed: number;
  unchanged: number;
  errors: string;
}

function toSyncRun(r: SyncRunRow): SyncRun {
  let errors: string[] = [];
  try {
    const parsed: unknown = JSON.parse(r.errors);
    if (Array.isArray(parsed)) errors = parsed.map(String);
  } catch {
    errors = [r.errors];
  }
  return {
    id: r.id,
    source: r.source as DirectorySource,
    item: r.item,
    kind: r.kind as SyncRun['kind'],
    status: r.status as SyncRun['status'],
    forced: r.forced === 1,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    seen: r.seen,
    added: r.added,
    updated: r.updated,
    disabled: r.disabled,
    removed: r.removed,
    unchanged: r.unchanged,
    errors,
  };
}

/** The columns a sync writes; blocked, password_hash, the PIN, tokens and lockout state are never its business. */
type DirectoryValues = Omit<UserValues, 'blocked' | 'password_hash' | 'pin_hash' | 'pin_must_change'> & {
  external_id: string;
  directory_dn: string;
  dn_key: string;
};

function directoryValues(src: DirectorySource, u: DirectoryUserData): DirectoryValues {
  if (typeof u !== 'object' || u === null) invalid('a directory user must be an object');
  const externalId = nonEmpty('externalId', u.externalId);
  const { blocked: _blocked, password_hash: _hash, pin_hash: _pin, pin_must_change: _pinChange, ...v } = userValues(externalId, {
    username: u.username,
    upn: u.upn,
    firstName: u.firstName,
    lastName: u.lastName,
    email: u.email,
    phone: u.phone,
    mobile: u.mobile,
    defaultMethod: u.defaultMethod,
    language: u.language,
    enabled: u.enabled,
    source: src,
  });
  const dn = nonEmpty('dn', u.dn);
  return { ...v, external_id: externalId, directory_dn: dn, dn_key: normaliseDn(dn) ?? dn.toLowerCase() };
}

const SYNCED_FIELDS = ['username', 'upn', 'first_name', 'last_name', 'email', 'phone', 'mobile', 'default_method', 'language', 'enabled', 'directory_dn'] as const;

function sameSyncedValues(row: UserRow, v: DirectoryValues): boolean {
  return SYNCED_FIELDS.every((f) => row[f] === v[f]);
}

/** Thrown inside a dry run's transaction so that better-sqlite3 rolls it back. */
class DryRunRollback extends Error {}

function syncStatements(db: Database.Database) {
  const cols =
    'id, username, username_key, upn, upn_key, first_name, last_name, email, phone, mobile, default_method, language, enabled, source, external_id, directory_dn, dn_key';
  return {
    userBySourceExt: db.prepare<[{ source: string; ext: string }], IndexedUserRow>(
      'SELECT rowid AS row_number, * FROM users WHERE source = @source AND external_id = @ext',
    ),
    usersOfSource: db.prepare<[string], UserRow>('SELECT * FROM users WHERE source = ? ORDER BY username_key, id'),
    membershipsOfSource: db.prepare<[string], { user_id: string; item: string }>(
      'SELECT m.user_id, m.item FROM sync_memberships m JOIN users u ON u.id = m.user_id WHERE u.source = ? ORDER BY m.item',
    ),
    // In index order (source, external_id): no sort, one row per membership, raw arrays (no objects per row).
    membersOfSource: db
      .prepare<[string], [string, number, string | null]>(
        `SELECT u.external_id, u.enabled, m.item FROM users u LEFT JOIN sync_memberships m ON m.user_id = u.id
         WHERE u.source = ? AND u.external_id IS NOT NULL ORDER BY u.external_id, m.item`,
      )
      .raw(),
    insert: db.prepare<[DirectoryValues & { blocked: number; created_at: number; updated_at: number; synced_at: number }]>(
      `INSERT INTO users (${cols}, blocked, created_at, updated_at, synced_at) VALUES (${cols
        .split(', ')
        .map((c) => `@${c}`)
        .join(', ')}, @blocked, @created_at, @updated_at, @synced_at)`,
    ),
    update: db.prepare<[DirectoryValues & { updated_at: number; synced_at: number }]>(
      `UPDATE users SET ${cols
        .split(', ')
        .filter((c) => c !== 'id' && c !== 'source' && c !== 'external_id')
        .map((c) => `${c} = @${c}`)
        .join(', ')}, updated_at = @updated_at, synced_at = @synced_at WHERE id = @id AND source = @source`,
    ),
    touch: db.prepare<[{ id: string; synced_at: number }]>('UPDATE users SET synced_at = @synced_at WHERE id = @id'),
    disable: db.prepare<[{ id: string; now: number }]>('UPDATE users SET enabled = 0, updated_at = MAX(updated_at, @now), synced_at = @now WHERE id = @id'),
    membershipAdd: db.prepare<[{ user_id: string; item: string; since: number }]>(
      'INSERT INTO sync_memberships (user_id, item, since) VALUES (@user_id, @item, @since) ON CONFLICT (user_id, item) DO NOTHING',
    ),
    membershipDelete: db.prepare<[{ user_id: string; item: string }]>('DELETE FROM sync_memberships WHERE user_id = @user_id AND item = @item'),
    membershipCount: db.prepare<[string], { n: number }>('SELECT COUNT(*) AS n FROM sync_memberships WHERE user_id = ?'),
    stateGet: db.prepare<[{ source: string; item: string }], SyncStateRow>('SELECT * FROM sync_state WHERE source = @source AND item = @item'),
    statePut: db.prepare<[SyncStateRow]>(
      `INSERT INTO sync_state (source, item, item_hash, server, invocation_id, highest_usn, modify_timestamp, context_csn, last_full_at, last_run_at)
       VALUES (@source, @item, @item_hash, @server, @invocation_id, @highest_usn, @modify_timestamp, @context_csn, @last_full_at, @last_run_at)
       ON CONFLICT (source, item) DO UPDATE SET item_hash = excluded.item_hash, server = excluded.server, invocation_id = excluded.invocation_id,
         highest_usn = excluded.highest_usn, modify_timestamp = excluded.modify_timestamp, context_csn = excluded.context_csn,
         last_full_at = excluded.last_full_at, last_run_at = excluded.last_run_at`,
    ),
    runInsert: db.prepare<[Omit<SyncRunRow, 'id'>]>(
      `INSERT INTO sync_runs (source, item, kind, status, forced, started_at, finished_at, seen, added, updated, disabled, removed, unchanged, errors)
       VALUES (@source, @item, @kind, @status, @forced, @started_at, @finished_at, @seen, @added, @updated, @disabled, @removed, @unchanged, @errors)`,
    ),
    runById: db.prepare<[number | bigint], SyncRunRow>('SELECT * FROM sync_runs WHERE id = ?'),
  };
}

type SyncStatements = ReturnType<typeof syncStatements>;

class SqliteStore implements Store {
  readonly engine = 'sqlite' as const;
  private readonly st: Statements;
  private readonly sy: SyncStatements;
  private readonly vs: VerificationStatements;
  private closed = false;
  /** Incremented by every write of this connection; half of changeMarker. */
  private ownWrites = 0;
  private auditQueue: PendingAudit[] = [];
  private relaxedQueue: RelaxedOp[] = [];
  /**
   * The two group-commit transactions, made once: better-sqlite3 builds four wrapper functions
   * per transaction() call, and these run on every attempt.
   */
  private readonly relaxedTxn: Database.Transaction<(batch: readonly RelaxedOp[], results: RelaxedResult[]) => void>;
  private readonly auditTxn: Database.Transaction<(batch: readonly PendingAudit[]) => (AuditRecord | GatewayError)[]>;
  private relaxedTimer: NodeJS.Immediate | undefined;
  private flushTimer: NodeJS.Immediate | undefined;
  private headWarned = false;
  private readonly readers = new Set<Database.Database>();
  /** Every user's login names in memory (see indexUserNames); undefined until loaded. */
  private names: UserNameIndex | undefined;
  /** Generation of the last synchronous=NORMAL commit, and of the last one known to be on disk. */
  private walCommitted = 0;
  private walSynced = 0;
  private walSyncing = false;
  private walWaiters: Array<{ gen: number; done: () => void; fail: (err: GatewayError) => void }> = [];
  private readonly wal: WalSync;
  /**
   * Write failures of the audit path, at most LINES_PER_MINUTE per kind: a full disk fails every
   * group commit and fsync the same way, and each attempt's own fault line is limited too.
   */
  private readonly failureLog: RateLimitedLog;

  constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly readonly: boolean,
    private readonly log: Logger,
    /** SqliteStoreOptions.fsyncBeforeReply. */
    private readonly fsyncBeforeReply: boolean,
    openWal: (walPath: string) => WalSync = (walPath) => new WalFile(walPath),
  ) {
    this.wal = openWal(`${path}-wal`);
    this.failureLog = new RateLimitedLog(log, LINES_PER_MINUTE);
    this.st = statements(db);
    this.sy = syncStatements(db);
    this.vs = verificationStatements(db);
    this.relaxedTxn = db.transaction((batch: readonly RelaxedOp[], results: RelaxedResult[]): void => {
      for (const op of batch) {
        // A failing statement is rolled back alone (SQLite statement journal); the rest commit.
        try {
          results.push({ ok: true, value: op.fn() });
        } catch (err) {
          results.push({ ok: false, err });
        }
      }
    });
    this.auditTxn = db.transaction((batch: readonly PendingAudit[]) => this.auditBatchBody(batch));
  }

  // --- plumbing ------------------------------------------------------------------------------

  private assertUsable(write: boolean): void {
    if (this.closed) throw new StoreError('the store is closed');
    if (write && this.readonly) throw new StoreReadOnlyError('the store was opened read-only');
  }

  /** Runs one synchronous operation as a settled promise; every fault becomes a GatewayError. */
  private op<T>(name: string, write: boolean, fn: () => T): Promise<T> {
    try {
      this.assertUsable(write);
      const value = fn();
      if (write) this.ownWrites++;
      return Promise.resolve(value);
    } catch (err) {
      return Promise.reject(toStoreError(name, err));
    }
  }

  /**
   * A hot-path write (single-use claims, failure counts) whose durability rides on the audit
   * group commit that follows it in the flow. Writes queued in one event-loop turn run in ONE
   * transaction committed with synchronous=NORMAL: no fsync of their own (safe against a process
   * crash), made power-loss durable by the WAL fsync that the attempt's audit append waits for.
   * Each write still sees its own row count, so "who won" is exact.
   */
  private relaxedOp<T>(name: string, fn: () => T): Promise<T> {
    try {
      this.assertUsable(true);
    } catch (err) {
      return Promise.reject(toStoreError(name, err));
    }
    return new Promise<T>((resolve, reject) => {
      this.relaxedQueue.push({ name, fn, resolve: resolve as (value: unknown) => void, reject });
      this.relaxedTimer ??= setImmediate(() => this.flushRelaxed());
    });
  }

  private flushRelaxed(): void {
    if (this.relaxedTimer !== undefined) clearImmediate(this.relaxedTimer);
    this.relaxedTimer = undefined;
    const batch = this.relaxedQueue;
    this.relaxedQueue = [];
    if (batch.length === 0) return;
    const results: RelaxedResult[] = [];
    try {
      this.st.syncNormal.run();
      try {
        this.relaxedTxn.immediate(batch, results);
      } finally {
        this.st.syncFull.run();
      }
    } catch (err) {
      // The transaction did not commit: none of the batch happened.
      for (const op of batch) op.reject(toStoreError(op.name, err));
      return;
    }
    this.ownWrites++;
    this.walCommitted++;
    batch.forEach((op, i) => {
      const r = results[i];
      if (r?.ok) op.resolve(r.value);
      else op.reject(toStoreError(op.name, r?.err));
    });
  }

  // --- users ---------------------------------------------------------------------------------

  private conflictError(found: UserRow, v: UserValues): AlreadyExistsError {
    if (found.id === v.id) return new AlreadyExistsError(`a user with id ${v.id} exists already`);
    if (found.username_key === v.username_key || found.upn_key === v.username_key) {
      return new AlreadyExistsError(`the user name ${JSON.stringify(v.username)} is taken (by ${found.username})`);
    }
    return new AlreadyExistsError(`the UPN ${JSON.stringify(v.upn)} is taken (by ${found.username})`);
  }

  createUser(user: NewUser): Promise<User> {
    return this.op('createUser', true, () => {
      const id = user.id === undefined ? randomUUID() : nonEmpty('id', user.id);
      const v = userValues(id, user);
      const now = Date.now();
      // Names are unique across both columns (a UPN must not be someone else's user name), which
      // a plain UNIQUE index cannot say: check and insert under the write lock.
      return this.db
        .transaction(() => {
          const found = this.st.userCreateConflict.get({ id, u: v.username_key, p: v.upn_key });
          if (found !== undefined) throw this.conflictError(found, v);
          const inserted = this.st.userInsert.run({ ...v, created_at: now, updated_at: now });
          this.indexNames(inserted.lastInsertRowid, v);
          return toUser(this.st.userById.get(id)!);
        })
        .immediate();
    });
  }

  getUser(id: string): Promise<User | undefined> {
    return this.op('getUser', false, () => {
      const row = this.st.userById.get(text('id', id));
      return row === undefined ? undefined : toUser(row);
    });
  }

  findUser(name: string): Promise<User | undefined> {
    return this.op('findUser', false, () => {
      const login = text('name', name);
      const key = nameKey(login);
      const names = this.names;
      if (names !== undefined) {
        for (const row of names.candidates(key)) {
          const found = indexedUserRowOf(this.st.userByRow.get(row));
          if (found !== undefined && (found.username_key === key || found.upn_key === key)) return toUser(found);
          // Renamed or deleted since (by another process), or a hash collision: forget it.
          names.remove(key, row);
        }
      }
      const row = indexedUserRowOf(this.st.userByUsername.get(key) ?? this.st.userByUpn.get(key));
      if (row !== undefined) {
        names?.add(key, row.row_number);
        return toUser(row);
      }
      // A login given as a DN: the synced user whose entry it names, when exactly one does.
      const dnKey = looksLikeDn(login) ? normaliseDn(login) : undefined;
      if (dnKey === undefined) return undefined;
      const byDn = this.st.usersByDnKey.all(dnKey);
      return byDn.length === 1 ? toUser(byDn[0]!) : undefined;
    });
  }

  indexUserNames(): Promise<UserIndexStats> {
    return this.op('indexUserNames', false, () => {
      const started = performance.now();
      const users = this.st.userCount.get()?.n ?? 0;
      const names = new UserNameIndex(users * 2);
      for (const [row, usernameKey, upnKey] of this.st.userNameKeys.iterate()) {
        names.add(usernameKey, row);
        if (upnKey !== null) names.add(upnKey, row);
      }
      this.names = names;
      return { users, names: names.size, bytes: names.bytes, ms: performance.now() - started };
    });
  }

  /** Notes a user's names in the index (when there is one) after this connection wrote them. */
  private indexNames(row: number | bigint, v: { username_key: string; upn_key: string | null }): void {
    if (this.names === undefined) return;
    this.names.add(v.username_key, Number(row));
    if (v.upn_key !== null) this.names.add(v.upn_key, Number(row));
  }

  listUsers(): Promise<User[]> {
    return this.op('listUsers', false, () => this.st.usersAll.all().map(toUser));
  }

  updateUser(id: string, patch: UserPatch): Promise<User> {
    return this.op('updateUser', true, () => {
      text('id', id);
      if (typeof patch !== 'object' || patch === null) invalid('patch must be an object');
      return this.db
        .transaction(() => {
          const row = this.st.userById.get(id);
          if (row === undefined) throw new NotFoundError(`no user with id ${id}`);
          const current = toUser(row);
          const merged: Record<string, unknown> = { ...current };
          for (const [k, value] of Object.entries(patch)) {
            if (value !== undefined && k !== 'id') merged[k] = value;
          }
          const v = userValues(id, merged as unknown as NewUser);
          const found = this.st.userUpdateConflict.get({ id, u: v.username_key, p: v.upn_key });
          if (found !== undefined) throw this.conflictError(found, v);
          this.st.userUpdate.run({ ...v, updated_at: Math.max(Date.now(), current.updatedAt) });
          this.indexNames(row.row_number, v);
          return toUser(this.st.userById.get(id)!);
        })
        .immediate();
    });
  }

  deleteUser(id: string): Promise<void> {
    return this.op('deleteUser', true, () => {
      // Tokens and lockout state go with it (ON DELETE CASCADE); audit records stay.
      if (this.st.userDelete.run(text('id', id)).changes === 0) throw new NotFoundError(`no user with id ${id}`);
    });
  }

  // --- directory sync ------------------------------------------------------------------------

  /** Runs `work` in one IMMEDIATE transaction; a dry run computes the same result, then rolls back. */
  private syncTransaction<T>(work: () => T, dryRun: boolean): T {
    if (!dryRun) return this.db.transaction(work).immediate();
    let result: T | undefined;
    try {
      this.db
        .transaction(() => {
          result = work();
          throw new DryRunRollback();
        })
        .immediate();
    } catch (err) {
      if (!(err instanceof DryRunRollback)) throw err;
    }
    return result as T;
  }

  private holderOf(row: UserRow): string {
    return row.source === 'local' ? `local user ${row.username}` : `${row.username} of ${row.source}`;
  }

  private nameTaken(holder: UserRow, v: DirectoryValues): string {
    if (holder.username_key === v.username_key || holder.upn_key === v.username_key) {
      return `the user name ${JSON.stringify(v.username)} is taken (by ${this.holderOf(holder)})`;
    }
    return `the UPN ${JSON.stringify(v.upn)} is taken (by ${this.holderOf(holder)})`;
  }

  upsertDirectoryUsers(source: DirectorySource, users: readonly DirectoryUserData[], opts: DirectoryWriteOptions): Promise<DirectoryUpsertResult> {
    return this.op('upsertDirectoryUsers', true, () => {
      const src = directorySource(source);
      const list: unknown = users;
      if (!Array.isArray(list)) invalid('users must be a list');
      if (typeof opts !== 'object' || opts === null) invalid('options must be an object');
      const item = itemName(opts.item);
      const now = time('now', opts.now);
      const dryRun = bool('dryRun', opts.dryRun, false);
      // Checked before the transaction: a malformed entry fails the call, not half of it.
      const values = users.map((u) => directoryValues(src, u));
      return this.syncTransaction((): DirectoryUpsertResult => {
        let added = 0;
        let updated = 0;
        let disabled = 0;
        let unchanged = 0;
        const conflicts: DirectoryConflict[] = [];
        const wall = Date.now();
        /** false: a name conflict that a later row of this batch may clear (a swap of names); retried once. */
        const one = (v: DirectoryValues, last: boolean): boolean => {
          const existing = this.sy.userBySourceExt.get({ source: src, ext: v.external_id });
          if (existing !== undefined) {
            const taken = this.st.userUpdateConflict.get({ id: existing.id, u: v.username_key, p: v.upn_key });
            if (taken !== undefined) {
              if (!last) return false;
              conflicts.push({ externalId: v.external_id, username: v.username, message: `${this.nameTaken(taken, v)}; kept as ${existing.username}` });
            } else if (sameSyncedValues(existing, v)) {
              this.sy.touch.run({ id: existing.id, synced_at: now });
              unchanged++;
            } else {
              this.sy.update.run({ ...v, id: existing.id, updated_at: Math.max(wall, existing.updated_at), synced_at: now });
              if (!dryRun) this.indexNames(existing.row_number, v);
              if (existing.enabled === 1 && v.enabled === 0) disabled++;
              else updated++;
            }
            // In scope, even when its new name could not be taken: it must not count as gone.
            this.sy.membershipAdd.run({ user_id: existing.id, item, since: now });
            return true;
          }
          const taken = this.st.userCreateConflict.get({ id: v.id, u: v.username_key, p: v.upn_key });
          if (taken !== undefined) {
            if (!last) return false;
            const message = taken.id === v.id ? `the id ${v.id} is held by ${this.holderOf(taken)}` : this.nameTaken(taken, v);
            conflicts.push({ externalId: v.external_id, username: v.username, message });
            return true;
          }
          const inserted = this.sy.insert.run({ ...v, blocked: 0, created_at: wall, updated_at: wall, synced_at: now });
          if (!dryRun) this.indexNames(inserted.lastInsertRowid, v);
          this.sy.membershipAdd.run({ user_id: v.id, item, since: now });
          added++;
          return true;
        };
        const retry = values.filter((v) => !one(v, false));
        for (const v of retry) one(v, true);
        return { added, updated, disabled, unchanged, conflicts };
      }, dryRun);
    });
  }

  listUsersBySource(source: DirectorySource): Promise<SyncedUser[]> {
    return this.op('listUsersBySource', false, () => {
      const src = directorySource(source);
      const items = new Map<string, string[]>();
      for (const m of this.sy.membershipsOfSource.all(src)) {
        const list = items.get(m.user_id);
        if (list === undefined) items.set(m.user_id, [m.item]);
        else list.push(m.item);
      }
      return this.sy.usersOfSource.all(src).map((r) => ({ ...toUser(r), externalId: r.external_id, items: items.get(r.id) ?? [] }));
    });
  }

  listDirectoryMembers(source: DirectorySource): Promise<DirectoryMember[]> {
    return this.op('listDirectoryMembers', false, () => {
      const out: Array<{ externalId: string; enabled: boolean; items: string[] }> = [];
      let last: { externalId: string; enabled: boolean; items: string[] } | undefined;
      for (const [ext, enabled, item] of this.sy.membersOfSource.all(directorySource(source))) {
        if (last?.externalId !== ext) {
          last = { externalId: ext, enabled: enabled === 1, items: [] };
          out.push(last);
        }
        if (item !== null) last.items.push(item);
      }
      return out;
    });
  }

  removeDirectoryUsers(source: DirectorySource, item: string, externalIds: readonly string[], opts: DirectoryRemoveOptions): Promise<DirectoryRemoveResult> {
    return this.op('removeDirectoryUsers', true, () => {
      const src = directorySource(source);
      const name = itemName(item);
      const list: unknown = externalIds;
      if (!Array.isArray(list)) invalid('externalIds must be a list');
      const ids = externalIds.map((x) => nonEmpty('externalId', x));
      if (typeof opts !== 'object' || opts === null) invalid('options must be an object');
      if (opts.onRemoved !== 'disable' && opts.onRemoved !== 'delete') invalid(`onRemoved must be 'disable' or 'delete'`);
      const now = time('now', opts.now);
      const dryRun = bool('dryRun', opts.dryRun, false);
      return this.syncTransaction((): DirectoryRemoveResult => {
        let disabled = 0;
        let removed = 0;
        let kept = 0;
        for (const ext of new Set(ids)) {
          const row = this.sy.userBySourceExt.get({ source: src, ext });
          if (row === undefined) continue;
          const had = this.sy.membershipDelete.run({ user_id: row.id, item: name }).changes > 0;
          if ((this.sy.membershipCount.get(row.id)?.n ?? 0) > 0) {
            if (had) kept++;
            continue;
          }
          if (opts.onRemoved === 'delete') {
            // Its tokens and lockout state go with it (ON DELETE CASCADE); audit records stay.
            this.st.userDelete.run(row.id);
            removed++;
          } else if (row.enabled === 1) {
            this.sy.disable.run({ id: row.id, now });
            disabled++;
          }
        }
        return { disabled, removed, kept };
      }, dryRun);
    });
  }

  getSyncState(source: DirectorySource, item: string): Promise<SyncState | undefined> {
    return this.op('getSyncState', false, () => {
      const row = this.sy.stateGet.get({ source: directorySource(source), item: itemName(item) });
      return row === undefined ? undefined : toSyncState(row);
    });
  }

  putSyncState(state: SyncState): Promise<void> {
    return this.op('putSyncState', true, () => {
      if (typeof state !== 'object' || state === null) invalid('state must be an object');
      const opt = (field: string, v: unknown): number | null => (v === null || v === undefined ? null : time(field, v));
      this.sy.statePut.run({
        source: directorySource(state.source),
        item: itemName(state.item),
        item_hash: nonEmpty('itemHash', state.itemHash),
        server: optText('server', state.server),
        invocation_id: optText('invocationId', state.invocationId),
        highest_usn: state.highestUsn === null || state.highestUsn === undefined ? null : /^\d{1,20}$/.test(state.highestUsn) ? state.highestUsn : invalid('highestUsn must be a decimal number'),
        modify_timestamp: optText('modifyTimestamp', state.modifyTimestamp),
        context_csn: optText('contextCsn', state.contextCsn),
        last_full_at: opt('lastFullAt', state.lastFullAt),
        last_run_at: time('lastRunAt', state.lastRunAt),
      });
    });
  }

  recordSyncRun(run: NewSyncRun): Promise<SyncRun> {
    return this.op('recordSyncRun', true, () => {
      if (typeof run !== 'object' || run === null) invalid('run must be an object');
      if (run.kind !== 'full' && run.kind !== 'delta') invalid(`kind must be 'full' or 'delta'`);
      if (run.status !== 'ok' && run.status !== 'failed' && run.status !== 'refused') invalid(`status must be 'ok', 'failed' or 'refused'`);
      if (!Array.isArray(run.errors) || run.errors.some((e) => typeof e !== 'string')) invalid('errors must be a list of strings');
      const count = (field: string, v: unknown): number => int(field, v, 0);
      const info = this.sy.runInsert.run({
        source: directorySource(run.source),
        item: itemName(run.item),
        kind: run.kind,
        status: run.status,
        forced: bool('forced', run.forced, false) ? 1 : 0,
        started_at: time('startedAt', run.startedAt),
        finished_at: time('finishedAt', run.finishedAt),
        seen: count('seen', run.seen),
        added: count('added', run.added),
        updated: count('updated', run.updated),
        disabled: count('disabled', run.disabled),
        removed: count('removed', run.removed),
        unchanged: count('unchanged', run.unchanged),
        errors: JSON.stringify(run.errors.map(storableText)),
      });
      return toSyncRun(this.sy.runById.get(info.lastInsertRowid)!);
    });
  }

  listSyncRuns(query: SyncRunQuery = {}): Promise<SyncRun[]> {
    return this.op('listSyncRuns', false, () => {
      const where: string[] = [];
      const params: Record<string, unknown> = { limit: int('limit', query.limit ?? 50, 1, 100_000) };
      if (query.source !== undefined) {
        where.push('source = @source');
        params.source = directorySource(query.source);
      }
      if (query.item !== undefined) {
        where.push('item = @item');
        params.item = itemName(query.item);
      }
      const sql = `SELECT * FROM sync_runs${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      return this.db.prepare<[Record<string, unknown>], SyncRunRow>(sql).all(params).map(toSyncRun);
    });
  }

  // --- tokens --------------------------------------------------------------------------------

  addToken(token: NewOathToken): Promise<OathToken> {
    return this.op('addToken', true, () => {
      if (typeof token !== 'object' || token === null) invalid('token must be an object');
      const id = token.id === undefined ? randomUUID() : nonEmpty('id', token.id);
      if (token.kind !== 'totp' && token.kind !== 'hotp') invalid(`kind must be 'totp' or 'hotp'`);
      if (token.algorithm !== 'SHA1' && token.algorithm !== 'SHA256' && token.algorithm !== 'SHA512') {
        invalid(`algorithm must be SHA1, SHA256 or SHA512`);
      }
      if (!(token.sealedSecret instanceof Uint8Array) || token.sealedSecret.length === 0) invalid('sealedSecret must be non-empty bytes');
      const row = {
        id,
        user_id: text('userId', token.userId),
        kind: token.kind,
        label: text('label', token.label),
        algorithm: token.algorithm,
        digits: int('digits', token.digits, 6, 10),
        period: int('period', token.period, 1, 3600),
        counter: int('counter', token.counter ?? 0, 0),
        sealed_secret: Buffer.from(token.sealedSecret),
        enabled: 1,
        created_at: Date.now(),
      };
      try {
        this.st.tokenInsert.run(row);
      } catch (err) {
        const code = sqliteCode(err);
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFoundError(`no user with id ${row.user_id}`, { cause: err });
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
          throw new AlreadyExistsError(`a token with id ${id} exists already`, { cause: err });
        }
        throw err;
      }
      return toToken(this.st.tokenById.get(id)!);
    });
  }

  listTokens(userId: string): Promise<OathToken[]> {
    return this.op('listTokens', false, () => this.st.tokensOfUser.all(text('userId', userId)).map(toToken));
  }

  getToken(id: string): Promise<OathToken | undefined> {
    return this.op('getToken', false, () => {
      const row = this.st.tokenById.get(text('id', id));
      return row === undefined ? undefined : toToken(row);
    });
  }

  deleteToken(id: string): Promise<void> {
    return this.op('deleteToken', true, () => {
      if (this.st.tokenDelete.run(text('id', id)).changes === 0) throw new NotFoundError(`no token with id ${id}`);
    });
  }

  // A token that does not exist (deleted meanwhile) or is of the other kind simply does not win:
  // an error here could turn into an accept under a fail-open client policy.
  claimTotpStep(tokenId: string, step: number, now: number): Promise<boolean> {
    return this.relaxedOp('claimTotpStep', () => {
      const args = { id: text('tokenId', tokenId), step: int('step', step, 0), now: time('now', now) };
      return this.st.totpClaim.run(args).changes === 1;
    });
  }

  advanceHotpCounter(tokenId: string, expected: number, next: number, now: number): Promise<boolean> {
    return this.relaxedOp('advanceHotpCounter', () => {
      const args = { id: text('tokenId', tokenId), expected: int('expected', expected, 0), next: int('next', next, 0), now: time('now', now) };
      if (args.next <= args.expected) invalid('next must be greater than expected');
      return this.st.hotpAdvance.run(args).changes === 1;
    });
  }

  // --- lockout -------------------------------------------------------------------------------

  private static lockoutOf(row: LockoutRow | undefined, now: number): LockoutState {
    if (row === undefined) return { failures: 0, lockedUntil: null };
    // An expired lock is forgotten together with the failures counted while it lasted.
    if (row.locked_until !== null && row.locked_until <= now) return { failures: 0, lockedUntil: null };
    return { failures: row.failures, lockedUntil: row.locked_until };
  }

  // --- cloud verification --------------------------------------------------------------------

  addPushDevice(device: NewPushDevice): Promise<PushDevice> {
    return this.op('addPushDevice', true, () => {
      const id = device.id === undefined ? randomUUID() : nonEmpty('id', device.id);
      try {
        this.vs.deviceInsert.run({
          id,
          user_id: nonEmpty('userId', device.userId),
          provider: nonEmpty('provider', device.provider),
          address: nonEmpty('address', device.address),
          label: nonEmpty('label', device.label),
          created_at: Date.now(),
        });
      } catch (err) {
        if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFoundError(`no user with id ${device.userId}`, { cause: err });
        throw err;
      }
      return toPushDevice(this.vs.deviceById.get(id)!);
    });
  }

  listPushDevices(userId: string): Promise<PushDevice[]> {
    return this.op('listPushDevices', false, () => this.vs.devicesOfUser.all(text('userId', userId)).map(toPushDevice));
  }

  deletePushDevice(id: string): Promise<void> {
    return this.op('deletePushDevice', true, () => {
      if (this.vs.deviceDelete.run(text('id', id)).changes === 0) throw new NotFoundError(`no push device with id ${id}`);
    });
  }

  markPushDeviceUsed(id: string, now: number): Promise<void> {
    return this.relaxedOp('markPushDeviceUsed', () => {
      this.vs.deviceUsed.run({ id: text('id', id), now: time('now', now) });
    });
  }

  addSentCode(code: NewSentCode): Promise<void> {
    return this.relaxedOp('addSentCode', () => {
      try {
        this.vs.codeInsert.run({
          id: nonEmpty('id', code.id),
          user_id: nonEmpty('userId', code.userId),
          method: nonEmpty('method', code.method),
          provider: nonEmpty('provider', code.provider),
          code_hash: code.codeHash === null ? null : Buffer.from(code.codeHash),
          expires_at: time('expiresAt', code.expiresAt),
          created_at: time('createdAt', code.createdAt),
        });
      } catch (err) {
        if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFoundError(`no user with id ${code.userId}`, { cause: err });
        throw err;
      }
    });
  }

  listLiveSentCodes(userId: string, now: number): Promise<SentCode[]> {
    return this.op('listLiveSentCodes', false, () => this.vs.codesLive.all({ user_id: text('userId', userId), now: time('now', now) }).map(toSentCode));
  }

  useSentCode(id: string, now: number): Promise<boolean> {
    return this.relaxedOp('useSentCode', () => this.vs.codeUse.run({ id: text('id', id), now: time('now', now) }).changes === 1);
  }

  addBypass(bypass: NewBypass): Promise<Bypass> {
    return this.op('addBypass', true, () => {
      const id = randomUUID();
      try {
        this.vs.bypassInsert.run({
          id,
          user_id: nonEmpty('userId', bypass.userId),
          expires_at: time('expiresAt', bypass.expiresAt),
          uses_left: int('uses', bypass.uses, 1, 1000),
          reason: optText('reason', bypass.reason),
          created_at: time('now', bypass.now),
        });
      } catch (err) {
        if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFoundError(`no user with id ${bypass.userId}`, { cause: err });
        throw err;
      }
      return toBypass(this.vs.bypassById.get(id)!);
    });
  }

  listBypasses(userId: string | undefined, now: number): Promise<Bypass[]> {
    return this.op('listBypasses', false, () =>
      (userId === undefined ? this.vs.bypassesLive.all({ now: time('now', now) }) : this.vs.bypassesLiveOfUser.all({ user_id: text('userId', userId), now: time('now', now) })).map(toBypass),
    );
  }

  useBypass(userId: string, now: number): Promise<Bypass | undefined> {
    return this.relaxedOp('useBypass', () => {
      // The one expiring first; a racing request that takes the last use makes the update miss.
      for (const row of this.vs.bypassesLiveOfUser.all({ user_id: text('userId', userId), now: time('now', now) })) {
        if (this.vs.bypassTake.run({ id: row.id, now }).changes === 1) return toBypass({ ...row, uses_left: row.uses_left - 1 });
      }
      return undefined;
    });
  }

  deleteBypasses(userId: string): Promise<number> {
    return this.op('deleteBypasses', true, () => this.vs.bypassesDelete.run(text('userId', userId)).changes);
  }

  rememberLogin(userId: string, clientKey: string, expiresAt: number): Promise<void> {
    return this.relaxedOp('rememberLogin', () => {
      this.vs.rememberPut.run({ user_id: text('userId', userId), client_key: nonEmpty('clientKey', clientKey), expires_at: time('expiresAt', expiresAt) });
    });
  }

  isLoginRemembered(userId: string, clientKey: string, now: number): Promise<boolean> {
    return this.op('isLoginRemembered', false, () => this.vs.rememberGet.get({ user_id: text('userId', userId), client_key: text('clientKey', clientKey), now: time('now', now) }) !== undefined);
  }

  forgetLogins(userId: string): Promise<void> {
    return this.relaxedOp('forgetLogins', () => {
      this.vs.rememberForget.run(text('userId', userId));
    });
  }

  takeRateSlot(scope: string, key: string, windowMs: number, limit: number, now: number): Promise<boolean> {
    return this.relaxedOp('takeRateSlot', () => {
      const args = { scope: nonEmpty('scope', scope), key: nonEmpty('key', key), since: time('now', now) - int('windowMs', windowMs, 1) };
      // Count and insert in the batch's one immediate transaction: no other writer in between.
      if (this.vs.rateCount.get(args)!.n >= int('limit', limit, 0)) return false;
      this.vs.rateInsert.run({ scope: args.scope, key: args.key, at: now });
      return true;
    });
  }

  getLockout(userId: string, now: number): Promise<LockoutState> {
    return this.op('getLockout', false, () => SqliteStore.lockoutOf(this.st.lockoutGet.get(text('userId', userId)), time('now', now)));
  }

  registerFailure(userId: string, now: number, maxFailures: number, lockMs: number): Promise<LockoutState> {
    return this.relaxedOp('registerFailure', () => {
      text('userId', userId);
      time('now', now);
      int('maxFailures', maxFailures, 1);
      int('lockMs', lockMs, 0);
      return this.db
        .transaction((): LockoutState => {
          const state = SqliteStore.lockoutOf(this.st.lockoutGet.get(userId), now);
          let failures = state.failures + 1;
          let lockedUntil = state.lockedUntil;
          if (failures >= maxFailures) {
            lockedUntil = now + lockMs;
            failures = 0;
          }
          try {
            this.st.lockoutPut.run({ user_id: userId, failures, locked_until: lockedUntil, now });
          } catch (err) {
            if (sqliteCode(err) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new NotFoundError(`no user with id ${userId}`, { cause: err });
            throw err;
          }
          return { failures, lockedUntil };
        })
        .immediate();
    });
  }

  clearFailures(userId: string): Promise<void> {
    return this.relaxedOp('clearFailures', () => {
      this.st.lockoutClear.run(text('userId', userId));
    });
  }

  // --- single-use facts ----------------------------------------------------------------------

  // An expired claim that was not pruned yet still refuses: refusing a reuse is the safe side,
  // and whatever the claim protects has expired by then anyway.
  claimOnce(kind: string, key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.relaxedOp('claimOnce', () => {
      const args = { kind: nonEmpty('kind', kind), key: nonEmpty('key', key), expires: time('expiresAt', expiresAt), now: time('now', now) };
      return this.st.claimInsert.run(args).changes === 1;
    });
  }

  prune(now: number): Promise<void> {
    return this.op('prune', true, () => {
      const removed = this.st.claimsPrune.run(time('now', now)).changes;
      this.vs.codesPrune.run(now);
      this.vs.bypassesPrune.run(now);
      this.vs.rememberPrune.run(now);
      this.vs.ratePrune.run(now - 86_400_000);
      if (removed > 0) this.log.debug({ removed }, 'expired single-use claims pruned');
    });
  }

  // --- audit ---------------------------------------------------------------------------------

  /**
   * Group commit: entries appended before the queued setImmediate runs (the rest of this
   * event-loop turn, I/O callbacks of the same poll phase included) are written in one
   * transaction. Each promise settles once that commit is on disk (whenDurable).
   */
  appendAudit(entry: AuditEntry): Promise<AuditRecord> {
    let normalised: AuditEntry;
    try {
      this.assertUsable(true);
      normalised = normaliseAuditEntry(entry);
    } catch (err) {
      return Promise.reject(toStoreError('appendAudit', err));
    }
    return new Promise<AuditRecord>((resolve, reject) => {
      this.auditQueue.push({ entry: normalised, resolve, reject });
      this.flushTimer ??= setImmediate(() => this.flushAudit());
    });
  }

  private flushAudit(): void {
    if (this.flushTimer !== undefined) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    while (this.auditQueue.length > 0) {
      const batch = this.auditQueue.splice(0, AUDIT_BATCH_MAX);
      let outcome: (AuditRecord | GatewayError)[];
      try {
        this.st.syncNormal.run();
        try {
          outcome = this.auditTxn.immediate(batch);
        } finally {
          this.st.syncFull.run();
        }
      } catch (err) {
        // The transaction rolled back: none of this batch is committed.
        const failure = toStoreError('appendAudit', err);
        this.failureLog.error('audit group commit', { err: failure, records: batch.length }, 'audit group commit failed');
        for (const p of batch) p.reject(failure);
        continue;
      }
      this.ownWrites++;
      this.log.debug({ records: batch.length }, 'audit group committed');
      const settle = (): void =>
        batch.forEach((p, i) => {
          const r = outcome[i]!;
          if (r instanceof GatewayError) p.reject(r);
          else p.resolve(r);
        });
      if (this.fsyncBeforeReply) {
        // A lone record (nothing else queued) is fsync'd right here, see whenDurable.
        const lone = batch.length === 1 && this.auditQueue.length === 0;
        this.whenDurable(++this.walCommitted, settle, (failure) => batch.forEach((p) => p.reject(failure)), lone);
      } else {
        // Committed is enough here; the fsync still follows, unwaited (a failure is logged by syncWal).
        this.whenDurable(++this.walCommitted, () => undefined, () => undefined);
        settle();
      }
    }
  }

  /**
   * Calls `done` once the WAL holding commit `gen` is fsync'd. One fsync runs at a time, on the
   * thread pool (or, for a lone record on a quiet gateway, inline); commits made while it runs
   * wait for the next one, which covers them all (see WalFile for why one descriptor serves them
   * all).
   */
  private whenDurable(gen: number, done: () => void, fail: (err: GatewayError) => void, inline = false): void {
    if (gen <= this.walSynced) {
      done();
      return;
    }
    this.walWaiters.push({ gen, done, fail });
    // `inline`: one attempt's record and no fsync running, i.e. a quiet gateway. The fsync then
    // runs on the event loop: the trip to the thread pool and back (two thread wake-ups) cost more
    // than the fsync itself, and the loop has nothing else to do meanwhile. Measured (npm run
    // bench, closed loop, one login in flight): p99 3.8 → 2.1 ms, p50 0.70 → 0.59 ms. Under
    // load records arrive together (a batch, or a queue behind it) or an fsync is running, and
    // the fsync goes to the pool, so the loop keeps deciding other attempts during it.
    if (inline && !this.walSyncing) this.syncWalNow();
    else this.syncWal();
  }

  private syncWal(): void {
    if (this.walSyncing || this.walWaiters.length === 0) return;
    this.walSyncing = true;
    const target = this.walCommitted;
    const settle = (err?: GatewayError): void => {
      this.walSyncing = false;
      if (err === undefined) this.walSynced = Math.max(this.walSynced, target);
      const covered = this.walWaiters.filter((w) => w.gen <= target);
      this.walWaiters = this.walWaiters.filter((w) => w.gen > target);
      for (const w of covered) {
        if (err === undefined) w.done();
        else w.fail(err);
      }
      this.syncWal();
    };
    this.wal.sync().then(
      () => settle(),
      (err: unknown) => settle(this.walSyncFailure(err)),
    );
  }

  /** The error a failed WAL fsync fails its waiters with, logged (rate-limited). */
  private walSyncFailure(err: unknown): StoreError {
    const failure = new StoreError(`fsync of the write-ahead log failed: ${errorMessage(err)}`);
    this.failureLog.error('wal fsync', { err: failure }, 'write-ahead log fsync failed; the attempts waiting on it are failed');
    return failure;
  }

  /** Makes every commit durable now, on the event loop, and settles the waiters (a quiet moment, and close()). */
  private syncWalNow(): void {
    if (this.walWaiters.length === 0) return;
    const waiters = this.walWaiters;
    this.walWaiters = [];
    let failure: GatewayError | undefined;
    try {
      this.wal.syncNow();
    } catch (err) {
      failure = this.walSyncFailure(err);
    }
    if (failure === undefined) this.walSynced = this.walCommitted;
    for (const w of waiters) {
      if (failure === undefined) w.done();
      else w.fail(failure);
    }
  }

  /** The body of auditTxn, run IMMEDIATE: the head is read under the write lock, since another process may have appended. */
  private auditBatchBody(batch: readonly PendingAudit[]): (AuditRecord | GatewayError)[] {
    const head = this.st.auditHead.get();
    if (head === undefined) throw new StoreError('audit head is missing: the store is damaged');
    const lastSeq = this.st.auditLastSeq.get()?.seq ?? 0;
    if (lastSeq > head.seq) {
      throw new StoreError(
        `audit log ends at seq ${lastSeq} beyond its head (seq ${head.seq}): the store was modified outside mfa-gateway; run "mfa-gateway audit verify"`,
      );
    }
    if (lastSeq < head.seq && !this.headWarned) {
      this.headWarned = true;
      this.log.error({ lastSeq, headSeq: head.seq }, 'audit log ends before its head: records were removed; run "mfa-gateway audit verify"');
    }
    let seq = head.seq;
    let prev = head.hash;
    const out = batch.map((p): AuditRecord | GatewayError => {
      const record = sealAuditRecord(p.entry, seq + 1, prev);
      // One duplicate id (a bug upstream) must not cost the rest of the batch its commit.
      if (this.st.auditInsert.run(auditRowValues(record, nameKey(record.username))).changes === 0) {
        return new AlreadyExistsError(`audit record ${p.entry.id} exists already`);
      }
      seq = record.seq;
      prev = record.hash;
      return record;
    });
    if (seq !== head.seq) this.st.auditHeadSet.run({ seq, hash: prev });
    return out;
  }

  private openReader(): Database.Database {
    this.assertUsable(false);
    const reader = new Database(this.path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    this.readers.add(reader);
    return reader;
  }

  private closeReader(reader: Database.Database): void {
    this.readers.delete(reader);
    if (!reader.open) return;
    try {
      if (reader.inTransaction) reader.exec('ROLLBACK');
    } finally {
      reader.close();
    }
  }

  /**
   * Pages through audit_log in seq order on a reader connection inside one read transaction
   * (one snapshot), yielding to the event loop between pages. No statement iterator stays open
   * across a yield, so close() can always close the reader.
   */
  private async *auditRows(reader: Database.Database, where: string, params: Record<string, unknown>): AsyncGenerator<Record<string, unknown>> {
    const page = reader.prepare<[Record<string, unknown>], Record<string, unknown>>(
      `SELECT * FROM audit_log WHERE seq > @after${where} ORDER BY seq LIMIT ${READ_PAGE}`,
    );
    let after = 0;
    while (true) {
      if (this.closed) throw new StoreError('the store was closed during the read');
      const rows = page.all({ ...params, after });
      for (const row of rows) yield row;
      if (rows.length < READ_PAGE) return;
      after = rows[rows.length - 1]!.seq as number;
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  async *queryAudit(query: AuditQuery = {}): AsyncGenerator<AuditRecord> {
    let reader: Database.Database | undefined;
    try {
      let where = '';
      const params: Record<string, unknown> = {};
      if (query.since !== undefined) {
        where += ' AND received_at >= @since';
        params.since = time('since', query.since);
      }
      if (query.until !== undefined) {
        where += ' AND received_at < @until';
        params.until = time('until', query.until);
      }
      if (query.user !== undefined) {
        where += ' AND (username_key = @userKey OR user_id = @user)';
        params.user = text('user', query.user);
        params.userKey = nameKey(query.user);
      }
      reader = this.openReader();
      reader.exec('BEGIN');
      for await (const row of this.auditRows(reader, where, params)) yield rowToAuditRecord(row);
    } catch (err) {
      throw toStoreError('queryAudit', err);
    } finally {
      if (reader !== undefined) this.closeReader(reader);
    }
  }

  async verifyAudit(): Promise<AuditVerifyResult> {
    let reader: Database.Database | undefined;
    try {
      reader = this.openReader();
      reader.exec('BEGIN');
      // Head and records from the same snapshot.
      const head = reader.prepare<[], ChainHead>('SELECT seq, hash FROM audit_head WHERE id = 1').get();
      const verifier = new ChainVerifier(head);
      const problems: string[] = head === undefined ? ['the chain head is missing (store damaged)'] : [];
      for await (const row of this.auditRows(reader, '', {})) {
        let record: AuditRecord;
        try {
          record = rowToAuditRecord(row);
        } catch (err) {
          verifier.pushUnreadable(Number(row.seq), row.id, row.hash, errorMessage(err), row.prev_hash);
          continue;
        }
        verifier.push(record);
      }
      const result = verifier.finish();
      if (problems.length === 0) return result;
      return { ok: false, records: result.records, problems: [...problems, ...result.problems] };
    } catch (err) {
      throw toStoreError('verifyAudit', err);
    } finally {
      if (reader !== undefined) this.closeReader(reader);
    }
  }

  // --- accounting ----------------------------------------------------------------------------

  recordAccounting(entry: AccountingEntry): Promise<void> {
    return this.relaxedOp('recordAccounting', () => {
      if (typeof entry !== 'object' || entry === null) invalid('accounting entry must be an object');
      const attrs = entry.attributes;
      if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) invalid('attributes must be an object');
      for (const [k, values] of Object.entries(attrs)) {
        if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) invalid(`attributes.${k} must be a list of strings`);
      }
      const opt = (field: string, v: unknown): string | null => {
        const s = optText(field, v);
        return s === null ? null : storableText(s);
      };
      this.st.accountingInsert.run({
        received_at: int('receivedAt', entry.receivedAt, 0),
        client_name: storableText(text('clientName', entry.clientName)),
        client_ip: storableText(text('clientIp', entry.clientIp)),
        status_type: opt('statusType', entry.statusType),
        session_id: opt('sessionId', entry.sessionId),
        username: opt('username', entry.username),
        nas_identifier: opt('nasIdentifier', entry.nasIdentifier),
        nas_ip_address: opt('nasIpAddress', entry.nasIpAddress),
        attributes: JSON.stringify(attrs),
      });
    });
  }

  countAccounting(): Promise<number> {
    return this.op('countAccounting', false, () => this.st.accountingCount.get()?.n ?? 0);
  }

  // --- change notice -------------------------------------------------------------------------

  changeMarker(): Promise<string> {
    // data_version changes when another connection (the CLI, another process) commits; it does
    // not see this connection's own commits, which ownWrites counts.
    return this.op('changeMarker', false, () => `${String(this.db.pragma('data_version', { simple: true }))}.${this.ownWrites}`);
  }

  // --- maintenance ---------------------------------------------------------------------------

  async backup(file: string): Promise<void> {
    this.assertUsable(false);
    const target = resolve(text('file', file));
    if (target === this.path) throw new InvalidInputError('the backup file cannot be the store itself');
    // Writes and records queued before backup() was called belong in it.
    this.flushRelaxed();
    if (this.auditQueue.length > 0) this.flushAudit();
    try {
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      // Created here, empty and 0600, so the copy is never readable by others, even for a moment.
      closeSync(openSync(target, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`the backup file ${target} exists already`);
      throw toStoreError('backup', err);
    }
    try {
      // SQLite's online backup: a consistent snapshot while the gateway goes on writing.
      await this.db.backup(target);
      // A self-contained file: rollback-journal mode, so reading it needs no -wal/-shm files.
      const copy = new Database(target, { fileMustExist: true });
      try {
        copy.pragma('journal_mode = DELETE');
      } finally {
        copy.close();
      }
      syncFile(target);
      syncFile(dirname(target));
      this.log.info({ file: target }, 'store backed up');
    } catch (err) {
      for (const f of [target, `${target}-wal`, `${target}-shm`, `${target}-journal`]) rmSync(f, { force: true });
      throw toStoreError('backup', err);
    }
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    try {
      this.flushRelaxed();
      this.flushAudit();
      this.syncWalNow();
    } finally {
      this.closed = true;
      for (const reader of [...this.readers]) {
        try {
          this.closeReader(reader);
        } catch (err) {
          this.log.warn({ err }, 'closing an audit reader failed');
        }
      }
    }
    try {
      this.db.close();
    } catch (err) {
      return Promise.reject(toStoreError('close', err));
    } finally {
      this.wal.close();
    }
    this.log.debug({ path: this.path }, 'store closed');
    return Promise.resolve();
  }
}

/**
 * Opens (creating when missing, unless read-only) the SQLite store at `opts.path`, migrating it
 * to the newest schema. Throws StoreError when it cannot, and when the file's schema is newer than
 * this build knows.
 */
export function openSqliteStore(opts: SqliteStoreOptions): Promise<Store> {
  const log = (opts.logger ?? silentLogger()).child({ module: 'store', engine: 'sqlite' });
  let db: Database.Database | undefined;
  try {
    if (typeof opts.path !== 'string' || opts.path === '' || opts.path === ':memory:' || opts.path.startsWith('file:')) {
      throw new InvalidInputError('the SQLite store needs a file path');
    }
    const path = resolve(opts.path);
    const readonly = opts.readonly === true;
    if (!readonly) prepareFile(path, log);
    db = openConnection(path, readonly);
    const version = migrate(db, path, readonly, SQLITE_MIGRATIONS, log);
    const store = new SqliteStore(db, path, readonly, log, opts.fsyncBeforeReply ?? true, opts.openWal);
    log.info({ path, schemaVersion: version, readonly }, 'store opened');
    return Promise.resolve(store);
  } catch (err) {
    if (db?.open === true) db.close();
    return Promise.reject(toStoreError(`opening the store ${opts.path}`, err));
  }
}

