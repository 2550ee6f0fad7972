import { setTimeout as sleep } from 'node:timers/promises';
import { Secret, TOTP } from 'otpauth';
import type { RunningGateway } from './gateway.js';

/**
 * TOTP codes for end-to-end tests that log the same users in many times: each user has several
 * tokens (a code may be used once per token and 30 s step), and next() hands out a code of a
 * token not used yet in the current step, waiting for the next step when all are (or when the
 * current one ends within 4 s, so a code never expires on its way).
 */
export class TotpCodes {
  private readonly used = new Set<string>();

  constructor(
    readonly tokensPerUser: number,
    private readonly label = 'seed',
  ) {}

  /** The base32 seed of the user's i-th token (enrol it with `tokens add-totp USER --secret SEED`). */
  seed(user: string, i: number): string {
    return Secret.fromUTF8(`${user}-${this.label}-${i}-0123456789`).base32;
  }

  async next(user: string): Promise<string> {
    for (;;) {
      const now = Date.now();
      const step = Math.floor(now / 30_000);
      if (30_000 - (now % 30_000) > 4_000) {
        for (let i = 0; i < this.tokensPerUser; i++) {
          const key = `${user}/${i}/${step}`;
          if (this.used.has(key)) continue;
          this.used.add(key);
          return new TOTP({ secret: Secret.fromBase32(this.seed(user, i)) }).generate({ timestamp: now });
        }
      }
      await sleep(30_000 - (now % 30_000) + 100);
    }
  }

  /** Enrols every token of `user` through the gateway's CLI; throws with the CLI's stderr on failure. */
  async enrol(gw: RunningGateway, user: string): Promise<void> {
    for (let i = 0; i < this.tokensPerUser; i++) {
      const out = await gw.cli(['tokens', 'add-totp', user, '--secret', this.seed(user, i), '--label', `token-${i}`, '--no-qr']);
      if (out.code !== 0) throw new Error(`tokens add-totp ${user} #${i}: ${out.stderr}`);
    }
  }
}

/** The gateway's audit log through `audit export --format json`. */
export async function exportedAudit(gw: RunningGateway): Promise<Array<Record<string, unknown>>> {
  const out = await gw.cli(['audit', 'export', '--format', 'json']);
  if (out.code !== 0) throw new Error(`audit export failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as Array<Record<string, unknown>>;
}
