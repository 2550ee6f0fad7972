import { createHmac, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import type { DataKeys } from '../crypto/keys.js';
import type { Store } from '../store/store.js';
import type { SentCode } from '../store/types.js';

/**
 * One-time codes the gateway sends by SMS, voice or email. Random digits from the CSPRNG, kept
 * only as an HMAC (keyed with a key derived from the master key, bound to the user and the code's
 * id, so a copied row neither reveals the code nor fits another user), compared in constant time,
 * used once (one conditional write), and void after their time to live.
 */

export function newCode(length: number): string {
  let code = '';
  for (let i = 0; i < length; i++) code += String(randomInt(10));
  return code;
}

export function hashSentCode(keys: DataKeys, userId: string, codeId: string, code: string): Buffer {
  return createHmac('sha256', keys.get('sent-code')).update(`${userId}\n${codeId}\n${code}`).digest();
}

export interface NewCodeRecord {
  readonly id: string;
  readonly code: string;
}

/** Stores the HMAC of a code just sent (or, with `code` null, the fact that the provider sent its own). */
export async function recordSentCode(
  store: Store,
  keys: DataKeys,
  opts: { userId: string; method: string; provider: string; code: string | null; id?: string; ttlMs: number; now: number },
): Promise<string> {
  const id = opts.id ?? randomUUID();
  await store.addSentCode({
    id,
    userId: opts.userId,
    method: opts.method,
    provider: opts.provider,
    codeHash: opts.code === null ? null : hashSentCode(keys, opts.userId, id, opts.code),
    expiresAt: opts.now + opts.ttlMs,
    createdAt: opts.now,
  });
  return id;
}

export type SentCodeCheck =
  | { readonly ok: true; readonly sent: SentCode }
  /** `replayed`: it matched a code that was just used by a racing request. */
  | { readonly ok: false; readonly replayed: boolean };

/**
 * Checks `code` against the user's live gateway-made codes of the allowed `methods` (every one is
 * compared, no early exit) and claims the match. Codes the provider checks itself (codeHash null) are not looked at here.
 */
export async function checkSentCode(store: Store, keys: DataKeys, userId: string, code: string, now: number, methods: ReadonlySet<string>): Promise<SentCodeCheck> {
  // Only codes of methods the login's policy allows: a code mailed for a login on a laxer client
  // is no second factor on this one.
  const live = (await store.listLiveSentCodes(userId, now)).filter((sent) => methods.has(sent.method));
  let match: SentCode | undefined;
  for (const sent of live) {
    if (sent.codeHash === null) continue;
    const given = hashSentCode(keys, userId, sent.id, code);
    if (timingSafeEqual(given, sent.codeHash) && match === undefined) match = sent;
  }
  if (match === undefined) return { ok: false, replayed: false };
  if (match.usedAt !== null) return { ok: false, replayed: true };
  return (await store.useSentCode(match.id, now)) ? { ok: true, sent: match } : { ok: false, replayed: true };
}
