import { performance } from 'node:perf_hooks';
import { checkOathCode } from '../../verify/oath.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import { newNonce, sealState } from '../sealed-state.js';

/**
 * Runs the second factor: an inline code, the answer to a challenge, or a new challenge when the
 * client can show one. Only methods the policy allows are used.
 */
export async function secondFactor(ctx: FlowContext): Promise<Decision | undefined> {
  const user = ctx.user;
  if (!user) return Decision.reject('user_unknown');
  const started = performance.now();
  try {
    const { store, keys } = ctx.deps;
    const allowed = new Set<string>(ctx.policy.methods);
    const tokens = (await store.listTokens(user.id)).filter((t) => t.enabled && allowed.has(t.kind));
    ctx.tokens = tokens;
    if (tokens.length === 0) {
      if (ctx.challenge) return Decision.reject('not_enrolled');
      return ctx.policy.unenrolled === 'allow' ? Decision.accept('accepted_unenrolled') : Decision.reject('not_enrolled');
    }

    if (ctx.challenge) {
      // Claimed before the code is checked: one answer per challenge, right or wrong.
      const fresh = await store.claimOnce('radius-state', ctx.challenge.nonce, ctx.challenge.expiresAt, ctx.now);
      if (!fresh) return Decision.reject('challenge_replayed');
      return await checkCode(ctx, ctx.attempt.response ?? '');
    }

    const input = ctx.input;
    if (input?.keyword !== undefined) return Decision.reject('method_not_allowed');
    if (input?.code !== undefined) return await checkCode(ctx, input.code);

    if (!ctx.client.challenge) return Decision.reject('code_missing');
    const ttlMs = ctx.config.challenge.ttl_seconds * 1000;
    const state = sealState(keys, {
      nonce: newNonce(),
      attemptId: ctx.attempt.id,
      userId: user.id,
      clientName: ctx.client.name,
      firstFactor: ctx.firstFactor ?? 'none',
      expiresAt: ctx.now + ttlMs,
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
