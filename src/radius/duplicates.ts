import { LRUCache } from 'lru-cache';

/**
 * RFC 5080 §2.2.2 duplicate detection. A retransmission is the same (source address, source
 * port, identifier, Request Authenticator). While the original is still being decided the copy
 * joins it (no second push, no second audit record) and is answered when it is; afterwards the
 * cached reply is re-sent byte for byte.
 */
export type DuplicateEntry =
  | { readonly kind: 'pending'; copies: number }
  | { readonly kind: 'done'; readonly reply: Buffer | undefined };

export class DuplicateCache {
  private readonly entries: LRUCache<string, DuplicateEntry>;

  constructor(windowMs: number, maxEntries = 200_000) {
    this.entries = new LRUCache<string, DuplicateEntry>({ max: maxEntries, ttl: windowMs, ttlAutopurge: false });
  }

  static key(address: string, port: number, identifier: number, authenticator: Buffer): string {
    return `${address}|${port}|${identifier}|${authenticator.toString('hex')}`;
  }

  /** Undefined for a new request (now registered as pending); else what is known of the original. */
  begin(key: string): DuplicateEntry | undefined {
    const existing = this.entries.get(key);
    if (existing) {
      if (existing.kind === 'pending') existing.copies++;
      return existing;
    }
    this.entries.set(key, { kind: 'pending', copies: 1 });
    return undefined;
  }

  /** Records the reply (undefined: the request was dropped) and returns how many copies arrived. */
  finish(key: string, reply: Buffer | undefined): number {
    const existing = this.entries.get(key);
    const copies = existing?.kind === 'pending' ? existing.copies : 1;
    this.entries.set(key, { kind: 'done', reply });
    return copies;
  }

  /** Forgets a request whose processing failed, so a retransmission is processed afresh. */
  forget(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
