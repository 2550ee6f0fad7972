import { setTimeout as sleep } from 'node:timers/promises';
import { ProviderRejectedError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DuoApi } from './duo-api.js';
import { authResultResponse, describe, readResponse, type AuthResult } from './duo-responses.js';
import type { ApprovalOutcome } from './provider.js';

/**
 * Follows one asynchronous Duo authentication (a push or a call started with `async=1`) to its
 * end through `/auth/v2/auth_status`.
 *
 * Duo documents auth_status as a long poll: it answers at once when the transaction has news
 * for us and otherwise holds the request until the status changes. So the loop simply asks
 * again after each answer; only when an answer repeats the status we already had (a server
 * that does not hold) does it wait a little first, so a quick-returning server is not hammered.
 *
 * A failed poll (Duo unreachable, 5xx) is retried with backoff until expiresAt: the push is on
 * the user's phone already, and an approval given during a short outage is still there to read
 * afterwards. A refusal (4xx) will not change by asking again, so it ends the wait at once.
 * Outcomes: allow → approved; deny → denied, or fraud / timeout when Duo's status says so;
 * expiresAt reached, the login's signal aborted, or the provider closed → timeout.
 */

export interface TransactionWatchOptions {
  readonly provider: string;
  /** The client for auth_status (long-poll timeouts, no breaker: see duo.ts). */
  readonly api: DuoApi;
  readonly txid: string;
  readonly expiresAt: number;
  readonly signal: AbortSignal;
  readonly now: () => number;
  readonly log: Logger;
}

export interface TransactionWatch {
  /** Settles exactly once, never rejects. */
  readonly outcome: Promise<ApprovalOutcome>;
  /** Stops polling and settles `timeout` with this detail (no effect once settled). */
  cancel(detail: string): void;
}

/** An answer that repeats the status we had comes back no sooner than this after the question. */
const MIN_REPEAT_SPACING_MS = 250;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 5000;
/** Why an in-flight poll is abandoned; one shared value, so settling does not build an AbortError each time. */
const SETTLED = new Error('approval settled');

export function watchTransaction(opts: TransactionWatchOptions): TransactionWatch {
  const stop = new AbortController();
  let settled = false;
  let lastFailure: string | undefined;
  let resolveOutcome: (outcome: ApprovalOutcome) => void = () => undefined;
  const outcome = new Promise<ApprovalOutcome>((resolve) => {
    resolveOutcome = resolve;
  });

  const settle = (result: ApprovalOutcome): void => {
    if (settled) return;
    settled = true;
    clearTimeout(expiry);
    opts.signal.removeEventListener('abort', onAbort);
    stop.abort(SETTLED);
    resolveOutcome(result);
  };
  const timeout = (why: string): void => {
    settle({ result: 'timeout', detail: lastFailure === undefined ? why : `${why}; last auth_status failure: ${lastFailure}` });
  };
  const onAbort = (): void => timeout('login stopped waiting');
  const expiry = setTimeout(() => timeout('no answer from Duo before the approval expired'), Math.max(0, opts.expiresAt - opts.now()));
  opts.signal.addEventListener('abort', onAbort, { once: true });
  if (opts.signal.aborted) onAbort();

  const poll = async (): Promise<void> => {
    let failures = 0;
    let lastStatus: string | undefined;
    while (!settled) {
      const askedAt = Date.now();
      let answer: AuthResult;
      try {
        const response = await opts.api.call('GET', '/auth/v2/auth_status', { txid: opts.txid }, { idempotent: true, signal: stop.signal });
        answer = readResponse(authResultResponse, response, 'auth_status', opts.provider);
      } catch (err) {
        if (settled) return;
        if (err instanceof ProviderRejectedError) {
          settle({ result: 'timeout', detail: `Duo refused auth_status: ${err.message}` });
          return;
        }
        failures++;
        lastFailure = errorMessage(err);
        opts.log.debug({ provider: opts.provider, txid: opts.txid, failures, error: lastFailure }, 'duo auth_status failed; polling on');
        await pause(Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1)) * (0.5 + Math.random() / 2), stop.signal);
        continue;
      }
      failures = 0;
      const final = toOutcome(answer);
      if (final !== undefined) {
        settle(final);
        return;
      }
      const status = answer.status ?? answer.result;
      if (status === lastStatus) await pause(MIN_REPEAT_SPACING_MS - (Date.now() - askedAt), stop.signal);
      lastStatus = status;
    }
  };
  void poll().catch((err: unknown) => settle({ result: 'timeout', detail: `auth_status polling failed: ${errorMessage(err)}` }));

  return { outcome, cancel: (detail) => settle({ result: 'timeout', detail }) };
}

/** A final answer's outcome; undefined while Duo still waits for the user. */
export function toOutcome(answer: AuthResult): ApprovalOutcome | undefined {
  const detail = describe(answer);
  switch (answer.result) {
    case 'allow':
      return { result: 'approved', detail };
    case 'deny':
      if (answer.status === 'fraud') return { result: 'fraud', detail };
      if (answer.status === 'timeout') return { result: 'timeout', detail };
      return { result: 'denied', detail };
    default:
      // `waiting`, and any result Duo may add later: keep asking until expiresAt.
      return undefined;
  }
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}
