import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { digest } from '../src/crypto/digest.js';

/**
 * A minimal Access-Request encoder for the load generator, independent of the gateway's codec so
 * a codec bug cannot agree with itself (a later change may switch to src/radius/codec). RFC 2865
 * §5.2 User-Password hiding, RFC 3579 §3.2 Message-Authenticator. Encoding runs before the clock
 * starts (latency-client.ts) and keeps node:crypto's hash objects; the reply check runs inside the
 * measured loop and uses the one-shot digest of src/crypto/digest.ts (no object per reply; itself
 * checked against createHash in test/crypto/digest.test.ts).
 */

export const ACCESS_REQUEST = 1;
export const ACCESS_ACCEPT = 2;
export const ACCESS_REJECT = 3;
export const ACCESS_CHALLENGE = 11;

const USER_NAME = 1;
const USER_PASSWORD = 2;
const NAS_IP_ADDRESS = 4;
const MESSAGE_AUTHENTICATOR = 80;

export interface AccessRequest {
  /** The datagram. */
  packet: Buffer;
  /** The Request Authenticator (random), needed to check the reply. */
  authenticator: Buffer;
}

export function encodeAccessRequest(id: number, secret: Buffer, user: string, password: string): AccessRequest {
  const authenticator = randomBytes(16);
  const name = Buffer.from(user, 'utf8');
  const hidden = hidePassword(Buffer.from(password, 'utf8'), secret, authenticator);
  if (name.length > 253 || hidden.length > 128) throw new Error('User-Name or User-Password too long');
  const length = 20 + (2 + name.length) + (2 + hidden.length) + 6 + 18;
  const packet = Buffer.alloc(length);
  packet[0] = ACCESS_REQUEST;
  packet[1] = id & 0xff;
  packet.writeUInt16BE(length, 2);
  authenticator.copy(packet, 4);
  let at = 20;
  packet[at++] = USER_NAME;
  packet[at++] = 2 + name.length;
  at += name.copy(packet, at);
  packet[at++] = USER_PASSWORD;
  packet[at++] = 2 + hidden.length;
  at += hidden.copy(packet, at);
  packet[at++] = NAS_IP_ADDRESS;
  packet[at++] = 6;
  packet.set([127, 0, 0, 1], at);
  at += 4;
  // Message-Authenticator last: HMAC-MD5 over the whole packet with its own value zeroed.
  packet[at++] = MESSAGE_AUTHENTICATOR;
  packet[at++] = 18;
  createHmac('md5', secret).update(packet).digest().copy(packet, at);
  return { packet, authenticator };
}

/** RFC 2865 §5.2: pad to 16, XOR with MD5(secret + previous block), first block chained on the authenticator. */
export function hidePassword(password: Buffer, secret: Buffer, authenticator: Buffer): Buffer {
  const padded = Buffer.alloc(Math.max(16, Math.ceil(password.length / 16) * 16));
  password.copy(padded);
  const out = Buffer.alloc(padded.length);
  let previous = authenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const pad = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16; j++) out[i + j] = (padded[i + j] ?? 0) ^ (pad[j] ?? 0);
    previous = out.subarray(i, i + 16);
  }
  return out;
}

/**
 * The reply's code when it is a well-formed answer to the request (Response Authenticator
 * = MD5(code|id|length|request authenticator|attributes|secret)), else undefined.
 */
export function replyCode(reply: Buffer, request: AccessRequest, secret: Buffer): number | undefined {
  if (reply.length < 20) return undefined;
  const length = reply.readUInt16BE(2);
  if (length < 20 || length > reply.length || reply[1] !== request.packet[1]) return undefined;
  // One-shot (no hash object per reply): this runs inside the load generator's loop.
  const expected = digest('md5', [reply.subarray(0, 4), request.authenticator, reply.subarray(20, length), secret]);
  return timingSafeEqual(expected, reply.subarray(4, 20)) ? reply[0] : undefined;
}
