import type { ApprovalOutcome } from './providers/provider.js';

/**
 * Pushes, calls and two-way SMS in progress in this process. A login that waits for one and
 * everything that may join it find it here:
 * - by `id` (the sealed challenge's nonce): the answer to a number-matching challenge waits for
 *   the push the challenge announced;
 * - by `joinKey` (user, client, source, method): a NAS that gives up on its request and sends a
 *   NEW one (new identifier) for the same login while the push is still out joins the push
 *   instead of starting a second (exact retransmissions are joined earlier, by the RADIUS
 *   duplicate cache).
 * A settled entry stays until its expiry, so a late answer still gets the same outcome.
 */

export interface PendingApproval {
  readonly id: string;
  /** Null: this approval is joined by its id only (number matching, no end-user address). */
  readonly joinKey: string | null;
  readonly method: string;
  readonly provider: string;
  readonly messageId: string | null;
  /** Number or address used, for the audit record of every login that waited on it. */
  readonly phone: string | null;
  readonly deviceId: string | null;
  readonly startedAt: number;
  readonly expiresAt: number;
  readonly outcome: Promise<ApprovalOutcome>;
  /** Stops the provider's waiting (shutdown). */
  readonly abort: AbortController;
}

export class PendingApprovals {
  private readonly byId = new Map<string, PendingApproval>();
  private readonly byJoinKey = new Map<string, PendingApproval>();
  /** Approvals being started (the provider has not answered yet), by join key. */
  private readonly startingByJoinKey = new Map<string, Promise<unknown>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  add(entry: PendingApproval, keepUntil: number, now: number): void {
    this.byId.set(entry.id, entry);
    const key = entry.joinKey;
    if (key !== null) {
      this.byJoinKey.set(key, entry);
      // Joining is for the push still out; once it settled, a new login starts a new push.
      void entry.outcome.then(() => {
        if (this.byJoinKey.get(key) === entry) this.byJoinKey.delete(key);
      });
    }
    const timer = setTimeout(() => this.remove(entry), Math.max(0, keepUntil - now));
    timer.unref();
    this.timers.set(entry.id, timer);
  }

  get(id: string): PendingApproval | undefined {
    return this.byId.get(id);
  }

  /** A push or call for the same login that is out, or being started (then once it is). */
  async joinable(joinKey: string): Promise<PendingApproval | undefined> {
    const out = this.byJoinKey.get(joinKey);
    if (out !== undefined) return out;
    const starting = this.startingByJoinKey.get(joinKey);
    if (starting === undefined) return undefined;
    await starting.catch(() => undefined);
    return this.byJoinKey.get(joinKey);
  }

  /** Marks a start in progress for `joinKey` until `started` settles. */
  starting(joinKey: string, started: Promise<unknown>): void {
    this.startingByJoinKey.set(joinKey, started);
    const done = (): void => {
      if (this.startingByJoinKey.get(joinKey) === started) this.startingByJoinKey.delete(joinKey);
    };
    started.then(done, done);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Aborts everything still out (shutdown): their outcomes settle `timeout`. */
  abortAll(): void {
    for (const entry of this.byId.values()) entry.abort.abort();
  }

  private remove(entry: PendingApproval): void {
    this.byId.delete(entry.id);
    if (entry.joinKey !== null && this.byJoinKey.get(entry.joinKey) === entry) this.byJoinKey.delete(entry.joinKey);
    const timer = this.timers.get(entry.id);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(entry.id);
    entry.abort.abort();
  }
}
