import { LRUCache } from 'lru-cache';

/**
 * RFC 5080 §2.2.2 duplicate detection. A retransmission is the same (source address, source
 * port, identifier, Request Authenticator). While the original is still being decided the copy
 * joins it (no second push, no second audit record) and is answered when it is, however long
 * that takes; afterwards the cached reply is re-sent byte for byte for `windowMs`.
 */
export type DuplicateEntry = { readonly kind: 'pending' } | { readonly kind: 'done'; readonly reply: Buffer };

export class DuplicateCache {
  /** Requests being decided. Never expire: a push may take longer than the reply window. */
  private readonly pending = new Map<string, { copies: number }>();
  private readonly done: LRUCache<string, Buffer>;

  constructor(windowMs: number, maxEntries = 200_000) {
    this.done = new LRUCache<string, Buffer>({ max: maxEntries, ttl: windowMs });
  }

  static key(address: string, port: number, identifier: number, authenticator: Buffer): string {
    return `${address}|${port}|${identifier}|${authenticator.toString('hex')}`;
  }

  /** Undefined for a new request (now registered as pending); else what is known of the original. */
  begin(key: string): DuplicateEntry | undefined {
    const waiting = this.pending.get(key);
    if (waiting) {
      waiting.copies++;
      return { kind: 'pending' };
    }
    const reply = this.done.get(key);
    if (reply) return { kind: 'done', reply };
    this.pending.set(key, { copies: 1 });
    return undefined;
  }

  /** Records the reply and returns how many copies of the request arrived while it was decided. */
  finish(key: string, reply: Buffer): number {
    const copies = this.pending.get(key)?.copies ?? 1;
    this.pending.delete(key);
    this.done.set(key, reply);
    return copies;
  }

  /** Forgets a request whose processing failed, so a retransmission is processed afresh. */
  forget(key: string): void {
    this.pending.delete(key);
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}
