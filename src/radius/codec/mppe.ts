/**
 * MS-MPPE-Send-Key and MS-MPPE-Recv-Key values (RFC 2548 §2.4.2, §2.4.3): link-encryption keys
 * sent to a NAS in an Access-Accept, hidden with the shared secret and the Request Authenticator
 * of the request the accept answers:
 *
 *   P = Key-Length (1 octet) + Key + zero padding to a multiple of 16 octets
 *   b(1) = MD5(S + R + A)    c(1) = p(1) xor b(1)
 *   b(i) = MD5(S + c(i-1))   c(i) = p(i) xor b(i)
 *   value = A + c(1) + … + c(n)
 *
 * S is the shared secret, R the Request Authenticator, A a two-octet Salt whose most significant
 * bit is set and which is unique among the key attributes of one packet. (RFC 2868's
 * Tunnel-Password hiding is the same construction; FreeRADIUS's `encrypt=2`.)
 *
 * A hop that passes keys on (the gateway between a NAS and an upstream RADIUS server) cannot copy
 * them: they are bound to the upstream's secret and the authenticator of the gateway's own
 * request. It decrypts them and encrypts them again for the NAS's secret and the NAS request's
 * authenticator, with new salts. The clear keys are what the NAS and the user's device encrypt
 * the session with: never log them, never store them.
 */
import { randomBytes } from 'node:crypto';
import { digest } from '../../crypto/digest.js';
import { AUTHENTICATOR_LENGTH, MAX_ATTRIBUTE_VALUE_LENGTH, RadiusEncodeError } from './packet.js';

const BLOCK = 16;
export const MPPE_SALT_LENGTH = 2;
/**
 * The longest key whose encrypted value still fits a Vendor-Specific sub-attribute (247 octets
 * of value after the vendor id, type and length): salt + 15 blocks = 242, and one octet of each
 * 240 is the length.
 */
export const MAX_MPPE_KEY_LENGTH = Math.floor((MAX_ATTRIBUTE_VALUE_LENGTH - 6 - MPPE_SALT_LENGTH) / BLOCK) * BLOCK - 1;

/** XORs `data` in place with the RFC 2548 MD5 chain; `chainFrom` supplies c(i-1) (the cipher text). */
function xorChain(data: Buffer, secret: Buffer, requestAuthenticator: Buffer, salt: Buffer, chainFrom: Buffer): void {
  let b = digest('md5', [secret, requestAuthenticator, salt]);
  for (let i = 0; i < data.length; i += BLOCK) {
    if (i > 0) b = digest('md5', [secret, chainFrom.subarray(i - BLOCK, i)]);
    for (let j = 0; j < BLOCK; j++) data[i + j] = (data[i + j] as number) ^ (b[j] as number);
  }
}

/**
 * The attribute value (salt + cipher text) for `key`. `salt` must be two octets with the high bit
 * set (newMppeSalts). Throws RadiusEncodeError on an empty secret, a key of 0 or more than
 * MAX_MPPE_KEY_LENGTH octets, a bad salt or authenticator.
 */
export function encryptMppeKey(key: Buffer, secret: Buffer, requestAuthenticator: Buffer, salt: Buffer): Buffer {
  if (secret.length === 0) throw new RadiusEncodeError('the shared secret is empty');
  if (key.length === 0 || key.length > MAX_MPPE_KEY_LENGTH) {
    throw new RadiusEncodeError(`an MPPE key holds 1..${MAX_MPPE_KEY_LENGTH} octets, not ${key.length}`);
  }
  if (requestAuthenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new RadiusEncodeError(`authenticator must be ${AUTHENTICATOR_LENGTH} octets, not ${requestAuthenticator.length}`);
  }
  if (salt.length !== MPPE_SALT_LENGTH || ((salt[0] as number) & 0x80) === 0) {
    throw new RadiusEncodeError('an MPPE key salt is two octets with the most significant bit set (RFC 2548 §2.4.2)');
  }
  const plain = Buffer.alloc(Math.ceil((1 + key.length) / BLOCK) * BLOCK);
  plain[0] = key.length;
  key.copy(plain, 1);
  // Encrypting in place: c(i-1) is already cipher text when block i is reached.
  xorChain(plain, secret, requestAuthenticator, salt, plain);
  return Buffer.concat([salt, plain]);
}

/**
 * The clear key from an attribute value, or undefined when the value cannot be one: shorter than
 * salt + one block, not salt + whole blocks, or a Key-Length longer than what follows it (the sign
 * of a wrong secret or authenticator, which nothing else here can detect). The salt's high bit is
 * not insisted on: that is the sender's duty, and the value decrypts the same either way.
 */
export function decryptMppeKey(value: Buffer, secret: Buffer, requestAuthenticator: Buffer): Buffer | undefined {
  if (secret.length === 0 || requestAuthenticator.length !== AUTHENTICATOR_LENGTH) return undefined;
  const cipher = value.subarray(MPPE_SALT_LENGTH);
  if (cipher.length < BLOCK || cipher.length % BLOCK !== 0) return undefined;
  const plain = Buffer.from(cipher);
  xorChain(plain, secret, requestAuthenticator, value.subarray(0, MPPE_SALT_LENGTH), cipher);
  const length = plain[0] as number;
  if (length === 0 || length > plain.length - 1) return undefined;
  return Buffer.from(plain.subarray(1, 1 + length));
}

/** `count` random salts, each with the most significant bit set and all different (RFC 2548 §2.4.2). */
export function newMppeSalts(count: number): Buffer[] {
  const salts: Buffer[] = [];
  while (salts.length < count) {
    const salt = randomBytes(MPPE_SALT_LENGTH);
    salt[0] = (salt[0] as number) | 0x80;
    if (!salts.some((s) => s.equals(salt))) salts.push(salt);
  }
  return salts;
}
