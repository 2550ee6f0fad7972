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

const PROTOCOLS: ReadonlySet<string> = new Set<AuditEntry['protocol']>(['radius', 'ldap', 'portal', 'cli']);
const RESULTS: ReadonlySet<string> = new Set<AuditResult>(['accept', 'reject', 'challenge']);

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const NEEDS_REPLACING = /[\uD800-\uDFFF\0]/;

/**
 * Makes a string storable without change in any engine: a lone UTF-16 surrogate (which SQLite and
 * PostgreSQL would each mangle differently on the way to UTF-8, breaking the hash) and NUL (which
 * PostgreSQL text refuses) become U+FFFD. Client-controlled names go through here, so this must
 * never throw: an attempt is recorded whatever bytes the client sent.
 */
export function storableText(s: string): string {
  // Nearly every string is clean: one scan instead of two replacing passes.
  if (!NEEDS_REPLACING.test(s)) return s;
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
  const id = requiredText(raw, 'id');
  if (id.length === 0) fail('id', 'must not be empty');
  if (typeof raw.protocol !== 'string' || !PROTOCOLS.has(raw.protocol)) fail('protocol', `unknown protocol ${String(raw.protocol)}`);
  if (typeof raw.result !== 'string' || !RESULTS.has(raw.result)) fail('result', `unknown result ${String(raw.result)}`);
  // One literal with every field: one allocation and one hidden class per record, where adding
  // the fields one by one grew the object into a slow dictionary (it runs on every attempt).
  return {
    id,
    receivedAt: epochMs('receivedAt', raw.receivedAt),
    decidedAt: epochMs('decidedAt', raw.decidedAt),
    attemptId: requiredText(raw, 'attemptId'),
    protocol: raw.protocol as AuditEntry['protocol'],
    result: raw.result as AuditResult,
    reason: requiredText(raw, 'reason'),
    userId: nullableText(raw, 'userId'),
    username: requiredText(raw, 'username'),
    firstName: nullableText(raw, 'firstName'),
    lastName: nullableText(raw, 'lastName'),
    email: nullableText(raw, 'email'),
    phone: nullableText(raw, 'phone'),
    deviceToken: nullableText(raw, 'deviceToken'),
    firstFactor: nullableText(raw, 'firstFactor'),
    method: nullableText(raw, 'method'),
    provider: nullableText(raw, 'provider'),
    providerMessageId: nullableText(raw, 'providerMessageId'),
    gatewayName: requiredText(raw, 'gatewayName'),
    gatewayIp: nullableText(raw, 'gatewayIp'),
    clientName: nullableText(raw, 'clientName'),
    clientIp: requiredText(raw, 'clientIp'),
    nasIdentifier: nullableText(raw, 'nasIdentifier'),
    nasIpAddress: nullableText(raw, 'nasIpAddress'),
    callingStationId: nullableText(raw, 'callingStationId'),
    calledStationId: nullableText(raw, 'calledStationId'),
    timings: normaliseTimings(raw.timings),
  };
}

function requiredText(raw: Record<string, unknown>, field: AuditField): string {
  const v = raw[field];
  if (typeof v !== 'string') fail(field, 'must be a string');
  return storableText(v);
}

function nullableText(raw: Record<string, unknown>, field: AuditField): string | null {
  const v = raw[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') fail(field, 'must be a string or null');
  return storableText(v);
}

/** `entry`'s fields (and nothing else of it) linked at `seq`: one literal, as in normaliseAuditEntry. */
export function auditRecordOf(entry: AuditEntry, seq: number, prevHash: string, hash: string): AuditRecord {
  const e = entry;
  return {
    id: e.id,
    receivedAt: e.receivedAt,
    decidedAt: e.decidedAt,
    attemptId: e.attemptId,
    protocol: e.protocol,
    result: e.result,
    reason: e.reason,
    userId: e.userId,
    username: e.username,
    firstName: e.firstName,
    lastName: e.lastName,
    email: e.email,
    phone: e.phone,
    deviceToken: e.deviceToken,
    firstFactor: e.firstFactor,
    method: e.method,
    provider: e.provider,
    providerMessageId: e.providerMessageId,
    gatewayName: e.gatewayName,
    gatewayIp: e.gatewayIp,
    clientName: e.clientName,
    clientIp: e.clientIp,
    nasIdentifier: e.nasIdentifier,
    nasIpAddress: e.nasIpAddress,
    callingStationId: e.callingStationId,
    calledStationId: e.calledStationId,
    timings: e.timings,
    seq,
    prevHash,
    hash,
  };
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

/** A record's `audit_log` values in AUDIT_ROW_COLUMNS order (for positional INSERT parameters). */
export function auditRowValues(record: AuditRecord, usernameKey: string): unknown[] {
  const values = new Array<unknown>(AUDIT_ROW_COLUMNS.length);
  values[0] = record.seq;
  for (let i = 0; i < AUDIT_FIELDS.length; i++) {
    const f = AUDIT_FIELDS[i]!;
    values[i + 1] = f === 'timings' ? JSON.stringify(record.timings) : record[f];
  }
  const n = AUDIT_FIELDS.length;
  values[n + 1] = usernameKey;
  values[n + 2] = record.prevHash;
  values[n + 3] = record.hash;
  return values;
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
