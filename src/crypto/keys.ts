import { hkdfSync } from 'node:crypto';

/** What a derived key is for. Each purpose gets its own key, so one can never open another's data. */
export type KeyPurpose = 'oath-secret' | 'challenge-state' | 'callback-token' | 'sent-code';

/**
 * Keys derived from the one master key (data/master.key) with HKDF-SHA256. Rotating the master
 * key re-keys everything at once; no derived key is ever stored.
 */
export class DataKeys {
  private readonly derived = new Map<KeyPurpose, Buffer>();

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== 32) throw new RangeError('master key must be 32 bytes');
  }

  get(purpose: KeyPurpose): Buffer {
    let key = this.derived.get(purpose);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.masterKey, Buffer.alloc(0), `mfa-gateway/${purpose}/v1`, 32));
      this.derived.set(purpose, key);
    }
    return key;
  }
}
