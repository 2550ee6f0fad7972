/**
 * The 16-octet Authenticator field.
 *
 * - Access-Request / Status-Server: random (RFC 2865 §3, RFC 5997 §3). It is the only freshness
 *   those packets have and it keys User-Password hiding, so it must be unpredictable and never
 *   reused with the same secret: always from the CSPRNG (crypto/random.ts).
 * - Replies: Response Authenticator = MD5(Code+ID+Length+RequestAuth+Attributes+Secret) (RFC 2865 §3).
 * - Accounting-Request: MD5(Code+ID+Length+16 zero octets+Attributes+Secret) (RFC 2866 §3).
 */
import { timingSafeEqual } from 'node:crypto';
import { randomOctets } from '../../crypto/random.js';
import { digest } from '../../crypto/digest.js';
import { AUTHENTICATOR_LENGTH, HEADER_LENGTH, MIN_PACKET_LENGTH } from './packet.js';
import type { RadiusPacket } from './packet.js';

const ZERO_AUTHENTICATOR = Buffer.alloc(AUTHENTICATOR_LENGTH);

export function randomAuthenticator(): Buffer {
  return randomOctets(AUTHENTICATOR_LENGTH);
}

/** MD5 over `raw` with its Authenticator field replaced by `authenticatorField`, then the secret. */
function md5WithAuthenticator(raw: Buffer, authenticatorField: Buffer, secret: Buffer): Buffer {
  return digest('md5', [raw.subarray(0, 4), authenticatorField, raw.subarray(HEADER_LENGTH), secret]);
}

/**
 * RFC 2865 §3 Response Authenticator for an encoded reply (`raw`, Length already final and any
 * Message-Authenticator already filled in, since this hash covers it).
 */
export function computeResponseAuthenticator(raw: Buffer, requestAuthenticator: Buffer, secret: Buffer): Buffer {
  return md5WithAuthenticator(raw, requestAuthenticator, secret);
}

/** RFC 2866 §3 Request Authenticator of an Accounting-Request (the field counts as zeros). */
export function computeAccountingRequestAuthenticator(raw: Buffer, secret: Buffer): Buffer {
  return md5WithAuthenticator(raw, ZERO_AUTHENTICATOR, secret);
}

export function verifyResponseAuthenticator(
  reply: Pick<RadiusPacket, 'raw'>,
  requestAuthenticator: Buffer,
  secret: Buffer,
): boolean {
  if (secret.length === 0 || !wellFramed(reply.raw) || requestAuthenticator.length !== AUTHENTICATOR_LENGTH) return false;
  const expected = computeResponseAuthenticator(reply.raw, requestAuthenticator, secret);
  return timingSafeEqual(expected, reply.raw.subarray(4, HEADER_LENGTH));
}

export function verifyAccountingRequestAuthenticator(p: Pick<RadiusPacket, 'raw'>, secret: Buffer): boolean {
  if (secret.length === 0 || !wellFramed(p.raw)) return false;
  const expected = computeAccountingRequestAuthenticator(p.raw, secret);
  return timingSafeEqual(expected, p.raw.subarray(4, HEADER_LENGTH));
}

// The hash covers exactly Length octets; a raw buffer of any other size was not what the peer signed.
// (An empty secret is refused by the callers: an unkeyed MD5 is forgeable by anyone.)
function wellFramed(raw: Buffer): boolean {
  return raw.length >= MIN_PACKET_LENGTH && raw.readUInt16BE(2) === raw.length;
}
