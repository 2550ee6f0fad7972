import { hash } from 'node:crypto';

/**
 * One-shot digests and HMAC (RFC 2104) for the per-attempt path: RADIUS authenticators,
 * Message-Authenticator, User-Password hiding, the audit chain, OATH codes.
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

export type DigestAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

/** Input block size B of RFC 2104, by algorithm. */
const BLOCK_BYTES: Record<DigestAlgorithm, number> = { md5: 64, sha1: 64, sha256: 64, sha512: 128 };
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
const DIGEST_BYTES: Record<DigestAlgorithm, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

/** `length` octets: `pad` XOR the key (zero-padded to the `block`), followed by room for the message. */
function paddedKey(key: Uint8Array, pad: number, block: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  out.fill(pad, 0, block);
  for (let i = 0; i < key.length; i++) out[i] = out[i]! ^ key[i]!;
  return out;
}

/** HMAC of `parts` concatenated, keyed with `key` (RFC 2104): H(K ^ opad, H(K ^ ipad, text)). */
export function hmac(algorithm: DigestAlgorithm, key: Uint8Array, parts: readonly Uint8Array[]): Buffer {
  const block = BLOCK_BYTES[algorithm];
  // Keys longer than the block are hashed first (RFC 2104 §2).
  const k = key.length > block ? digest(algorithm, [key]) : key;
  const inner = paddedKey(k, IPAD, block, block + totalLength(parts));
  let at = block;
  for (const p of parts) {
    inner.set(p, at);
    at += p.length;
  }
  const outer = paddedKey(k, OPAD, block, block + DIGEST_BYTES[algorithm]);
  outer.write(hash(algorithm, inner, 'binary'), block, 'latin1');
  const mac = Buffer.from(hash(algorithm, outer, 'binary'), 'latin1');
  // Small buffers are slices of Node's shared pool: leave no key-derived octets behind in it.
  // (digest() wipes its copy for the same reason.)
  inner.fill(0, 0, block);
  outer.fill(0, 0, block);
  if (k !== key) k.fill(0);
  return mac;
}
