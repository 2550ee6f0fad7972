import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import { rememberKey } from './outcome.js';

/**
 * After the first factor, before the second: a recent success of the same user from the same
 * address (policy remember_seconds), or a one-time bypass an admin granted, replaces the second
 * factor. Never the first: a bypass is no password. An answer to the gateway's own challenge
 * goes on to be checked.
 */
export async function exemptions(ctx: FlowContext): Promise<Decision | undefined> {
  const user = ctx.user;
  if (!user || !ctx.firstFactorPassed || ctx.challenge?.stage === 'second') return undefined;
  const { store } = ctx.deps;
  if (ctx.policy.remember_seconds > 0 && (await store.isLoginRemembered(user.id, rememberKey(ctx), ctx.now))) return Decision.accept('accepted_remembered');
  // A read first: the write that takes a use only when there is one (most logins have none).
  if ((await store.listBypasses(user.id, ctx.now)).length === 0) return undefined;
  const bypass = await store.useBypass(user.id, ctx.now);
  if (bypass !== undefined) {
    ctx.deps.log.info({ attemptId: ctx.attempt.id, userId: user.id, bypass: bypass.id, usesLeft: bypass.usesLeft }, 'second factor bypassed');
    ctx.method = 'bypass';
    return Decision.accept('accepted_bypass');
  }
  return undefined;
}
