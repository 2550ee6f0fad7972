import type { Entry } from 'ldapts';
import type { DirectoryUserData } from '../../store/types.js';
import type { AttributeMap, Flavour } from './config.js';

/**
 * Directory entries → the user values the store keeps. Pure functions, no I/O: attribute lookup
 * without regard to case (servers answer in their own spelling), AD's binary objectGUID as the
 * usual GUID text, and the flavour's "this account is disabled" rules.
 */

/** AD userAccountControl ACCOUNTDISABLE. */
export const UAC_ACCOUNTDISABLE = 0x2;

export interface EntryDefaults {
  readonly method: string | undefined;
  readonly language: string | undefined;
}

export interface MappingContext {
  readonly flavour: Flavour;
  readonly attributes: AttributeMap;
  readonly idAttribute: string;
  readonly disabledWhen: readonly ('pwd_account_locked_time' | 'shadow_expire')[];
  /** Epoch ms, for shadowExpire. */
  readonly now: number;
}

export type MappedEntry = { readonly ok: true; readonly user: DirectoryUserData; readonly dn: string } | { readonly ok: false; readonly dn: string; readonly problem: string };

/** Every value of an attribute, case-insensitively; Buffers (other than the id) read as UTF-8. */
export function attributeValues(entry: Entry, name: string): Array<string | Buffer> {
  const lower = name.toLowerCase();
  for (const key of Object.keys(entry)) {
    if (key === 'dn' || key.toLowerCase() !== lower) continue;
    const raw = entry[key];
    if (raw === undefined) return [];
    return Array.isArray(raw) ? raw : [raw];
  }
  return [];
}

function text(entry: Entry, name: string | null): string | null {
  if (name === null) return null;
  const first = attributeValues(entry, name)[0];
  if (first === undefined) return null;
  const value = (Buffer.isBuffer(first) ? first.toString('utf8') : first).trim();
  return value === '' ? null : value;
}

/**
 * AD's objectGUID bytes as the usual text: the first three groups are little-endian (Data1,
 * Data2, Data3), the last two byte order as stored — what PowerShell and ADUC show.
 */
export function formatGuid(bytes: Buffer): string {
  if (bytes.length !== 16) throw new Error(`an objectGUID has 16 bytes, not ${bytes.length}`);
  const hex = (b: Buffer): string => b.toString('hex');
  const le = (start: number, end: number): string => hex(Buffer.from(bytes.subarray(start, end)).reverse());
  return `${le(0, 4)}-${le(4, 6)}-${le(6, 8)}-${hex(bytes.subarray(8, 10))}-${hex(bytes.subarray(10, 16))}`;
}

/** The entry's stable id: objectGUID (AD) or entryUUID (OpenLDAP), lower case. */
export function externalIdOf(entry: Entry, flavour: Flavour, idAttribute: string): string | undefined {
  const raw = attributeValues(entry, idAttribute)[0];
  if (raw === undefined) return undefined;
  if (flavour === 'ad' || Buffer.isBuffer(raw)) {
    const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'binary');
    return bytes.length === 16 ? formatGuid(bytes) : undefined;
  }
  const id = raw.trim().toLowerCase();
  return id === '' ? undefined : id;
}

/** Whether the directory marks the account disabled. */
export function isDisabled(entry: Entry, ctx: Pick<MappingContext, 'flavour' | 'disabledWhen' | 'now'>): boolean {
  if (ctx.flavour === 'ad') {
    const uac = Number.parseInt(text(entry, 'userAccountControl') ?? '', 10);
    return Number.isFinite(uac) && (uac & UAC_ACCOUNTDISABLE) !== 0;
  }
  if (ctx.disabledWhen.includes('pwd_account_locked_time') && attributeValues(entry, 'pwdAccountLockedTime').length > 0) return true;
  if (ctx.disabledWhen.includes('shadow_expire')) {
    // Days since 1970-01-01; -1 (or absent) means never. The account is unusable from that day on.
    const days = Number.parseInt(text(entry, 'shadowExpire') ?? '', 10);
    if (Number.isFinite(days) && days >= 0 && days * 86_400_000 <= ctx.now) return true;
  }
  return false;
}

/** One entry as a store user, or the reason it cannot be one. */
export function mapEntry(entry: Entry, ctx: MappingContext, defaults: EntryDefaults): MappedEntry {
  const dn = entry.dn;
  const externalId = externalIdOf(entry, ctx.flavour, ctx.idAttribute);
  if (externalId === undefined) return { ok: false, dn, problem: `${dn}: no ${ctx.idAttribute}; skipped` };
  const username = text(entry, ctx.attributes.username);
  if (username === null) return { ok: false, dn, problem: `${dn}: no ${ctx.attributes.username}; skipped` };
  const a = ctx.attributes;
  return {
    ok: true,
    dn,
    user: {
      externalId,
      dn,
      username,
      upn: text(entry, a.upn),
      firstName: text(entry, a.firstName),
      lastName: text(entry, a.lastName),
      email: text(entry, a.email),
      phone: text(entry, a.phone),
      mobile: text(entry, a.mobile),
      defaultMethod: text(entry, a.defaultMethod)?.toLowerCase() ?? defaults.method ?? null,
      language: text(entry, a.language) ?? defaults.language ?? null,
      enabled: !isDisabled(entry, ctx),
    },
  };
}

/** Epoch ms → generalizedTime with second precision (`20240131235959Z`), as modifyTimestamp holds it. */
export function generalizedTime(ms: number): string {
  const d = new Date(Math.max(0, ms));
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
}

/** The time part of a contextCSN (`20240131235959.123456Z#000000#000#000000`) as generalizedTime, seconds only. */
export function csnTime(csn: string): string | undefined {
  const m = /^(\d{14})(?:\.\d+)?Z#/.exec(csn);
  return m === null ? undefined : `${m[1]}Z`;
}
