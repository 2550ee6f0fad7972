import { InvalidInputError, StoreError } from '../errors.js';
import type { AuditEntry, AuditRecord, AuditResult } from '../store/types.js';

/**
 * The audit record as data: which fields it has, how an entry from the flow is made safe to hash
 * and store, and how it maps to a table row (`audit_log`, the same columns in every engine).
 */

/**
 * Every AuditEntry field with its column. `satisfies` makes adding a field to AuditEntry without
 * adding it here a compile error, so no field can silently escape the hash.
 */
export const AUDIT_COLUMNS = {
  id: 'id',
  receivedAt: 'received_at',
  decidedAt: 'decided_at',
  attemptId: 'attempt_id',
  protocol: 'protocol',
  result: 'result',
  reason: 'reason',
  userId: 'user_id',
  username: 'username',
  firstName: 'first_name',
  lastName: 'last_name',
  email: 'email',
  phone: 'phone',
  deviceToken: 'device_token',
  firstFactor: 'first_factor',
  method: 'method',
  provider: 'provider',
  providerMessageId: 'provider_message_id',
  gatewayName: 'gateway_name',
  gatewayIp: 'gateway_ip',
  clientName: 'client_name',
  clientIp: 'client_ip',
  nasIdentifier: 'nas_identifier',
  nasIpAddress: 'nas_ip_address',
  callingStationId: 'calling_station_id',
  calledStationId: 'called_station_id',
  timings: 'timings',
} as const satisfies Record<keyof AuditEntry, string>;

export type AuditField = keyof typeof AUDIT_COLUMNS;

export const AUDIT_FIELDS = Object.keys(AUDIT_COLUMNS) as readonly AuditField[];

const REQUIRED_STRINGS = ['id', 'attemptId', 'reason', 'username', 'gatewayName', 'clientIp'] as const;
const NULLABLE_STRINGS = [
  'userId',
  'firstName',
  'lastName',
  'email',
  'phone',
  'deviceToken',
  'firstFactor',
  'method',
  'provider',
  'providerMessageId',
  'gatewayIp',
  'clientName',
  'nasIdentifier',
  'nasIpAddress',
  'callingStationId',
  'calledStationId',
] as const;
// Compile-time check that the three lists above cover AuditEntry exactly.
type Covered =
  | (typeof REQUIRED_STRINGS)[number]
  | (typeof NULLABLE_STRINGS)[number]
  | 'receivedAt'
  | 'decidedAt'
  | 'protocol'
  | 'result'
  | 'timings';
const _allCovered: [Exclude<AuditField, Covered>, Exclude<Covered, AuditField>] extends [never, never] ? true : never = true;

const PROTOCOLS: ReadonlySet<string> = new Set<AuditEntry['protocol']>(['radius', 'ldap', 'portal', 'cli']);
const RESULTS: ReadonlySet<string> = new Set<AuditResult>(['accept', 'reject', 'challenge']);

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Makes a string storable without change in any engine: a lone UTF-16 surrogate (which SQLite and
 * PostgreSQL would each mangle differently on the way to UTF-8, breaking the hash) and NUL (which
 * PostgreSQL text refuses) become U+FFFD. Client-controlled names go through here, so this must
 * never throw: an attempt is recorded whatever bytes the client sent.
 */
export function storableText(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD').replace(/\0/g, '\uFFFD');
}

function fail(field: string, message: string): never {
  throw new InvalidInputError(`audit entry ${field}: ${message}`);
}

function epochMs(field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(field, 'must be a non-negative integer (epoch ms)');
  return v;
}

/**
 * Checks an entry from the flow and returns the exact values that will be hashed and stored:
 * only the AuditEntry fields (extra properties are dropped), `undefined` read as null, text made
 * storable, timings copied. Throws InvalidInputError for a programming error (wrong type), never
 * for odd client-supplied text.
 */
export function normaliseAuditEntry(entry: AuditEntry): AuditEntry {
  if (typeof entry !== 'object' || entry === null) fail('(entry)', 'must be an object');
  const raw = entry as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of REQUIRED_STRINGS) {
    const v = raw[f];
    if (typeof v !== 'string') fail(f, 'must be a string');
    out[f] = storableText(v);
  }
  if ((out.id as string).length === 0) fail('id', 'must not be empty');
  for (const f of NULLABLE_STRINGS) {
    const v = raw[f];
    if (v === undefined || v === null) out[f] = null;
    else if (typeof v === 'string') out[f] = storableText(v);
    else fail(f, 'must be a string or null');
  }
  out.receivedAt = epochMs('receivedAt', raw.receivedAt);
  out.decidedAt = epochMs('decidedAt', raw.decidedAt);
  if (typeof raw.protocol !== 'string' || !PROTOCOLS.has(raw.protocol)) fail('protocol', `unknown protocol ${String(raw.protocol)}`);
  out.protocol = raw.protocol;
  if (typeof raw.result !== 'string' || !RESULTS.has(raw.result)) fail('result', `unknown result ${String(raw.result)}`);
  out.result = raw.result;
  out.timings = normaliseTimings(raw.timings);
  return out as unknown as AuditEntry;
}

function normaliseTimings(v: unknown): Readonly<Record<string, number>> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail('timings', 'must be an object of numbers');
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    // A non-finite number has no JSON form, so it could not be hashed and read back identically.
    if (typeof n !== 'number' || !Number.isFinite(n)) fail(`timings.${k}`, 'must be a finite number');
    out[storableText(k)] = n;
  }
  return out;
}

/** An `audit_log` row as every engine stores it (snake_case columns, timings as JSON text). */
export interface AuditRow {
  seq: number;
  id: string;
  received_at: number;
  decided_at: number;
  attempt_id: string;
  protocol: string;
  result: string;
  reason: string;
  user_id: string | null;
  username: string;
  /** Derived (case-folded username) for the `user` filter; not part of the hash. */
  username_key: string;
  first_name: string | null;
  last_name: string | null;
  email: string | null;
  phone: string | null;
  device_token: string | null;
  first_factor: string | null;
  method: string | null;
  provider: string | null;
  provider_message_id: string | null;
  gateway_name: string;
  gateway_ip: string | null;
  client_name: string | null;
  client_ip: string;
  nas_identifier: string | null;
  nas_ip_address: string | null;
  calling_station_id: string | null;
  called_station_id: string | null;
  timings: string;
  prev_hash: string;
  hash: string;
}

/** The ordered column list of `audit_log`, for INSERT statements. */
export const AUDIT_ROW_COLUMNS: readonly (keyof AuditRow)[] = [
  'seq',
  ...AUDIT_FIELDS.map((f) => AUDIT_COLUMNS[f]),
  'username_key',
  'prev_hash',
  'hash',
];

export function auditRecordToRow(record: AuditRecord, usernameKey: string): AuditRow {
  const row: Record<string, unknown> = { seq: record.seq, prev_hash: record.prevHash, hash: record.hash, username_key: usernameKey };
  for (const f of AUDIT_FIELDS) row[AUDIT_COLUMNS[f]] = f === 'timings' ? JSON.stringify(record.timings) : record[f];
  return row as unknown as AuditRow;
}

/**
 * Reads a row back. Throws StoreError when the row cannot be a record (a column of the wrong
 * type, timings that are not JSON): only tampering or corruption does that, and the verifier
 * reports it as such.
 */
export function rowToAuditRecord(row: Record<string, unknown>): AuditRecord {
  const rec: Record<string, unknown> = {};
  const bad = (col: string): never => {
    throw new StoreError(`audit row seq ${String(row.seq)}: column ${col} has an unexpected value`);
  };
  for (const col of ['seq', 'received_at', 'decided_at'] as const) {
    if (typeof row[col] !== 'number') bad(col);
  }
  for (const col of ['prev_hash', 'hash'] as const) {
    if (typeof row[col] !== 'string') bad(col);
  }
  rec.seq = row.seq;
  rec.prevHash = row.prev_hash;
  rec.hash = row.hash;
  for (const f of AUDIT_FIELDS) {
    const col = AUDIT_COLUMNS[f];
    const v = row[col];
    if (f === 'timings') {
      if (typeof v !== 'string') bad(col);
      let parsed: unknown;
      try {
        parsed = JSON.parse(v as string);
      } catch {
        bad(col);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) bad(col);
      rec.timings = parsed;
    } else {
      if (v !== null && typeof v !== 'string' && typeof v !== 'number') bad(col);
      rec[f] = v;
    }
  }
  return rec as unknown as AuditRecord;
}
