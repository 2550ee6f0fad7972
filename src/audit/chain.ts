import { hash } from 'node:crypto';
import { errorMessage } from '../errors.js';
import type { AuditEntry, AuditRecord, AuditVerifyResult } from '../store/types.js';
import { AUDIT_FIELDS, auditRecordOf, type AuditField } from './record.js';

/**
 * The hash chain. Each record's hash is
 *
 *   SHA-256 hex ( prevHash + "\n" + canonical JSON of { every AuditEntry field, seq } )
 *
 * where canonical JSON sorts object keys (at every depth, so timings too) by UTF-16 code unit,
 * has no whitespace, and writes strings and numbers as JSON.stringify does. The first record's
 * prevHash is GENESIS_HASH. Every engine computes the hash here, in TypeScript, so a record
 * hashes the same whatever stored it.
 *
 * The chain alone cannot reveal a removed tail (what is left is a valid chain), so the store also
 * keeps the head — seq and hash of the last record — updated in the same transaction as every
 * append; verification compares the last record with it.
 */

export const GENESIS_HASH = '0'.repeat(64);

/** The last committed record as the store remembers it. seq 0 with GENESIS_HASH: empty chain. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} has no JSON form`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: a ${typeof value} has no JSON form`);
  }
}

/** The content keys (the AuditEntry fields and seq) in canonical order, each with its `"key":` prefix. */
const CONTENT_KEYS: ReadonlyArray<readonly [string, string]> = [...AUDIT_FIELDS, 'seq']
  .sort()
  .map((k, i) => [k, `${i === 0 ? '{' : ','}${JSON.stringify(k)}:`] as const);

/**
 * The canonical content of a record: its AuditEntry fields and seq, nothing else; the same string
 * canonicalJson would give for that object. It runs on every attempt, so the usual record (text,
 * numbers and nulls, timings of numbers) is one JSON.stringify of a literal whose keys are written
 * in canonical order (test/audit/chain.test.ts holds it to canonicalJson); anything else (a record
 * read back from a tampered row, say) takes the general path.
 */
export function canonicalAuditContent(entry: AuditEntry, seq: number): string {
  const e = entry;
  const timings = sortedNumbers(e.timings);
  if (timings === undefined) return generalContent(entry, seq);
  const content: Record<AuditField | 'seq', unknown> = {
    attemptId: e.attemptId,
    calledStationId: e.calledStationId,
    callingStationId: e.callingStationId,
    clientIp: e.clientIp,
    clientName: e.clientName,
    decidedAt: e.decidedAt,
    deviceToken: e.deviceToken,
    email: e.email,
    firstFactor: e.firstFactor,
    firstName: e.firstName,
    gatewayIp: e.gatewayIp,
    gatewayName: e.gatewayName,
    id: e.id,
    lastName: e.lastName,
    method: e.method,
    nasIdentifier: e.nasIdentifier,
    nasIpAddress: e.nasIpAddress,
    phone: e.phone,
    protocol: e.protocol,
    provider: e.provider,
    providerMessageId: e.providerMessageId,
    reason: e.reason,
    receivedAt: e.receivedAt,
    result: e.result,
    seq,
    timings,
    userId: e.userId,
    username: e.username,
  };
  for (const k in content) {
    const v = content[k as keyof typeof content];
    if (k !== 'timings' && !(v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))) {
      return generalContent(entry, seq);
    }
  }
  return JSON.stringify(content);
}

/**
 * `timings` with its keys in canonical order, when JSON.stringify would then write exactly what
 * canonicalJson writes: every value a finite number, and no key that is an array index (JavaScript
 * lists those first, in numeric order). Otherwise undefined.
 */
function sortedNumbers(timings: unknown): Record<string, number> | undefined {
  if (typeof timings !== 'object' || timings === null || Array.isArray(timings)) return undefined;
  const source = timings as Record<string, unknown>;
  const keys = Object.keys(source);
  const out: Record<string, number> = {};
  for (const k of keys.length > 1 ? keys.sort() : keys) {
    const v = source[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || ARRAY_INDEX.test(k)) return undefined;
    out[k] = v;
  }
  return out;
}

const ARRAY_INDEX = /^(?:0|[1-9]\d*)$/;

function generalContent(entry: AuditEntry, seq: number): string {
  const raw = entry as unknown as Record<string, unknown>;
  let out = '';
  for (const [k, prefix] of CONTENT_KEYS) {
    const v = k === 'seq' ? seq : raw[k];
    if (v === undefined) throw new TypeError(`audit record has no ${k}`);
    out += prefix + (typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v));
  }
  return `${out}}`;
}

export function auditHash(prevHash: string, entry: AuditEntry, seq: number): string {
  // One-shot: no native hash object per record (see src/crypto/digest.ts).
  return hash('sha256', `${prevHash}\n${canonicalAuditContent(entry, seq)}`, 'hex');
}

/** Links an (already normalised) entry into the chain after `prevHash` at position `seq`. */
export function sealAuditRecord(entry: AuditEntry, seq: number, prevHash: string): AuditRecord {
  return auditRecordOf(entry, seq, prevHash, auditHash(prevHash, entry, seq));
}

/** Keeps memory bounded on a badly damaged chain; the count of the rest is still reported. */
const MAX_LISTED_PROBLEMS = 10_000;

function range(a: number, b: number): string {
  return a === b ? `seq ${a} is` : `seq ${a}..${b} are`;
}

/**
 * Checks records one at a time, in the order given (seq order when they come from a store), and
 * names every problem:
 * - edited record: its content no longer matches its hash;
 * - deleted record: a gap in seq before a record;
 * - inserted or replaced record: a seq duplicated or out of order, a prevHash that is not the
 *   previous record's hash, or a record beyond the head;
 * - truncated tail: the last record is not the head.
 * Synchronous, so a store can feed it from inside one read transaction.
 */
export class ChainVerifier {
  private readonly problems: string[] = [];
  private unlisted = 0;
  private count = 0;
  private last: { seq: number; id: string; hash: string } | undefined;

  constructor(private readonly head?: ChainHead) {}

  private problem(line: string): void {
    if (this.problems.length < MAX_LISTED_PROBLEMS) this.problems.push(line);
    else this.unlisted++;
  }

  push(record: AuditRecord): void {
    let ownHashOk: boolean;
    try {
      ownHashOk = auditHash(record.prevHash, record, record.seq) === record.hash;
    } catch (err) {
      this.pushUnreadable(record.seq, record.id, record.hash, errorMessage(err), record.prevHash);
      return;
    }
    this.link(
      record.seq,
      String(record.id),
      typeof record.prevHash === 'string' ? record.prevHash : '',
      typeof record.hash === 'string' ? record.hash : '',
      ownHashOk ? undefined : 'content does not match its hash (record edited)',
    );
  }

  /** A row that could not even be read as a record: reported as edited, and the chain goes on from its stored hash. */
  pushUnreadable(seq: number, id: unknown, hash: unknown, reason: string, prevHash?: unknown): void {
    this.link(
      seq,
      String(id),
      typeof prevHash === 'string' ? prevHash : undefined,
      typeof hash === 'string' ? hash : '',
      `unreadable (${reason}): record edited`,
    );
  }

  private link(seq: number, id: string, prevHash: string | undefined, hash: string, contentProblem: string | undefined): void {
    this.count++;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      this.problem(`record #${this.count} (id ${id}): invalid seq ${String(seq)} (record edited or inserted)`);
      return;
    }
    const name = `seq ${seq} (id ${id})`;
    if (contentProblem !== undefined) this.problem(`${name}: ${contentProblem}`);
    const last = this.last;
    if (last === undefined) {
      if (seq > 1) this.problem(`${name}: ${range(1, seq - 1)} missing before it (record deleted)`);
      else if (prevHash !== undefined && prevHash !== GENESIS_HASH) {
        this.problem(`${name}: prevHash is not the genesis hash although it is the first record (record inserted)`);
      }
    } else if (seq === last.seq + 1) {
      if (prevHash !== undefined && prevHash !== last.hash) {
        this.problem(
          `${name}: prevHash does not match the hash of seq ${last.seq} (id ${last.id}): link broken (record inserted or replaced)`,
        );
      }
    } else if (seq > last.seq + 1) {
      this.problem(`${name}: ${range(last.seq + 1, seq - 1)} missing before it (record deleted)`);
    } else {
      this.problem(`${name}: duplicated or out of order after seq ${last.seq} (id ${last.id}) (record inserted)`);
      return; // the chain goes on from the last record in order
    }
    if (this.head !== undefined && seq > this.head.seq) {
      this.problem(`${name}: beyond the chain head (seq ${this.head.seq}): added after the last committed record (record inserted)`);
    }
    this.last = { seq, id, hash };
  }

  finish(): AuditVerifyResult {
    const head = this.head;
    const last = this.last;
    if (head !== undefined) {
      if (last === undefined) {
        if (head.seq !== 0) {
          this.problem(`chain is empty but its head is seq ${head.seq}: ${range(1, head.seq)} missing (tail truncated)`);
        }
      } else if (last.seq < head.seq) {
        this.problem(
          `chain ends at seq ${last.seq} (id ${last.id}) but its head is seq ${head.seq}: ${range(last.seq + 1, head.seq)} missing (tail truncated)`,
        );
      } else if (last.seq === head.seq && last.hash !== head.hash) {
        this.problem(`seq ${last.seq} (id ${last.id}): hash does not match the chain head (last record replaced)`);
      }
    }
    const problems = [...this.problems];
    if (this.unlisted > 0) problems.push(`… and ${this.unlisted} more problems`);
    return { ok: problems.length === 0, records: this.count, problems };
  }
}

/** Verifies records in the order given; with `head`, also that nothing was added or removed at the end. */
export async function verifyChain(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  head?: ChainHead,
): Promise<AuditVerifyResult> {
  const verifier = new ChainVerifier(head);
  for await (const record of records) verifier.push(record);
  return verifier.finish();
}
