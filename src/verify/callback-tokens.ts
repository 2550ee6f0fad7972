import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { DataKeys } from '../crypto/keys.js';
import type { Store } from '../store/store.js';

/**
 * Tokens in provider callback URLs (`/callbacks/ntfy/approve/<token>`): an id, what it is for,
 * an expiry and an HMAC-SHA256 over all three under the `callback-token` key. A forged or altered
 * token fails the MAC, an old one its expiry, and a used one the store's single-use claim, so a
 * callback URL read off a phone's notification history or a proxy log is worthless afterwards.
 *
 * Format (URL-safe): `<id>.<expiresAt base36>.<mac base64url>`; the purpose is not in the token,
 * the route supplies it, so a token made for "deny" cannot be replayed on "approve".
 */

export interface VerifiedToken {
  /** Random id (base64url, 16 bytes): the subject the issuer keyed its waiter on. */
  readonly id: string;
  readonly expiresAt: number;
}

const MAC_BYTES = 16;

export class CallbackTokens {
  constructor(
    private readonly keys: DataKeys,
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new random id, to issue one or several tokens (approve / deny / fraud) for. */
  static newId(): string {
    return randomBytes(16).toString('base64url');
  }

  issue(id: string, purpose: string, expiresAt: number): string {
    const exp = Math.ceil(expiresAt).toString(36);
    return `${id}.${exp}.${this.mac(id, exp, purpose)}`;
  }

  /** Checks MAC and expiry only (no claim): for callbacks that may come several times (status updates). */
  verify(token: string, purpose: string): VerifiedToken | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [id, exp, mac] = parts as [string, string, string];
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(id) || !/^[0-9a-z]{1,12}$/.test(exp)) return undefined;
    // Compared as text: base64url decoding ignores the last character's spare bits, so comparing
    // decoded bytes would let a second spelling of the same MAC through.
    const given = Buffer.from(mac, 'latin1');
    const expected = Buffer.from(this.mac(id, exp, purpose), 'latin1');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const expiresAt = parseInt(exp, 36);
    if (!(expiresAt > this.now())) return undefined;
    return { id, expiresAt };
  }

  /**
   * Verifies and claims the token's id once for `purpose`-group `claimGroup` (all actions of one
   * push share a group: approving then denying with the other button is refused). Undefined when
   * forged, expired or already used.
   */
  async redeem(token: string, purpose: string, claimGroup: string): Promise<VerifiedToken | undefined> {
    const verified = this.verify(token, purpose);
    if (verified === undefined) return undefined;
    const fresh = await this.store.claimOnce(`callback:${claimGroup}`, verified.id, verified.expiresAt, this.now());
    return fresh ? verified : undefined;
  }

  private mac(id: string, exp: string, purpose: string): string {
    return createHmac('sha256', this.keys.get('callback-token')).update(`${purpose}\n${id}\n${exp}`).digest().subarray(0, MAC_BYTES).toString('base64url');
  }
}
