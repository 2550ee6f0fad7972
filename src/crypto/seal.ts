import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SealError } from '../errors.js';

const VERSION = 1;
const IV_LENGTH = 12;
const TAG_LENGTH = 16;
/** Bytes a sealed value adds to its plaintext: version, IV, GCM tag. */
export const SEAL_OVERHEAD = 1 + IV_LENGTH + TAG_LENGTH;

/**
 * AES-256-GCM with a random 96-bit IV. `context` is bound as additional authenticated data, so a
 * sealed value copied into another row (another user's token) or another purpose fails to open.
 */
export function seal(key: Buffer, plaintext: Buffer, context: string): Buffer {
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]);
}

export function unseal(key: Buffer, sealed: Buffer, context: string): Buffer {
  if (sealed.length < SEAL_OVERHEAD || sealed[0] !== VERSION) throw new SealError('sealed value is malformed');
  const iv = sealed.subarray(1, 1 + IV_LENGTH);
  const tag = sealed.subarray(sealed.length - TAG_LENGTH);
  const body = sealed.subarray(1 + IV_LENGTH, sealed.length - TAG_LENGTH);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (err) {
    throw new SealError('sealed value failed authentication (wrong key or tampered)', { cause: err });
  }
}
