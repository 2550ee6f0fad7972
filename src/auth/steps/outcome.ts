import { newAuditId } from '../../audit/record-id.js';
import type { AuditEntry } from '../../store/types.js';
import type { FlowContext } from '../context.js';
import { FAILURE_REASONS, type Decision } from '../decision.js';

/** Lockout bookkeeping for the decision: failures count, a success clears them. */
export async function applyLockout(ctx: FlowContext, decision: Decision): Promise<void> {
  const user = ctx.user;
  const { max_failures, lock_minutes } = ctx.config.lockout;
  if (!user || max_failures === 0) return;
  if (decision.kind === 'reject' && FAILURE_REASONS.has(decision.reason)) {
    const state = await ctx.deps.store.registerFailure(user.id, ctx.now, max_failures, lock_minutes * 60_000);
    if (state.lockedUntil !== null) {
      ctx.deps.log.warn({ attemptId: ctx.attempt.id, userId: user.id, lockedUntil: new Date(state.lockedUntil).toISOString() }, 'user locked out');
    }
  } else if (decision.kind === 'accept' && ctx.priorFailures !== 0) {
    await ctx.deps.store.clearFailures(user.id);
  }
}

/**
 * Remembers a success with a second factor for (user, end-user address) when the policy says so
 * (remember_seconds): the next logins from there within that time skip the second factor.
 */
export async function applyRemember(ctx: FlowContext, decision: Decision): Promise<void> {
  const seconds = ctx.policy.remember_seconds;
  if (seconds === 0 || !ctx.user || decision.kind !== 'accept' || decision.reason !== 'accepted' || ctx.method === null) return;
  await ctx.deps.store.rememberLogin(ctx.user.id, rememberKey(ctx), ctx.now + seconds * 1000);
}

/** The end user's address as the NAS reports it (Calling-Station-Id), else the NAS's own, per client. */
export function rememberKey(ctx: FlowContext): string {
  return `${ctx.client.name}|${ctx.attempt.nas.callingStationId ?? ctx.attempt.client.ip}`;
}

/** The audit record of one attempt: who, how, through which client, with what result. */
export function auditEntry(ctx: FlowContext, decision: Decision, decidedAt: number): AuditEntry {
  const { attempt, user } = ctx;
  return {
    id: newAuditId(decidedAt),
    receivedAt: attempt.receivedAt,
    decidedAt,
    attemptId: attempt.id,
    protocol: attempt.protocol,
    result: decision.kind,
    reason: decision.reason,
    userId: user?.id ?? null,
    username: attempt.username,
    firstName: user?.firstName ?? null,
    lastName: user?.lastName ?? null,
    email: user?.email ?? null,
    phone: ctx.phone ?? null,
    deviceToken: ctx.deviceToken ?? null,
    firstFactor: ctx.firstFactor,
    method: ctx.method,
    provider: ctx.provider ?? null,
    providerMessageId: ctx.providerMessageId ?? null,
    gatewayName: ctx.config.gatewayName,
    gatewayIp: attempt.localAddress,
    clientName: ctx.client.name,
    clientIp: attempt.client.ip,
    nasIdentifier: attempt.nas.identifier,
    nasIpAddress: attempt.nas.ipAddress,
    callingStationId: attempt.nas.callingStationId,
    calledStationId: attempt.nas.calledStationId,
    timings: roundTimings(ctx.timings),
  };
}

function roundTimings(timings: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(timings)) out[k] = Math.round(v * 1000) / 1000;
  return out;
}
