import { hash } from 'node:crypto';

/**
 * One-shot digests and HMAC (RFC 2104) for the per-attempt path: RADIUS authenticators,
 * Message-Authenticator, User-Password hiding, the audit chain.
 *
 * createHash/createHmac build a native object per call that V8 frees only in a weak-handle
 * callback during the next young-generation GC; at about seven per login those callbacks were
 * half of every scavenge pause (2.4 of 5.5 ms, `--trace-gc-nvp`), which one login in ~240 waits
 * for. `crypto.hash` digests one buffer without an object, and HMAC is two digests over the
 * padded key (RFC 2104 §2), checked against createHmac and the RFC 2202 / RFC 4231 vectors in
 * test/crypto/digest.test.ts.
 *
 * Digests come back as 'binary' (latin1) text, one octet per character, and become Buffers sliced
 * from Node's shared pool: a 'buffer' result has a backing store of its own, which the scavenger
 * then has to sweep (`scavenge.sweep_array_buffers` 0.74 ms of each pause, 0.02 ms after).
 */

export type DigestAlgorithm = 'md5' | 'sha1' | 'sha256';

/** Input block size B of RFC 2104 (64 octets for all three). */
const BLOCK_BYTES = 64;
const IPAD = 0x36;
const OPAD = 0x5c;

function totalLength(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/** The digest of `parts` concatenated (the RADIUS hashes put the shared secret among them). */
export function digest(algorithm: DigestAlgorithm, parts: readonly Uint8Array[]): Buffer {
  if (parts.length === 1) return Buffer.from(hash(algorithm, parts[0]!, 'binary'), 'latin1');
  const data = Buffer.concat(parts, totalLength(parts));
  const out = hash(algorithm, data, 'binary');
  data.fill(0);
  return Buffer.from(out, 'latin1');
}

/** Octets of a digest, by algorithm. */
const DIGEST_BYTES: Record<DigestAlgorithm, number> = { md5: 16, sha1: 20, sha256: 32 };

/** `length` octets: `pad` XOR the key (zero-padded to the block), followed by room for the message. */
function paddedKey(key: Uint8Array, pad: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  out.fill(pad, 0, BLOCK_BYTES);
  for (let i = 0; i < key.length; i++) out[i] = out[i]! ^ key[i]!;
  return out;
}

/** HMAC of `parts` concatenated, keyed with `key` (RFC 2104): H(K ^ opad, H(K ^ ipad, text)). */
export function hmac(algorithm: DigestAlgorithm, key: Uint8Array, parts: readonly Uint8Array[]): Buffer {
  // Keys longer than the block are hashed first (RFC 2104 §2).
  const k = key.length > BLOCK_BYTES ? digest(algorithm, [key]) : key;
  const inner = paddedKey(k, IPAD, BLOCK_BYTES + totalLength(parts));
  let at = BLOCK_BYTES;
  for (const p of parts) {
    inner.set(p, at);
    at += p.length;
  }
  const outer = paddedKey(k, OPAD, BLOCK_BYTES + DIGEST_BYTES[algorithm]);
  outer.write(hash(algorithm, inner, 'binary'), BLOCK_BYTES, 'latin1');
  const mac = Buffer.from(hash(algorithm, outer, 'binary'), 'latin1');
  // Small buffers are slices of Node's shared pool: leave no key-derived octets behind in it.
  // (digest() wipes its copy for the same reason.)
  inner.fill(0, 0, BLOCK_BYTES);
  outer.fill(0, 0, BLOCK_BYTES);
  if (k !== key) k.fill(0);
  return mac;
}
