import { burnPasswordCheck } from '../../crypto/password-hash.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import { nameCandidates } from '../names.js';
import { challengeUserId } from './first-factor.js';

/**
 * Finds the user by every accepted name form. An answer to a challenge must come from the same
 * user the challenge was issued to.
 */
export async function findUser(ctx: FlowContext): Promise<Decision | undefined> {
  const { store } = ctx.deps;
  for (const name of nameCandidates(ctx.attempt.username)) {
    const user = await store.findUser(name);
    if (user) {
      ctx.user = user;
      break;
    }
  }
  if (ctx.challenge) {
    // A first-factor challenge may have been issued to a user the gateway does not know (by the name sent).
    if (challengeUserId(ctx) !== ctx.challenge.userId || (!ctx.user && ctx.challenge.stage === 'second')) return Decision.reject('challenge_invalid');
    if (!ctx.user) ctx.unknownUserPass = true;
    return undefined;
  }
  if (ctx.user) return undefined;
  if (ctx.policy.unknown_users === 'pass') {
    if (ctx.policy.first_factor === 'none') return Decision.accept('accepted_unknown_user');
    // The first factor is still checked; a directory or upstream may know the user when the gateway does not.
    if (ctx.policy.first_factor !== 'local') {
      ctx.unknownUserPass = true;
      return undefined;
    }
  }
  // Same cost as checking a real password: the answer's timing does not reveal who exists.
  if (ctx.policy.first_factor === 'local') await burnPasswordCheck(ctx.input?.password ?? '');
  return Decision.reject('user_unknown');
}
