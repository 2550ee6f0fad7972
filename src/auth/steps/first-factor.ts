import { performance } from 'node:perf_hooks';
import { verifyPassword, burnPasswordCheck } from '../../crypto/password-hash.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import type { PasswordOutcome } from '../first-factor-target.js';
import { startInlineCodeMatch } from '../inline-code-match.js';
import { newNonce, sealState } from '../sealed-state.js';
import { InternalError } from '../../errors.js';

/** Checks the password against the policy's first factor. Skipped when answering a challenge. */
export async function firstFactor(ctx: FlowContext): Promise<Decision | undefined> {
  if (ctx.challenge?.stage === 'second') return undefined;
  const kind = ctx.challenge?.firstFactor ?? ctx.policy.first_factor;
  ctx.firstFactor = kind;
  const started = performance.now();
  try {
    if (kind === 'none') {
      ctx.firstFactorPassed = true;
      return undefined;
    }
    if (kind === 'local') {
      const password = ctx.input?.password ?? '';
      const hash = ctx.user?.passwordHash ?? null;
      // An empty password never succeeds, whatever is stored.
      if (password === '' || hash === null) {
        await burnPasswordCheck(password);
        return Decision.reject('bad_password');
      }
      if (!(await verifyPassword(password, hash))) return Decision.reject('bad_password');
      ctx.firstFactorPassed = true;
      return undefined;
    }
    const target = ctx.deps.firstFactors?.get(kind);
    if (target === undefined) throw new InternalError(`first factor '${kind}' has no target in the running configuration`);
    let continuation: Buffer | undefined;
    if (ctx.challenge) {
      // Answering the target's own challenge: once, and only on the node that holds its continuation.
      const fresh = await ctx.deps.store.claimOnce('radius-state', ctx.challenge.nonce, ctx.challenge.expiresAt, ctx.now);
      if (!fresh) return Decision.reject('challenge_replayed');
      continuation = ctx.firstFactorChallenges.take(ctx.challenge.nonce)?.continuation;
      if (continuation === undefined) return Decision.reject('challenge_expired');
    }
    // An MS-CHAPv2 login carries a proof of the password (checked by targets that hold NT hashes);
    // the answer to a challenge is always typed text.
    const proof = ctx.challenge ? undefined : ctx.attempt.msChapV2;
    let outcome: PasswordOutcome;
    if (proof !== undefined && target.checkMsChapV2 !== undefined) {
      outcome = await target.checkMsChapV2({ attempt: ctx.attempt, login: ctx.attempt.username, proof, user: ctx.user });
    } else {
      const password = ctx.challenge ? (ctx.attempt.response ?? '') : (ctx.input?.password ?? '');
      // An empty password never reaches a directory: an LDAP bind with one is an unauthenticated
      // bind (RFC 4513 §5.1.2) that many servers let succeed.
      if (password === '' || /^\0*$/.test(password)) return Decision.reject('bad_password');
      const checking = target.check({
        attempt: ctx.attempt,
        login: ctx.attempt.username,
        password,
        user: ctx.user,
        ...(continuation === undefined ? {} : { continuation }),
      });
      startInlineCodeMatch(ctx);
      outcome = await checking;
    }
    if (outcome.kind === 'reject') {
      ctx.deps.log.info({ attemptId: ctx.attempt.id, firstFactor: kind, reason: outcome.reason, detail: outcome.detail }, 'first factor rejected');
      return Decision.reject(outcome.reason, undefined, outcome.replyAttributes);
    }
    if (outcome.kind === 'challenge') {
      if (!ctx.client.challenge) return Decision.reject('code_missing', 'the first factor asked a question this client cannot show');
      const ttlMs = ctx.config.challenge.ttl_seconds * 1000;
      const nonce = newNonce();
      const state = sealState(ctx.deps.keys, {
        nonce,
        attemptId: ctx.attempt.id,
        userId: challengeUserId(ctx),
        clientName: ctx.client.name,
        firstFactor: kind,
        expiresAt: ctx.now + ttlMs,
        stage: 'first',
        step: 'code',
      });
      ctx.firstFactorChallenges.put(nonce, { continuation: outcome.continuation }, ttlMs);
      return Decision.challenge(state, outcome.prompt, 'challenge_first_factor');
    }
    ctx.firstFactorPassed = true;
    if (outcome.replyAttributes !== undefined && outcome.replyAttributes.length > 0) ctx.replyAttributes = outcome.replyAttributes;
    if (outcome.mppeKeys !== undefined) ctx.mppeKeys = outcome.mppeKeys;
    return undefined;
  } finally {
    ctx.timings.firstFactor = performance.now() - started;
  }
}

/** What the NAS is told when its MS-CHAPv2 login meets a first factor that cannot check one. */
export const MS_CHAP_V2_UNSUPPORTED_MESSAGE = 'MS-CHAPv2 cannot be checked for this login: use PAP';

/**
 * An MS-CHAPv2 login proves the password without sending it: only a target holding the NT
 * hashes can check it (FirstFactorTarget.checkMsChapV2: an upstream RADIUS server). `local` and
 * `ldap:` cannot, and rejecting says why rather than `bad_password`. `none` passes: the NAS
 * checked the password itself. A fresh login only: a challenge's answer is typed text.
 */
export function msChapV2Unsupported(ctx: FlowContext): Decision | undefined {
  if (ctx.attempt.msChapV2 === undefined || ctx.challenge !== undefined) return undefined;
  const kind = ctx.policy.first_factor;
  if (kind === 'none') return undefined;
  if (kind !== 'local') {
    const target = ctx.deps.firstFactors?.get(kind);
    // A target missing from the running configuration is a fault the first-factor step reports.
    if (target === undefined || target.checkMsChapV2 !== undefined) return undefined;
  }
  ctx.firstFactor = kind;
  return Decision.reject('first_factor_unsupported', MS_CHAP_V2_UNSUPPORTED_MESSAGE);
}

/** Whom a challenge belongs to: the user's id, or for a user the gateway does not know, the name sent. */
export function challengeUserId(ctx: Pick<FlowContext, 'user' | 'attempt'>): string {
  return ctx.user?.id ?? `?${ctx.attempt.username}`;
}
