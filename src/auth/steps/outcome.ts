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
    phone: null,
    deviceToken: null,
    firstFactor: ctx.firstFactor,
    method: ctx.method,
    provider: null,
    providerMessageId: null,
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
