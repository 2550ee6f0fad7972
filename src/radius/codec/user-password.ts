/**
 * User-Password hiding, RFC 2865 §5.2:
 *   b1 = MD5(S + RA)        c(1) = p1 xor b1
 *   bi = MD5(S + c(i-1))    c(i) = pi xor bi
 * where the password is padded with NULs to a multiple of 16 octets.
 *
 * This is obfuscation keyed by the shared secret, not encryption: anyone holding one hidden
 * password and its cleartext can attack the secret offline. Never log hidden values.
 */
import { digest } from '../../crypto/digest.js';
import { AUTHENTICATOR_LENGTH, RadiusEncodeError } from './packet.js';

const BLOCK = 16;
// RFC 2865 §5.2: "The String field ... is at least 16 octets and at most 128 octets."
export const MAX_PASSWORD_LENGTH = 128;

export function hidePassword(password: Buffer, secret: Buffer, authenticator: Buffer): Buffer {
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new RadiusEncodeError(`a User-Password holds at most ${MAX_PASSWORD_LENGTH} octets, not ${password.length}`);
  }
  if (authenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new RadiusEncodeError(`authenticator must be ${AUTHENTICATOR_LENGTH} octets, not ${authenticator.length}`);
  }
  // An empty password still occupies one block: the attribute's value must be at least 16 octets.
  const length = Math.max(BLOCK, Math.ceil(password.length / BLOCK) * BLOCK);
  const out = Buffer.alloc(length);
  password.copy(out);
  let chain = authenticator;
  for (let i = 0; i < length; i += BLOCK) {
    const b = digest('md5', [secret, chain]);
    for (let j = 0; j < BLOCK; j++) out[i + j] = (out[i + j] as number) ^ (b[j] as number);
    chain = out.subarray(i, i + BLOCK);
  }
  return out;
}

/**
 * Reverses hidePassword. Returns undefined when the value cannot be a hidden password (length 0,
 * not a multiple of 16, or over 128). Trailing NULs are padding and are stripped, so a password
 * that really ends in NUL cannot be represented; RFC 2865 gives no way to tell them apart.
 */
export function unhidePassword(hidden: Buffer, secret: Buffer, authenticator: Buffer): Buffer | undefined {
  if (hidden.length === 0 || hidden.length % BLOCK !== 0 || hidden.length > MAX_PASSWORD_LENGTH) return undefined;
  if (authenticator.length !== AUTHENTICATOR_LENGTH) return undefined;
  const out = Buffer.alloc(hidden.length);
  let chain = authenticator;
  for (let i = 0; i < hidden.length; i += BLOCK) {
    const b = digest('md5', [secret, chain]);
    for (let j = 0; j < BLOCK; j++) out[i + j] = (hidden[i + j] as number) ^ (b[j] as number);
    chain = hidden.subarray(i, i + BLOCK);
  }
  let end = out.length;
  while (end > 0 && out[end - 1] === 0) end--;
  return out.subarray(0, end);
}
