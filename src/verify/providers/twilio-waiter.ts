import type { ApprovalOutcome } from './provider.js';

/**
 * The outcome of one pending Twilio approval (a call or a two-way SMS): settles exactly once,
 * never rejects. It settles `timeout` by itself at `expiresAt` or when the login's signal aborts,
 * and then tells its owner (`onGiveUp`) so it can end the call or forget the SMS.
 */
export class ApprovalWaiter {
  readonly outcome: Promise<ApprovalOutcome>;
  private resolve: (outcome: ApprovalOutcome) => void = () => undefined;
  private settledWith: ApprovalOutcome | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort: () => void;

  constructor(
    expiresAt: number,
    private readonly signal: AbortSignal,
    now: () => number,
    private readonly onGiveUp: (outcome: ApprovalOutcome) => void,
  ) {
    this.outcome = new Promise((resolve) => {
      this.resolve = resolve;
    });
    this.onAbort = () => this.giveUp('the login stopped waiting');
    if (signal.aborted) {
      // Settled on the next tick, once the owner has finished registering this waiter.
      queueMicrotask(this.onAbort);
      return;
    }
    signal.addEventListener('abort', this.onAbort, { once: true });
    this.timer = setTimeout(() => this.giveUp('no answer before the login expired'), Math.max(0, expiresAt - now()));
    this.timer.unref();
  }

  get settled(): ApprovalOutcome | undefined {
    return this.settledWith;
  }

  /** Settles unless settled already; true when this call did. */
  settle(outcome: ApprovalOutcome): boolean {
    if (this.settledWith !== undefined) return false;
    this.settledWith = outcome;
    this.dispose();
    this.resolve(outcome);
    return true;
  }

  /** Stops the timer and the abort listener (the outcome stays as it is). */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.signal.removeEventListener('abort', this.onAbort);
  }

  private giveUp(detail: string): void {
    const outcome: ApprovalOutcome = { result: 'timeout', detail };
    if (this.settle(outcome)) this.onGiveUp(outcome);
  }
}
