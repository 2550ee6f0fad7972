import { performance } from 'node:perf_hooks';
import { checkOathCode } from '../../verify/oath.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import { newNonce, sealState } from '../sealed-state.js';

/** What a client that cannot show a challenge is told when an MS-CHAPv2 login needs a code. */
export const MS_CHAP_V2_NO_CODE_MESSAGE = 'A one-time code cannot be used with MS-CHAPv2 on this VPN: use PAP with password,code';

/**
 * Runs the second factor: an inline code, the answer to a challenge, or a new challenge when the
 * client can show one. Only methods the policy allows are used. An MS-CHAPv2 login has no room
 * for an inline code: the code comes through the challenge, or not at all.
 */
export async function secondFactor(ctx: FlowContext): Promise<Decision | undefined> {
  const user = ctx.user;
  if (!user) return ctx.unknownUserPass && ctx.firstFactorPassed ? Decision.accept('accepted_unknown_user') : Decision.reject('user_unknown');
  const started = performance.now();
  try {
    const { store, keys } = ctx.deps;
    const allowed = new Set<string>(ctx.policy.methods);
    const tokens = (await store.listTokens(user.id)).filter((t) => t.enabled && allowed.has(t.kind));
    ctx.tokens = tokens;
    const answering = ctx.challenge?.stage === 'second' ? ctx.challenge : undefined;
    if (tokens.length === 0) {
      if (answering) return Decision.reject('not_enrolled');
      return ctx.policy.unenrolled === 'allow' ? Decision.accept('accepted_unenrolled') : Decision.reject('not_enrolled');
    }

    if (answering) {
      // Claimed before the code is checked: one answer per challenge, right or wrong.
      const fresh = await store.claimOnce('radius-state', answering.nonce, answering.expiresAt, ctx.now);
      if (!fresh) return Decision.reject('challenge_replayed');
      const carried = ctx.firstFactorChallenges.take(answering.nonce);
      if (carried?.replyAttributes !== undefined) ctx.replyAttributes = carried.replyAttributes;
      if (carried?.mppeKeys !== undefined) ctx.mppeKeys = carried.mppeKeys;
      return await checkCode(ctx, ctx.attempt.response ?? '');
    }

    const input = ctx.input;
    if (input?.keyword !== undefined) return Decision.reject('method_not_allowed');
    if (input?.code !== undefined) return await checkCode(ctx, input.code);

    if (!ctx.client.challenge) return Decision.reject('code_missing', ctx.attempt.msChapV2 === undefined ? undefined : MS_CHAP_V2_NO_CODE_MESSAGE);
    const ttlMs = ctx.config.challenge.ttl_seconds * 1000;
    const nonce = newNonce();
    // The first factor's reply attributes and MPPE keys wait for the accept that answers this
    // challenge (which encrypts the keys for its own request).
    if (ctx.replyAttributes !== undefined || ctx.mppeKeys !== undefined) {
      ctx.firstFactorChallenges.put(
        nonce,
        { ...(ctx.replyAttributes === undefined ? {} : { replyAttributes: ctx.replyAttributes }), ...(ctx.mppeKeys === undefined ? {} : { mppeKeys: ctx.mppeKeys }) },
        ttlMs,
      );
    }
    const state = sealState(keys, {
      nonce,
      attemptId: ctx.attempt.id,
      userId: user.id,
      clientName: ctx.client.name,
      firstFactor: ctx.firstFactor ?? 'none',
      expiresAt: ctx.now + ttlMs,
      stage: 'second',
    });
    ctx.method = tokens[0]?.kind ?? null;
    return Decision.challenge(state, ctx.config.challenge.prompt);
  } finally {
    ctx.timings.secondFactor = performance.now() - started;
  }
}

async function checkCode(ctx: FlowContext, code: string): Promise<Decision> {
  const tokens = ctx.tokens ?? [];
  ctx.method = tokens[0]?.kind ?? 'totp';
  const result = await checkOathCode(ctx.deps.store, ctx.deps.keys, tokens, code.trim(), ctx.now, {
    totpWindow: ctx.config.totp.window,
    hotpLookAhead: ctx.config.hotp.look_ahead,
  });
  if (!result.ok) return Decision.reject(result.reason);
  ctx.method = result.method;
  return Decision.accept('accepted');
}
