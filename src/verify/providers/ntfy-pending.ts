import type { ApprovalOutcome } from './provider.js';

/**
 * Pushes waiting for their answer. The benchmark keeps 10 000 of them open at once, so each
 * costs one Map entry, one timer and one small object: the timer callback is one shared
 * function that gets the entry as its argument, and the entry is its own abort listener
 * (`handleEvent`), so no closure per push holds the request or the provider.
 */

export class PendingPush {
  timer: NodeJS.Timeout | undefined;
  /** ntfy's message id, once the publish was answered (for logs and the audit). */
  messageId: string | null = null;
  readonly outcome: Promise<ApprovalOutcome>;
  resolve!: (outcome: ApprovalOutcome) => void;

  constructor(
    readonly registry: PendingPushes,
    /** The id all callback tokens of this push share. */
    readonly id: string,
    /** Number matching: the number the login prompt shows; undefined without. */
    readonly correct: number | undefined,
    /** "VPN login for alice from 198.51.100.7", for the page. */
    readonly summary: string,
    readonly signal: AbortSignal,
  ) {
    this.outcome = new Promise<ApprovalOutcome>((resolve) => {
      this.resolve = resolve;
    });
  }

  /** The login gave up waiting (its signal aborted). */
  handleEvent(): void {
    this.registry.settle(this.id, { result: 'timeout', detail: 'the login stopped waiting' });
  }
}

function expire(entry: PendingPush): void {
  entry.registry.settle(entry.id, { result: 'timeout', detail: 'no answer before the push expired' });
}

export class PendingPushes {
  private readonly entries = new Map<string, PendingPush>();

  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.entries.size;
  }

  add(id: string, correct: number | undefined, summary: string, expiresAt: number, signal: AbortSignal): PendingPush {
    const entry = new PendingPush(this, id, correct, summary, signal);
    this.entries.set(id, entry);
    entry.timer = setTimeout(expire, Math.max(0, expiresAt - this.now()), entry);
    signal.addEventListener('abort', entry, { once: true });
    return entry;
  }

  get(id: string): PendingPush | undefined {
    return this.entries.get(id);
  }

  /** Settles the push once; false when it was not pending (answered, expired, forgotten). */
  settle(id: string, outcome: ApprovalOutcome): boolean {
    const entry = this.remove(id);
    if (entry === undefined) return false;
    entry.resolve(outcome);
    return true;
  }

  /** Drops a push whose publish failed: its outcome was never handed out. */
  forget(id: string): void {
    this.remove(id);
  }

  settleAll(outcome: ApprovalOutcome): void {
    for (const id of [...this.entries.keys()]) this.settle(id, outcome);
  }

  private remove(id: string): PendingPush | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    clearTimeout(entry.timer);
    entry.signal.removeEventListener('abort', entry);
    return entry;
  }
}
