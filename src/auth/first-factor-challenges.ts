import { LRUCache } from 'lru-cache';
import type { RadiusAttribute } from '../radius/codec/index.js';
import type { MppeKeys } from './decision.js';

/** What a challenge in progress carries besides its sealed State. */
export interface ChallengeCarry {
  /** A first-factor challenge: what the target needs with the answer (an upstream's server and State). */
  readonly continuation?: Buffer;
  /** The first factor's reply attributes, owed to the NAS with the accept that ends the login. */
  readonly replyAttributes?: readonly RadiusAttribute[];
  /**
   * The first factor's MPPE keys (an upstream's answer to MS-CHAPv2), owed to the NAS with the
   * accept that ends the login, encrypted for THAT request: so they wait here in the clear, in
   * this process's memory only, never in the sealed State the NAS holds.
   */
  readonly mppeKeys?: MppeKeys;
}

/**
 * What challenges in progress carry besides their sealed State, by challenge nonce: an upstream
 * RADIUS server's State, or the reply attributes (and MPPE keys) its accept returned before the
 * gateway asked for the second factor. They stay in this process: the NAS answers a challenge to the server that
 * sent it (RFC 2865 §4.4), and they can be as long as a RADIUS State itself, too long to ride
 * inside the gateway's own sealed State. Bounded in number; each entry expires with its
 * challenge and is taken once.
 */
export class FirstFactorChallenges {
  private readonly pending: LRUCache<string, ChallengeCarry>;

  constructor(max = 100_000) {
    this.pending = new LRUCache<string, ChallengeCarry>({ max });
  }

  put(nonce: string, carry: ChallengeCarry, ttlMs: number): void {
    this.pending.set(nonce, carry, { ttl: ttlMs });
  }

  /** The entry, removed: a challenge is answered once. */
  take(nonce: string): ChallengeCarry | undefined {
    const value = this.pending.get(nonce);
    this.pending.delete(nonce);
    return value;
  }
}
