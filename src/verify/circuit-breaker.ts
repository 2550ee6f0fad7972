/**
 * One breaker per provider: after `failureThreshold` failures in a row it opens and refuses
 * calls for `cooldownMs` (a dead SMS gateway then costs nothing, and the next provider or the
 * fail mode answers at once); then one probe is let through (half-open): success closes it,
 * failure opens it again.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private probing = false;

  constructor(
    private readonly failureThreshold: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.openedAt === null) return 'closed';
    return this.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** True when a call may go out now (in half-open, only the one probe). */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.failures = 0;
    this.openedAt = null;
    this.probing = false;
  }

  failure(): void {
    this.probing = false;
    this.failures++;
    if (this.openedAt !== null || this.failures >= this.failureThreshold) this.openedAt = this.now();
  }
}
