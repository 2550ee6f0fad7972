import { performance } from 'node:perf_hooks';
import { GatewayError, errorCode, errorMessage } from '../errors.js';
import { LINES_PER_MINUTE, RateLimitedLog } from '../rate-limited-log.js';
import type { AuthAttempt } from './attempt.js';
import type { FlowContext, FlowDeps, Step } from './context.js';
import { Decision } from './decision.js';
import { FirstFactorChallenges } from './first-factor-challenges.js';
import { accountStatus } from './steps/account-status.js';
import { clientPolicy } from './steps/client-policy.js';
import { findUser } from './steps/find-user.js';
import { firstFactor } from './steps/first-factor.js';
import { exemptions } from './steps/exemptions.js';
import { applyLockout, applyRemember, auditEntry } from './steps/outcome.js';
import { secondFactor } from './steps/second-factor.js';

/** The steps in order. A feature is a step, never an `if (protocol === …)`. */
const STEPS: readonly Step[] = [clientPolicy, findUser, accountStatus, firstFactor, exemptions, secondFactor];

export class UnknownClientError extends GatewayError {
  readonly code = 'GW_ERR_UNKNOWN_CLIENT';
}

/**
 * The one place that decides. Front ends translate a request into an AuthAttempt and the
 * Decision back into their protocol; everything between is here.
 *
 * `run` resolves only after the attempt's audit record is committed: no answer leaves the
 * gateway unrecorded. If the audit write fails, `run` rejects and the front end sends nothing
 * (the client will retry).
 */
export class AuthFlow {
  private readonly firstFactorChallenges = new FirstFactorChallenges();
  /**
   * Fault lines, at most LINES_PER_MINUTE per error code: in an outage (directory down,
   * disk full) every attempt fails the same way, and each already has its audit record.
   */
  private readonly faultLog: RateLimitedLog;

  constructor(private readonly deps: FlowDeps) {
    this.faultLog = new RateLimitedLog(deps.log, LINES_PER_MINUTE, () => deps.now?.() ?? Date.now());
  }

  async run(attempt: AuthAttempt): Promise<Decision> {
    const started = performance.now();
    const config = this.deps.config();
    const client = config.clients.find((c) => c.name === attempt.client.name);
    if (!client) throw new UnknownClientError(`no client named '${attempt.client.name}'`);
    const policy = config.policies[client.policy];
    if (!policy) throw new UnknownClientError(`client '${client.name}' names no known policy`);
    const now = this.deps.now?.() ?? Date.now();
    const ctx: FlowContext = {
      attempt,
      deps: this.deps,
      config,
      client,
      policy,
      now,
      firstFactor: null,
      firstFactorPassed: false,
      firstFactorChallenges: this.firstFactorChallenges,
      method: null,
      timings: {},
    };

    let decision: Decision | undefined;
    try {
      for (const step of STEPS) {
        decision = await step(ctx);
        if (decision) break;
      }
      decision ??= Decision.reject('internal_error');
      await applyLockout(ctx, decision);
      await applyRemember(ctx, decision);
    } catch (err) {
      decision = this.fault(ctx, err);
    }
    // Whatever accepts (the second factor, or the fail mode after it broke) carries what the
    // first factor's target owes the NAS: its reply attributes and MS-CHAPv2 session keys.
    if (decision.kind === 'accept' && (ctx.replyAttributes !== undefined || ctx.mppeKeys !== undefined)) {
      decision = {
        ...decision,
        ...(ctx.replyAttributes === undefined || decision.attributes !== undefined ? {} : { attributes: ctx.replyAttributes }),
        ...(ctx.mppeKeys === undefined || decision.mppeKeys !== undefined ? {} : { mppeKeys: ctx.mppeKeys }),
      };
    }

    ctx.timings.total = performance.now() - started;
    const record = await this.deps.store.appendAudit(auditEntry(ctx, decision, this.deps.now?.() ?? Date.now()));
    this.deps.log.info(
      {
        attemptId: attempt.id,
        auditSeq: record.seq,
        user: attempt.username,
        client: client.name,
        clientIp: attempt.client.ip,
        result: decision.kind,
        reason: decision.reason,
        method: ctx.method,
        ms: Math.round(ctx.timings.total * 100) / 100,
      },
      'attempt',
    );
    return decision;
  }

  /**
   * Faults become the policy's fail mode, and only ever for the second factor: `safe` may skip
   * a second factor whose service is down, never a first factor that was not checked.
   */
  private fault(ctx: FlowContext, err: unknown): Decision {
    const raw = errorCode(err);
    this.faultLog.error(raw, { attemptId: ctx.attempt.id, errorCode: raw, err: errorMessage(err) }, 'fault during attempt');
    // A cloud provider down is the same kind of fault as a directory or upstream down.
    const code = raw === 'GW_ERR_PROVIDER_UNAVAILABLE' ? 'GW_ERR_UPSTREAM_UNAVAILABLE' : raw;
    if (ctx.firstFactorPassed && ctx.policy.fail_mode === 'safe' && code === 'GW_ERR_UPSTREAM_UNAVAILABLE') {
      return Decision.accept('accepted_fail_open');
    }
    if (code !== 'GW_ERR_UPSTREAM_UNAVAILABLE') return Decision.reject('internal_error');
    return Decision.reject(ctx.firstFactorPassed ? 'provider_unavailable' : 'first_factor_unavailable');
  }
}
