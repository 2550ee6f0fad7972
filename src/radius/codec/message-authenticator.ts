/**
 * Message-Authenticator (type 80): HMAC-MD5 keyed with the shared secret over the whole packet,
 * with the attribute's own value counted as 16 zero octets (RFC 2869 §5.14, RFC 3579 §3.2).
 *
 * What goes in the Authenticator field while hashing depends on the packet:
 * - Access-Request, Status-Server: the packet's own (random) Request Authenticator.
 * - Access-Accept/Reject/Challenge, and any reply to Status-Server: the *request's*
 *   authenticator (RFC 3579 §3.2), i.e. the MAC is computed before the Response Authenticator.
 * - Accounting-Request: 16 zero octets. RFC 2866 predates the attribute and no RFC spells this
 *   out; it is what FreeRADIUS does (rad_sign(), also for CoA/Disconnect), and it is the only
 *   choice that works, since the accounting authenticator is computed after (and over) the MAC.
 *
 * Since Blast-RADIUS (CVE-2024-3596) the attribute is the only real integrity protection an
 * Access-Request or a reply has: MD5 as used by the Response Authenticator admits chosen-prefix
 * collisions. Hence verification runs over the raw received bytes and compares in constant time.
 */
import { timingSafeEqual } from 'node:crypto';
import { hmac } from '../../crypto/digest.js';
import { verifyAccountingRequestAuthenticator, verifyResponseAuthenticator } from './authenticators.js';
import { AUTHENTICATOR_LENGTH, Code, HEADER_LENGTH, locateAttributes } from './packet.js';
import type { RadiusPacket } from './packet.js';

export const MESSAGE_AUTHENTICATOR_TYPE = 80;
export const MESSAGE_AUTHENTICATOR_LENGTH = 16;

const ZERO16 = Buffer.alloc(MESSAGE_AUTHENTICATOR_LENGTH);

/**
 * HMAC-MD5 over `raw` as it would read with `authenticatorField` in the Authenticator field and
 * 16 zero octets at `valueOffset` (the Message-Authenticator value). `raw` is not modified.
 */
export function computeMessageAuthenticator(
  raw: Buffer,
  valueOffset: number,
  authenticatorField: Buffer,
  secret: Buffer,
): Buffer {
  return hmac('md5', secret, [
    raw.subarray(0, 4),
    authenticatorField,
    raw.subarray(HEADER_LENGTH, valueOffset),
    ZERO16,
    raw.subarray(valueOffset + MESSAGE_AUTHENTICATOR_LENGTH),
  ]);
}

export type MessageAuthenticatorCheck = 'valid' | 'invalid' | 'missing';

/**
 * Checks the Message-Authenticator of a request we received (Access-Request, Status-Server,
 * Accounting-Request). 'valid' means every signed octet is authentic. 'missing' is for the
 * caller's policy to decide (RFC 3579 §3.2 and RFC 5997 §3 make it mandatory with EAP-Message and
 * in Status-Server; the Blast-RADIUS advisories make it mandatory in every Access-Request).
 * 'invalid' means: silently discard (RFC 3579 §3.2).
 */
export function verifyRequestMessageAuthenticator(p: Pick<RadiusPacket, 'raw'>, secret: Buffer): MessageAuthenticatorCheck {
  // Anyone can compute a MAC keyed with nothing.
  if (secret.length === 0) return 'invalid';
  const located = locateSingle(p.raw);
  if (located === 'missing' || located === 'invalid') return located;
  if (p.raw[0] === Code.AccountingRequest) {
    // The MAC was computed over a zeroed Authenticator field, so it vouches for everything but
    // that field; 'valid' must cover it too, and the RFC 2866 authenticator does.
    if (!matches(p.raw, located, ZERO16, secret)) return 'invalid';
    return verifyAccountingRequestAuthenticator(p, secret) ? 'valid' : 'invalid';
  }
  return matches(p.raw, located, p.raw.subarray(4, HEADER_LENGTH), secret) ? 'valid' : 'invalid';
}

/**
 * Checks the Message-Authenticator of a reply to a request whose authenticator we sent.
 * For Accounting-Response both framings are accepted: RFC 5997 (reply to Status-Server) uses the
 * request authenticator, FreeRADIUS uses zeros for a reply to Accounting-Request. The zero framing
 * leaves the Authenticator field uncovered, so it counts only with a valid Response Authenticator.
 */
export function verifyReplyMessageAuthenticator(
  reply: Pick<RadiusPacket, 'raw'>,
  requestAuthenticator: Buffer,
  secret: Buffer,
): MessageAuthenticatorCheck {
  if (secret.length === 0 || requestAuthenticator.length !== AUTHENTICATOR_LENGTH) return 'invalid';
  const located = locateSingle(reply.raw);
  if (located === 'missing' || located === 'invalid') return located;
  if (matches(reply.raw, located, requestAuthenticator, secret)) return 'valid';
  if (reply.raw[0] === Code.AccountingResponse && matches(reply.raw, located, ZERO16, secret)) {
    return verifyResponseAuthenticator(reply, requestAuthenticator, secret) ? 'valid' : 'invalid';
  }
  return 'invalid';
}

/** The value offset of the one Message-Authenticator, or why there is not exactly one well-formed one. */
function locateSingle(raw: Buffer): number | 'missing' | 'invalid' {
  const found = locateAttributes(raw, MESSAGE_AUTHENTICATOR_TYPE);
  if (found === undefined) return 'invalid';
  const [first, second] = found;
  if (first === undefined) return 'missing';
  // Two MACs would let a peer's parser and ours disagree on which one counts.
  if (second !== undefined) return 'invalid';
  if (first.valueLength !== MESSAGE_AUTHENTICATOR_LENGTH) return 'invalid';
  return first.valueOffset;
}

function matches(raw: Buffer, valueOffset: number, authenticatorField: Buffer, secret: Buffer): boolean {
  const expected = computeMessageAuthenticator(raw, valueOffset, authenticatorField, secret);
  return timingSafeEqual(expected, raw.subarray(valueOffset, valueOffset + MESSAGE_AUTHENTICATOR_LENGTH));
}
