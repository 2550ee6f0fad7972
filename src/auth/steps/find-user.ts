import { burnPasswordCheck } from '../../crypto/password-hash.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import { nameCandidates } from '../names.js';

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
    if (!ctx.user || ctx.user.id !== ctx.challenge.userId) return Decision.reject('challenge_invalid');
    return undefined;
  }
  if (ctx.user) return undefined;
  if (ctx.policy.unknown_users === 'pass' && ctx.policy.first_factor === 'none') return Decision.accept('accepted_unknown_user');
  // Same cost as checking a real password: the answer's timing does not reveal who exists.
  if (ctx.policy.first_factor === 'local') await burnPasswordCheck(ctx.input?.password ?? '');
  return Decision.reject('user_unknown');
}
