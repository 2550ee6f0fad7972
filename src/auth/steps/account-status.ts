import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';

/** Disabled, blocked and locked-out users are refused before any factor is checked. */
export async function accountStatus(ctx: FlowContext): Promise<Decision | undefined> {
  const user = ctx.user;
  if (!user) return undefined;
  // Disabled by the directory sync (the account is disabled there): the directory's reason.
  if (!user.enabled) return Decision.reject(user.source === 'local' ? 'user_disabled' : 'account_disabled');
  if (user.blocked) return Decision.reject('user_blocked');
  if (ctx.config.lockout.max_failures > 0) {
    const lock = await ctx.deps.store.getLockout(user.id, ctx.now);
    ctx.priorFailures = lock.failures;
    if (lock.lockedUntil !== null && lock.lockedUntil > ctx.now) return Decision.reject('locked_out');
  }
  return undefined;
}
