import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { hashPassword, verifyPassword } from '../crypto/password-hash.js';
import { InternalError, ProviderRejectedError, errorMessage } from '../errors.js';
import type { MethodName } from '../config/schema.js';
import type { PendingApproval } from '../verify/pending-approvals.js';
import type { ApprovalChannel, ApprovalOutcome, LoginContext, NumberMatch, PinCheck, Provider, Recipient } from '../verify/providers/provider.js';
import { newCode, recordSentCode } from '../verify/sent-codes.js';
import type { FlowContext } from './context.js';
import { Decision } from './decision.js';
import type { UsableMethod } from './method-choice.js';
import { maskEmail, maskPhone } from '../verify/masking.js';

/**
 * The second factor through the cloud: sending one-time codes (SMS, voice, email) and starting
 * and awaiting approvals (push, phone call, two-way SMS), with the limits that protect users and
 * the phone bill (push fatigue, per-user and global send limits) and what a fraud report does.
 * Faults (every provider down) propagate as ProviderUnavailableError: the flow's fail mode
 * decides. A refusal by every provider is a `delivery_failed` rejection.
 */

const HOUR = 3_600_000;
const TEN_MINUTES = 600_000;

export function recipientOf(ctx: FlowContext): Recipient {
  const user = ctx.user!;
  const name = [user.firstName, user.lastName].filter((p) => p !== null && p !== '').join(' ');
  return { userId: user.id, username: user.username, displayName: name === '' ? null : name, language: user.language };
}

export function loginOf(ctx: FlowContext): LoginContext {
  const { attempt } = ctx;
  return { attemptId: attempt.id, clientName: ctx.client.name, clientIp: attempt.client.ip, nasIdentifier: attempt.nas.identifier, callingStationId: attempt.nas.callingStationId };
}

function verifierOf(ctx: FlowContext) {
  const verifier = ctx.deps.verifier;
  if (verifier === undefined) throw new InternalError('a cloud method is configured but no provider is running');
  return verifier;
}

/** Toll-fraud limits of a method that costs money per use: per user, then for the whole gateway. */
async function withinSendLimits(ctx: FlowContext, method: 'sms' | 'voice' | 'phone' | 'email'): Promise<boolean> {
  const limits = ctx.config.methods[method];
  if (limits === undefined) return false;
  const { store } = ctx.deps;
  if (!(await store.takeRateSlot(method, ctx.user!.id, HOUR, limits.per_user_per_hour, ctx.now))) return false;
  return store.takeRateSlot(method, '*', HOUR, limits.global_per_hour, ctx.now);
}

function rateLimited(ctx: FlowContext, method: string): Decision {
  ctx.deps.log.warn({ attemptId: ctx.attempt.id, userId: ctx.user?.id, method }, 'send limit reached');
  return Decision.reject('rate_limited', 'Too many verification messages: try again later or use another method');
}

/**
 * Sends a one-time code by SMS, voice or email. Undefined when sent (the caller asks for it);
 * a Decision when it was not (limits, every provider refused).
 */
export async function sendCode(ctx: FlowContext, usable: UsableMethod): Promise<Decision | undefined> {
  const method = usable.method;
  if (method !== 'sms' && method !== 'voice' && method !== 'email') throw new InternalError(`${method} is not a code method`);
  const settings = ctx.config.methods[method];
  const to = usable.address;
  if (settings === undefined || to === null) return Decision.reject('not_enrolled');
  if (!(await withinSendLimits(ctx, method))) return rateLimited(ctx, method);
  const verifier = verifierOf(ctx);
  const code = newCode(settings.code_length);
  const started = performance.now();
  ctx.method = method;
  const abort = AbortSignal.timeout(30_000);
  try {
    const sent = await verifier.firstThatWorks(
      settings.providers.map((provider) => ({ provider })),
      ctx.attempt.id,
      (provider: Provider) => {
        if (provider.sendCode !== undefined && provider.codeChannels.has(method)) {
          return provider.sendCode({ channel: method, to, code, ttlSeconds: settings.ttl_seconds, recipient: recipientOf(ctx), login: loginOf(ctx), signal: abort });
        }
        // Duo sends SMS passcodes of its own making and checks them itself.
        if (method === 'sms' && provider.requestProviderCode !== undefined) {
          return provider.requestProviderCode({ channel: 'sms', to: ctx.user!.username, recipient: recipientOf(ctx), login: loginOf(ctx), signal: abort });
        }
        return undefined;
      },
    );
    const own = sent.provider.sendCode !== undefined && sent.provider.codeChannels.has(method);
    await recordSentCode(ctx.deps.store, ctx.deps.keys, { userId: ctx.user!.id, method, provider: sent.provider.name, code: own ? code : null, ttlMs: settings.ttl_seconds * 1000, now: ctx.now });
    ctx.provider = sent.provider.name;
    ctx.providerMessageId = sent.value.messageId;
    // Duo texts the number it has on file: no number of ours to record.
    if (method !== 'email' && own) ctx.phone = to;
    ctx.deps.log.info({ attemptId: ctx.attempt.id, method, provider: sent.provider.name, to: method === 'email' ? maskEmail(to) : maskPhone(to), messageId: sent.value.messageId }, 'code sent');
    return undefined;
  } catch (err) {
    if (err instanceof ProviderRejectedError) return Decision.reject('delivery_failed', 'The verification message could not be delivered');
    throw err;
  } finally {
    ctx.timings.send = performance.now() - started;
  }
}

/** The prompt that asks for a code just sent. */
export function codePrompt(usable: UsableMethod): string {
  const to = usable.address ?? '';
  switch (usable.method) {
    case 'sms':
      return `Enter the code sent by SMS to ${maskPhone(to)}`;
    case 'voice':
      return `Enter the code read out on the call to ${maskPhone(to)}`;
    case 'email':
      return `Enter the code sent to ${maskEmail(to)}`;
    default:
      return 'Enter your verification code';
  }
}

/** Three different two-digit numbers, one of them right, in random order. */
export function numberMatch(): NumberMatch {
  const choices = new Set<number>();
  while (choices.size < 3) choices.add(randomInt(10, 100));
  const list = [...choices];
  return { correct: list[randomInt(3)]!, choices: list };
}

interface ApprovalTarget {
  readonly provider: string;
  readonly address: string;
  readonly deviceId: string | null;
}

/** Where a push, call or two-way SMS can go, in the order of the method's providers. */
function approvalTargets(ctx: FlowContext, usable: UsableMethod, providers: readonly string[]): ApprovalTarget[] {
  const out: ApprovalTarget[] = [];
  for (const name of providers) {
    if (usable.method === 'push') {
      if (ctx.config.providers[name]?.type === 'duo') out.push({ provider: name, address: ctx.user!.username, deviceId: null });
      for (const device of usable.devices) if (device.provider === name) out.push({ provider: name, address: device.address, deviceId: device.id });
    } else if (usable.address !== null) {
      out.push({ provider: name, address: ctx.config.providers[name]?.type === 'duo' ? ctx.user!.username : usable.address, deviceId: null });
    }
  }
  return out;
}

export interface StartOptions {
  /** Push only: the number the prompt shows (number matching). */
  readonly numberMatch?: NumberMatch;
  /** The challenge nonce the answer will bring back (number matching); else a fresh id. */
  readonly id: string;
}

/**
 * Starts a push, phone call or two-way SMS, or joins the one still out for the same login (a NAS
 * that sends a new request for it). A Decision when it cannot start (limits, refused).
 */
export async function startApproval(ctx: FlowContext, usable: UsableMethod, opts: StartOptions): Promise<PendingApproval | Decision> {
  const method = usable.method;
  const user = ctx.user!;
  const verifier = verifierOf(ctx);
  // Only the same login joins: the same user, through the same NAS, from the same end-user
  // address. Without that address (no Calling-Station-Id) nothing joins: a second login from
  // elsewhere must never ride on the user's approval of the first.
  const from = ctx.attempt.nas.callingStationId;
  const joinKey = from === null || opts.numberMatch !== undefined ? undefined : `${user.id}|${ctx.client.name}|${ctx.attempt.client.ip}|${ctx.attempt.nas.identifier ?? ''}|${from}|${method}`;
  if (joinKey !== undefined) {
    const out = await verifier.approvals.joinable(joinKey);
    if (out !== undefined && out.expiresAt > ctx.now) {
      ctx.deps.log.info({ attemptId: ctx.attempt.id, joined: out.id, method }, 'joined the approval already out for this login');
      return out;
    }
  }
  const starting = startFresh(ctx, usable, opts, joinKey);
  // A request for the same login that comes while this one is still being started joins it too.
  if (joinKey !== undefined) verifier.approvals.starting(joinKey, starting);
  return starting;
}

async function startFresh(ctx: FlowContext, usable: UsableMethod, opts: StartOptions, joinKey: string | undefined): Promise<PendingApproval | Decision> {
  const method = usable.method;
  const user = ctx.user!;
  const verifier = verifierOf(ctx);
  let channel: ApprovalChannel;
  let providers: readonly string[];
  let code: string | undefined;
  let pin: PinCheck | undefined;
  if (method === 'push') {
    const push = ctx.config.methods.push!;
    // Push fatigue: past the limit, only methods that need the user to type something are left.
    if (!(await ctx.deps.store.takeRateSlot('push', user.id, TEN_MINUTES, push.max_per_10_minutes, ctx.now))) {
      ctx.deps.log.warn({ attemptId: ctx.attempt.id, userId: user.id }, 'push limit reached');
      return Decision.reject('push_limited', 'Too many push requests: use a code instead');
    }
    channel = 'push';
    providers = push.providers;
  } else if (method === 'phone') {
    const phone = ctx.config.methods.phone!;
    if (!(await withinSendLimits(ctx, 'phone'))) return rateLimited(ctx, method);
    channel = 'phone';
    providers = phone.providers;
    if (phone.mode === 'pin') pin = pinCheck(ctx, phone.pin_min_length, phone.pin_max_length);
  } else if (method === 'sms') {
    const sms = ctx.config.methods.sms!;
    if (!(await withinSendLimits(ctx, 'sms'))) return rateLimited(ctx, method);
    channel = 'sms_reply';
    providers = sms.providers;
    code = newCode(sms.code_length);
  } else {
    throw new InternalError(`${method} is not an approval method`);
  }

  const timeoutMs = ctx.client.approval_timeout_seconds * 1000;
  const expiresAt = ctx.now + timeoutMs;
  const abort = new AbortController();
  // Starting (a Duo preauth, a Twilio call set-up, with retries, over several providers) and
  // waiting share one deadline: the login's.
  const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]);
  const started = performance.now();
  let startedApproval;
  try {
    startedApproval = await verifier.firstThatWorks(approvalTargets(ctx, usable, providers), ctx.attempt.id, (provider: Provider, target: ApprovalTarget) => {
      if (provider.startApproval === undefined || !provider.approvalChannels.has(channel)) return undefined;
      const numbers = provider.numberMatching ? opts.numberMatch : undefined;
      return provider.startApproval({
        channel,
        to: target.address,
        recipient: recipientOf(ctx),
        login: loginOf(ctx),
        ...(numbers === undefined ? {} : { numberMatch: numbers }),
        ...(pin === undefined ? {} : { pin }),
        ...(code === undefined ? {} : { code }),
        expiresAt,
        signal,
      });
    });
  } catch (err) {
    if (err instanceof ProviderRejectedError) return Decision.reject('delivery_failed', 'The verification request could not be delivered');
    throw err;
  } finally {
    ctx.timings.send = performance.now() - started;
  }
  const { provider, target, value } = startedApproval;
  const entry: PendingApproval = {
    id: opts.id,
    joinKey: joinKey ?? null,
    method,
    provider: provider.name,
    messageId: value.messageId,
    // Duo calls the number it has on file, not ours: no number to record.
    phone: method === 'push' || provider.type === 'duo' ? null : target.address,
    deviceId: target.deviceId,
    startedAt: ctx.now,
    expiresAt,
    outcome: value.outcome,
    abort,
  };
  // Kept past its expiry for as long as a challenge answer may still come for it.
  verifier.approvals.add(entry, ctx.now + Math.max(timeoutMs, ctx.config.challenge.ttl_seconds * 1000), ctx.now);
  // A fraud report counts whether or not a login is still waiting for the answer (the one who
  // started a number-matched push may never press OK).
  void value.outcome.then(async (outcome) => {
    if (outcome.result === 'fraud') await reportFraud(ctx, entry);
  }).catch((err: unknown) => ctx.deps.log.error({ attemptId: ctx.attempt.id, err: errorMessage(err) }, 'could not act on a fraud report'));
  if (target.deviceId !== null) await ctx.deps.store.markPushDeviceUsed(target.deviceId, ctx.now);
  ctx.deps.log.info(
    { attemptId: ctx.attempt.id, method, provider: provider.name, messageId: value.messageId, ...(entry.phone === null ? {} : { to: maskPhone(entry.phone) }), numberMatching: opts.numberMatch !== undefined && provider.numberMatching },
    'approval requested',
  );
  return entry;
}

/** Waits for the push, call or two-way SMS and turns its outcome into the decision. */
export async function awaitApproval(ctx: FlowContext, pending: PendingApproval): Promise<Decision> {
  ctx.method = pending.method;
  ctx.provider = pending.provider;
  ctx.providerMessageId = pending.messageId;
  if (pending.phone !== null) ctx.phone = pending.phone;
  if (pending.deviceId !== null) ctx.deviceToken = pending.deviceId;
  const started = performance.now();
  let outcome: ApprovalOutcome;
  try {
    outcome = await settleBy(pending.outcome, pending.expiresAt - ctx.now + 5_000);
  } finally {
    ctx.timings.approval = performance.now() - started;
  }
  switch (outcome.result) {
    case 'approved':
      return Decision.accept('accepted');
    case 'denied':
      return Decision.reject('denied');
    case 'wrong_number':
      return Decision.reject('number_mismatch', 'The number picked in the app was not the one shown');
    case 'bad_pin':
      return Decision.reject('bad_pin');
    case 'timeout':
      return Decision.reject('approval_timeout');
    case 'fraud':
      await reportFraud(ctx, pending);
      return Decision.reject('fraud_reported');
  }
}

/** A provider promises to settle by the expiry; this keeps a login from hanging if one does not. */
function settleBy(outcome: Promise<ApprovalOutcome>, ms: number): Promise<ApprovalOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ApprovalOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ result: 'timeout', detail: 'the provider did not settle in time' }), Math.max(0, ms));
  });
  return Promise.race([outcome, late]).finally(() => clearTimeout(timer));
}

/** Logins sharing one push settle once; the report is acted on once. */
const reported = new WeakSet<PendingApproval>();

async function reportFraud(ctx: FlowContext, pending: PendingApproval): Promise<void> {
  if (reported.has(pending)) return;
  reported.add(pending);
  const user = ctx.user!;
  const { store, log } = ctx.deps;
  log.warn({ attemptId: ctx.attempt.id, userId: user.id, username: user.username, method: pending.method, clientIp: ctx.attempt.client.ip, callingStationId: ctx.attempt.nas.callingStationId }, 'fraud reported by the user');
  if (ctx.config.fraud.block_user) {
    await store.updateUser(user.id, { blocked: true });
    await store.forgetLogins(user.id);
  }
  const admins = ctx.config.fraud.notify;
  const mailer = ctx.deps.verifier?.ofType('smtp')[0] as (Provider & { sendNotice?: (to: readonly string[], subject: string, text: string) => Promise<unknown> }) | undefined;
  if (admins.length === 0 || mailer?.sendNotice === undefined) return;
  const text = [
    `The user ${user.username}${recipientOf(ctx).displayName === null ? '' : ` (${recipientOf(ctx).displayName})`} reported a sign-in request as fraudulent.`,
    '',
    `Method: ${pending.method}`,
    `Client: ${ctx.client.name} (${ctx.attempt.client.ip})`,
    `End-user address: ${ctx.attempt.nas.callingStationId ?? 'unknown'}`,
    `Time: ${new Date(ctx.now).toISOString()}`,
    `Attempt: ${ctx.attempt.id}`,
    ctx.config.fraud.block_user ? 'The user is now blocked: unblock with `mfa-gateway users unblock USER` once it is safe.' : 'The user was not blocked (fraud.block_user is false).',
  ].join('\n');
  // The login's answer does not wait for the mail.
  void mailer.sendNotice(admins, `Fraud report: sign-in request for ${user.username}`, text).catch((err: unknown) => log.error({ err: errorMessage(err) }, 'could not mail the fraud report to the admins'));
}

function pinCheck(ctx: FlowContext, minLength: number, maxLength: number): PinCheck {
  const user = ctx.user!;
  return {
    verify: async (digits) => user.pinHash !== null && (await verifyPassword(digits, user.pinHash)),
    mustChange: user.pinMustChange,
    change: async (digits) => {
      await ctx.deps.store.updateUser(user.id, { pinHash: await hashPassword(digits), pinMustChange: false });
    },
    minLength,
    maxLength,
  };
}

export type { MethodName };
