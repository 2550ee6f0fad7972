import { LRUCache } from 'lru-cache';
import { HOTP, Secret, TOTP } from 'otpauth';
import { hmac, type DigestAlgorithm } from '../crypto/digest.js';
import type { DataKeys } from '../crypto/keys.js';
import { seal, unseal } from '../crypto/seal.js';
import type { Store } from '../store/store.js';
import type { OathAlgorithm, OathKind, OathToken, User } from '../store/types.js';
import type { CodeCheck } from './method.js';

/** Local OATH (RFC 4226 HOTP, RFC 6238 TOTP) codes: checked here, no cloud involved. */

export interface OathSettings {
  /** TOTP steps accepted on each side of the current one. */
  readonly totpWindow: number;
  /** HOTP counters accepted ahead of the expected one. */
  readonly hotpLookAhead: number;
}

function sealContext(userId: string): string {
  return `oath-secret:${userId}`;
}

export function sealOathSecret(keys: DataKeys, userId: string, secret: Uint8Array): Buffer {
  return seal(keys.get('oath-secret'), Buffer.from(secret), sealContext(userId));
}

export function openOathSecret(keys: DataKeys, token: OathToken): Buffer {
  return unseal(keys.get('oath-secret'), token.sealedSecret, sealContext(token.userId));
}

/**
 * Opened secrets, per data key, by token id. Opening (AES-GCM) costs more than the code check
 * itself; the master key lives in this process anyway, so keeping opened secrets of recently
 * used tokens adds no exposure. An entry is used only while the stored sealed bytes are the
 * same, so a re-enrolled token is opened afresh.
 */
const opened = new WeakMap<DataKeys, LRUCache<string, { sealed: Buffer; secret: Secret }>>();

function secretOf(keys: DataKeys, token: OathToken): Secret {
  let cache = opened.get(keys);
  if (!cache) {
    cache = new LRUCache({ max: 100_000 });
    opened.set(keys, cache);
  }
  const hit = cache.get(token.id);
  if (hit?.sealed.equals(token.sealedSecret)) return hit.secret;
  const secret = new Secret({ buffer: new Uint8Array(openOathSecret(keys, token)).buffer });
  cache.set(token.id, { sealed: Buffer.from(token.sealedSecret), secret });
  return secret;
}

export const CODE_PATTERN = /^\d{6,8}$/;

const OATH_DIGESTS: Readonly<Record<OathAlgorithm, DigestAlgorithm>> = { SHA1: 'sha1', SHA256: 'sha256', SHA512: 'sha512' };

/**
 * The HMAC otpauth computes codes with (its `hmac` option): the one-shot one of crypto/digest.ts.
 * otpauth's own makes a createHmac object per code, freed only in a weak-handle callback of the
 * next young-generation GC, and a result buffer with a backing store of its own: both lengthen
 * every scavenge pause that one login in a few hundred waits for.
 */
function oathHmac(algorithm: string, key: Uint8Array, message: Uint8Array): Uint8Array {
  const digestAlgorithm = OATH_DIGESTS[algorithm as OathAlgorithm] as DigestAlgorithm | undefined;
  if (digestAlgorithm === undefined) throw new TypeError(`no HMAC for OATH algorithm ${algorithm}`);
  return hmac(digestAlgorithm, key, [message]);
}

/** A token that a code belongs to: the TOTP time step or the HOTP counter the code was made for. */
export interface OathMatch {
  readonly token: OathToken;
  readonly at: number;
}

/**
 * The user's enabled tokens that `code` belongs to, in token order, and where; nothing is
 * claimed. For TOTP the current step is tried first, so the usual code costs one HMAC.
 * `exhaustive`: every step of the window is computed and compared instead, so the time taken
 * does not depend on the code, for a match made before the password is known to be right (a
 * reject for a wrong password must not tell a right code from a wrong one). HOTP always
 * computes its whole look-ahead.
 */
export function matchOathCode(
  keys: DataKeys,
  tokens: readonly OathToken[],
  code: string,
  now: number,
  settings: OathSettings,
  exhaustive = false,
): OathMatch[] {
  const matches: OathMatch[] = [];
  if (!CODE_PATTERN.test(code)) return matches;
  for (const token of tokens) {
    if (!token.enabled || code.length !== token.digits) continue;
    const secret = secretOf(keys, token);
    const hotp = { secret, algorithm: token.algorithm, digits: token.digits, hmac: oathHmac };
    if (token.kind === 'totp') {
      const current = Math.floor(now / 1000 / token.period);
      const step = (exhaustive ? everyTotpStep : firstTotpStep)(hotp, code, current, settings.totpWindow);
      if (step !== undefined) matches.push({ token, at: step });
    } else {
      const counter = findHotpCounter(new HOTP(hotp), code, token.counter, settings.hotpLookAhead);
      if (counter !== undefined) matches.push({ token, at: counter });
    }
  }
  return matches;
}

/**
 * Claims the first of `matches` not used yet in the store, with one conditional write each, so
 * the same code (or an older one of the same token) can never be used twice, even by two
 * requests or two gateway nodes at the same moment.
 */
export async function claimOathMatch(store: Store, matches: readonly OathMatch[], now: number): Promise<CodeCheck> {
  for (const { token, at } of matches) {
    if (token.kind === 'totp') {
      if (await store.claimTotpStep(token.id, at, now)) return { ok: true, method: 'totp', token };
    } else if (await store.advanceHotpCounter(token.id, token.counter, at + 1, now)) {
      return { ok: true, method: 'hotp', token };
    }
  }
  return { ok: false, reason: matches.length > 0 ? 'code_replayed' : 'bad_code' };
}

/** Checks `code` against the user's enabled OATH tokens and claims the match (matchOathCode, claimOathMatch). */
export async function checkOathCode(
  store: Store,
  keys: DataKeys,
  tokens: readonly OathToken[],
  code: string,
  now: number,
  settings: OathSettings,
): Promise<CodeCheck> {
  return claimOathMatch(store, matchOathCode(keys, tokens, code, now, settings), now);
}

interface HotpParameters {
  readonly secret: Secret;
  readonly algorithm: OathAlgorithm;
  readonly digits: number;
  readonly hmac: typeof oathHmac;
}

/** The step in `current` ± `window` that `code` was made for: current, then −1, +1, −2, …, stopping at the first. */
function firstTotpStep(hotp: HotpParameters, code: string, current: number, window: number): number | undefined {
  const delta = HOTP.validate({ ...hotp, token: code, counter: current, window });
  return delta === null ? undefined : current + delta;
}

/** firstTotpStep with every step computed and compared (no early exit), the same one preferred. */
function everyTotpStep(hotp: HotpParameters, code: string, current: number, window: number): number | undefined {
  const params = { ...hotp, counter: current };
  let found: number | undefined;
  let foundRank = Infinity;
  for (let step = current - window; step <= current + window; step++) {
    params.counter = step;
    const rank = step === current ? 0 : 2 * Math.abs(step - current) - (step < current ? 1 : 0);
    if (sameCode(HOTP.generate(params), code) && rank < foundRank) {
      found = step;
      foundRank = rank;
    }
  }
  return found;
}

/** Only counters not used yet may match: from the expected one up to `lookAhead` beyond it. */
function findHotpCounter(hotp: HOTP, code: string, expected: number, lookAhead: number): number | undefined {
  let found: number | undefined;
  for (let counter = expected; counter <= expected + lookAhead; counter++) {
    // No early exit: the time taken does not depend on which counter matched.
    if (sameCode(hotp.generate({ counter }), code) && found === undefined) found = counter;
  }
  return found;
}

/** a === b for two codes, in a time that depends on their length only. */
function sameCode(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface NewTotpToken {
  readonly token: OathToken;
  readonly uri: string;
  readonly secretBase32: string;
}

export interface EnrolOptions {
  readonly issuer: string;
  readonly kind?: OathKind;
  readonly secretBase32?: string;
  readonly algorithm?: OathAlgorithm;
  readonly digits?: number;
  readonly period?: number;
  readonly label?: string;
}

/** Creates (or imports, with `secretBase32`) an OATH token for `user` and returns its otpauth:// URI. */
export async function enrolOathToken(store: Store, keys: DataKeys, user: User, opts: EnrolOptions): Promise<NewTotpToken> {
  const kind = opts.kind ?? 'totp';
  const secret = opts.secretBase32 !== undefined ? Secret.fromBase32(opts.secretBase32.replace(/[\s-]/g, '').toUpperCase()) : new Secret({ size: 20 });
  const algorithm = opts.algorithm ?? 'SHA1';
  const digits = opts.digits ?? 6;
  const period = opts.period ?? 30;
  const label = opts.label ?? user.upn ?? user.username;
  const token = await store.addToken({
    userId: user.id,
    kind,
    label,
    algorithm,
    digits,
    period,
    counter: 0,
    sealedSecret: sealOathSecret(keys, user.id, new Uint8Array(secret.buffer)),
  });
  const otp =
    kind === 'totp'
      ? new TOTP({ issuer: opts.issuer, label, secret, algorithm, digits, period })
      : new HOTP({ issuer: opts.issuer, label, secret, algorithm, digits, counter: 0 });
  return { token, uri: otp.toString(), secretBase32: secret.base32 };
}
