import { performance } from 'node:perf_hooks';
import { ProviderRejectedError, ProviderUnavailableError } from '../../errors.js';
import { checkOathCode, claimOathMatch, CODE_PATTERN, type OathMatch } from '../../verify/oath.js';
import { checkSentCode } from '../../verify/sent-codes.js';
import type { FlowContext } from '../context.js';
import { Decision } from '../decision.js';
import { oathSettings, usableTokens } from '../inline-code-match.js';
import { keywordMethod, menuChoice, menuPrompt, usableMethods, type UsableMethod } from '../method-choice.js';
import { awaitApproval, codePrompt, loginOf, numberMatch, recipientOf, sendCode, startApproval } from '../out-of-band.js';
import { newNonce, sealState, type ChallengeStep } from '../sealed-state.js';

/** What a client that cannot show a challenge is told when an MS-CHAPv2 login needs a code. */
export const MS_CHAP_V2_NO_CODE_MESSAGE = 'A one-time code cannot be used with MS-CHAPv2 on this VPN: use PAP with password,code';

/**
 * Runs the second factor: an inline code or method keyword, the answer to one of the gateway's
 * challenges (a code, a menu pick, the wait for a number-matched push), or the user's default
 * method. Only methods the policy allows and the user has set up are used.
 */
export async function secondFactor(ctx: FlowContext): Promise<Decision | undefined> {
  const user = ctx.user;
  if (!user) return ctx.unknownUserPass && ctx.firstFactorPassed ? Decision.accept('accepted_unknown_user') : Decision.reject('user_unknown');
  const started = performance.now();
  try {
    const allowed = new Set<string>(ctx.policy.methods);
    const early = ctx.inlineCodeMatch === undefined ? undefined : await ctx.inlineCodeMatch;
    const tokens = early?.tokens ?? (await usableTokens(ctx, user));
    ctx.tokens = tokens;
    const usable = await usableMethods(ctx, tokens);
    const answering = ctx.challenge?.stage === 'second' ? ctx.challenge : undefined;
    if (usable.length === 0) {
      if (answering) return Decision.reject('not_enrolled');
      return ctx.policy.unenrolled === 'allow' ? Decision.accept('accepted_unenrolled') : Decision.reject('not_enrolled');
    }

    if (answering) {
      // Claimed first: one answer per challenge, right or wrong.
      const fresh = await ctx.deps.store.claimOnce('radius-state', answering.nonce, answering.expiresAt, ctx.now);
      if (!fresh) return Decision.reject('challenge_replayed');
      const carried = ctx.firstFactorChallenges.take(answering.nonce);
      if (carried?.replyAttributes !== undefined) ctx.replyAttributes = carried.replyAttributes;
      if (carried?.mppeKeys !== undefined) ctx.mppeKeys = carried.mppeKeys;
      const response = (ctx.attempt.response ?? '').trim();
      if (answering.step === 'push') {
        const pending = ctx.deps.verifier?.approvals.get(answering.nonce);
        // Held by the node that sent the challenge; after a restart (or on another node) it is gone.
        if (pending === undefined) return Decision.reject('challenge_expired', 'The sign-in request expired: log in again');
        return await awaitApproval(ctx, pending);
      }
      if (answering.step === 'menu' && !CODE_PATTERN.test(response)) {
        const picked = menuChoice(usable, response);
        if (picked === undefined) return Decision.reject('method_not_allowed');
        return await runMethod(ctx, picked);
      }
      return await checkCode(ctx, response);
    }

    const input = ctx.input;
    if (input?.code !== undefined) return await checkCode(ctx, input.code, early?.matches);
    if (input?.keyword !== undefined) {
      const method = keywordMethod(input.keyword);
      if (method === undefined || !allowed.has(method)) return Decision.reject('method_not_allowed');
      const picked = usable.find((m) => m.method === method);
      if (picked === undefined) return Decision.reject('not_enrolled');
      return await runMethod(ctx, picked);
    }
    const preferred = usable.find((m) => m.method === user.defaultMethod);
    if (preferred === undefined && ctx.client.challenge && ctx.policy.method_menu && usable.length > 1 && !onlyCodeMethods(usable)) {
      return challenge(ctx, 'menu', menuPrompt(usable), 'challenge_method');
    }
    return await runMethod(ctx, preferred ?? usable[0]!);
  } finally {
    ctx.timings.secondFactor = performance.now() - started;
  }
}

function onlyCodeMethods(usable: readonly UsableMethod[]): boolean {
  return usable.every((m) => m.method === 'totp' || m.method === 'hotp');
}

async function runMethod(ctx: FlowContext, picked: UsableMethod): Promise<Decision> {
  switch (picked.method) {
    case 'totp':
    case 'hotp':
      ctx.method = picked.method;
      return askForCode(ctx, ctx.config.challenge.prompt);
    case 'email':
    case 'voice':
      return codeMethod(ctx, picked);
    case 'sms':
      return ctx.config.methods.sms?.mode === 'two_way' ? approval(ctx, picked) : codeMethod(ctx, picked);
    case 'phone':
      return approval(ctx, picked);
    case 'push': {
      // Number matching needs a prompt to show the number on: a client that shows challenges.
      const matching = ctx.config.methods.push?.number_matching === true && ctx.client.challenge;
      if (!matching) return approval(ctx, picked);
      const nonce = newNonce();
      const numbers = numberMatch();
      const started = await startApproval(ctx, picked, { id: nonce, numberMatch: numbers });
      if (!('outcome' in started)) return started;
      ctx.method = 'push';
      ctx.provider = started.provider;
      ctx.providerMessageId = started.messageId;
      if (started.deviceId !== null) ctx.deviceToken = started.deviceId;
      // A provider without number matching (Duo) shows its own approve button: nothing to pick.
      const showsNumbers = ctx.deps.verifier?.get(started.provider)?.numberMatching === true;
      const prompt = showsNumbers ? `Pick ${numbers.correct} in the app on your phone, then press OK here` : 'Approve the request on your phone, then press OK here';
      return challenge(ctx, 'push', prompt, 'challenge_push', nonce);
    }
  }
}

async function codeMethod(ctx: FlowContext, picked: UsableMethod): Promise<Decision> {
  const refused = await sendCode(ctx, picked);
  if (refused !== undefined) return refused;
  if (!ctx.client.challenge) return Decision.reject('code_sent', `A code was sent: log in again with your password${ctx.client.inline_delimiter}code`);
  return askForCode(ctx, codePrompt(picked));
}

async function approval(ctx: FlowContext, picked: UsableMethod): Promise<Decision> {
  const started = await startApproval(ctx, picked, { id: newNonce() });
  if (!('outcome' in started)) return started;
  return awaitApproval(ctx, started);
}

function askForCode(ctx: FlowContext, prompt: string): Decision {
  if (!ctx.client.challenge) return Decision.reject('code_missing', ctx.attempt.msChapV2 === undefined ? undefined : MS_CHAP_V2_NO_CODE_MESSAGE);
  return challenge(ctx, 'code', prompt, 'challenge_code');
}

function challenge(ctx: FlowContext, step: ChallengeStep, prompt: string, reason: 'challenge_code' | 'challenge_method' | 'challenge_push', nonce = newNonce()): Decision {
  const ttlMs = ctx.config.challenge.ttl_seconds * 1000;
  // The first factor's reply attributes and MPPE keys wait for the accept that answers this
  // challenge (which encrypts the keys for its own request).
  if (ctx.replyAttributes !== undefined || ctx.mppeKeys !== undefined) {
    ctx.firstFactorChallenges.put(
      nonce,
      { ...(ctx.replyAttributes === undefined ? {} : { replyAttributes: ctx.replyAttributes }), ...(ctx.mppeKeys === undefined ? {} : { mppeKeys: ctx.mppeKeys }) },
      ttlMs,
    );
  }
  const state = sealState(ctx.deps.keys, {
    nonce,
    attemptId: ctx.attempt.id,
    userId: ctx.user!.id,
    clientName: ctx.client.name,
    firstFactor: ctx.firstFactor ?? 'none',
    expiresAt: ctx.now + ttlMs,
    stage: 'second',
    step,
  });
  return Decision.challenge(state, prompt, reason);
}

/**
 * A typed code: the user's OATH tokens first (local, no cloud), then the codes the gateway sent,
 * then a provider's own (Duo SMS passcodes). `matched`: the code already matched against the
 * tokens (startInlineCodeMatch), to be claimed only.
 */
async function checkCode(ctx: FlowContext, code: string, matched?: readonly OathMatch[]): Promise<Decision> {
  const tokens = ctx.tokens ?? [];
  const user = ctx.user!;
  let replayed = false;
  if (tokens.length > 0) {
    ctx.method = tokens[0]?.kind ?? 'totp';
    const result =
      matched !== undefined
        ? await claimOathMatch(ctx.deps.store, matched, ctx.now)
        : await checkOathCode(ctx.deps.store, ctx.deps.keys, tokens, code, ctx.now, oathSettings(ctx));
    if (result.ok) {
      ctx.method = result.method;
      return Decision.accept('accepted');
    }
    replayed = result.reason === 'code_replayed';
  }
  if (!CODE_PATTERN.test(code)) return Decision.reject('bad_code');
  const allowed = new Set<string>(ctx.policy.methods);
  const sent = await checkSentCode(ctx.deps.store, ctx.deps.keys, user.id, code, ctx.now, allowed);
  if (sent.ok) {
    ctx.method = sent.sent.method;
    ctx.provider = sent.sent.provider;
    if (sent.sent.method !== 'email') ctx.phone = user.mobile ?? user.phone;
    return Decision.accept('accepted');
  }
  replayed ||= sent.replayed;
  const byProvider = await checkProviderCode(ctx, code, allowed);
  if (byProvider !== undefined) return byProvider;
  return Decision.reject(replayed ? 'code_replayed' : 'bad_code');
}

async function checkProviderCode(ctx: FlowContext, code: string, allowed: ReadonlySet<string>): Promise<Decision | undefined> {
  const verifier = ctx.deps.verifier;
  if (verifier === undefined) return undefined;
  // The newest code the provider sent, of an allowed method: one question to the provider per
  // typed code (each wrong one counts against the user at Duo).
  const sent = (await ctx.deps.store.listLiveSentCodes(ctx.user!.id, ctx.now)).find((s) => s.codeHash === null && s.usedAt === null && allowed.has(s.method));
  const provider = sent === undefined ? undefined : verifier.get(sent.provider);
  if (sent === undefined || provider?.verifyProviderCode === undefined) return undefined;
  let ok: boolean;
  try {
    ok = await provider.verifyProviderCode({ to: ctx.user!.username, code, recipient: recipientOf(ctx), login: loginOf(ctx), signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    // A provider that cannot answer makes the code wrong, never the login fail-open: a typed code
    // was checked, and it did not match anything that could be verified.
    if (err instanceof ProviderUnavailableError || err instanceof ProviderRejectedError) {
      ctx.deps.log.warn({ attemptId: ctx.attempt.id, provider: provider.name, err: err.message }, 'provider could not check its code');
      return undefined;
    }
    throw err;
  }
  if (!ok || !(await ctx.deps.store.useSentCode(sent.id, ctx.now))) return undefined;
  ctx.method = sent.method;
  ctx.provider = sent.provider;
  return Decision.accept('accepted');
}
