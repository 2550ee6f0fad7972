import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * X-Twilio-Signature (https://www.twilio.com/docs/usage/security#validating-requests): Twilio
 * signs every webhook with HMAC-SHA1 under the account's Auth Token over the full URL it called
 * (scheme, host, path and query, as configured) followed by each POST parameter, sorted by name,
 * as name + value with no separators; the header carries the digest in base64.
 *
 * A parameter sent more than once contributes each distinct value in sorted order, as Twilio's
 * own validator (twilio-node, webhooks.ts) does. Twilio is inconsistent about an explicit default
 * port (`:443`), so, like that validator, both forms of the URL are accepted.
 */

/** The signature Twilio sends for `url` and the form parameters `params` (pairs, in any order). */
export function twilioSignature(authToken: string, url: string, params: Iterable<readonly [string, string]>): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of params) {
    let values = byName.get(name);
    if (values === undefined) byName.set(name, (values = new Set()));
    values.add(value);
  }
  let data = url;
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...(byName.get(name) ?? [])].sort()) data += name + value;
  }
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

/** Form parameters of an `application/x-www-form-urlencoded` body, every pair kept. */
export function formPairs(rawBody: Buffer): [string, string][] {
  return [...new URLSearchParams(rawBody.toString('utf8'))];
}

/**
 * True when `signature` (the header, possibly missing) is Twilio's for `url` and `params`.
 * Constant time in the signature's content.
 */
export function verifyTwilioSignature(authToken: string, signature: string | undefined, url: string, params: readonly (readonly [string, string])[]): boolean {
  if (signature === undefined || signature === '') return false;
  const given = Buffer.from(signature, 'utf8');
  let ok = false;
  for (const candidate of urlVariants(url)) {
    const expected = Buffer.from(twilioSignature(authToken, candidate, params), 'utf8');
    // Every variant is computed and compared, so the time taken does not say which one matched.
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}

/** The URL as given, and with the scheme's default port spelled out and left out. */
function urlVariants(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [url];
  }
  const variants = new Set([url]);
  // URL drops a default port (`:443` on https), so an empty port here means "the default".
  const defaultPort = parsed.protocol === 'https:' ? '443' : parsed.protocol === 'http:' ? '80' : undefined;
  if (parsed.port === '' && defaultPort !== undefined) {
    const auth = parsed.username === '' && parsed.password === '' ? '' : `${parsed.username}${parsed.password === '' ? '' : `:${parsed.password}`}@`;
    const rest = `${parsed.pathname}${parsed.search}${parsed.hash}`;
    variants.add(`${parsed.protocol}//${auth}${parsed.hostname}:${defaultPort}${rest}`);
    variants.add(`${parsed.protocol}//${auth}${parsed.hostname}${rest}`);
  }
  return [...variants];
}

/** Constant-time equality of two short secrets (a typed code, a PIN), whatever their lengths. */
export function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}
