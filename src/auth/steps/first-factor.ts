import { performance } from 'node:perf_hooks';
import { verifyPassword, burnPasswordCheck } from '../../crypto/password-hash.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';

/** Checks the password against the policy's first factor. Skipped when answering a challenge. */
export async function firstFactor(ctx: FlowContext): Promise<Decision | undefined> {
  if (ctx.challenge) return undefined;
  const kind = ctx.policy.first_factor;
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
    // Directory and upstream-RADIUS first factors are refused by the config schema until they exist.
    return Decision.reject('internal_error');
  } finally {
    ctx.timings.firstFactor = performance.now() - started;
  }
}
