import { Decision } from '../decision.js';
import type { FlowContext } from '../context.js';
import { splitInlineFactor } from '../inline-factor.js';
import { openState } from '../sealed-state.js';
import { msChapV2Unsupported } from './first-factor.js';

/**
 * Reads what the client sent in the light of its policy: either a fresh login (password with a
 * possible inline factor, or an MS-CHAPv2 proof the policy's first factor must be able to check)
 * or the answer to a challenge (a sealed State to open and check).
 */
export function clientPolicy(ctx: FlowContext): Decision | undefined {
  const { attempt } = ctx;
  if (attempt.state !== undefined) {
    const state = openState(ctx.deps.keys, attempt.state);
    if (!state || state.clientName !== ctx.client.name) return Decision.reject('challenge_invalid');
    if (state.expiresAt <= ctx.now) return Decision.reject('challenge_expired');
    ctx.challenge = state;
    ctx.firstFactor = state.firstFactor;
    ctx.firstFactorPassed = state.stage === 'second';
    return undefined;
  }
  // Before the user lookup: the answer is the same whether the user exists or not.
  const unsupported = msChapV2Unsupported(ctx);
  if (unsupported !== undefined) return unsupported;
  const password = attempt.password ?? '';
  ctx.input = splitInlineFactor(password, ctx.client.inline_delimiter);
  if (ctx.policy.first_factor === 'none' && ctx.input.code === undefined && ctx.input.keyword === undefined) {
    // The NAS checked the password already; what it forwards may be just a code or a keyword.
    const alone = splitInlineFactor(`${ctx.client.inline_delimiter}${password}`, ctx.client.inline_delimiter);
    if (alone.password === '') ctx.input = alone;
  }
  return undefined;
}
