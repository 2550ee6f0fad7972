import { randomOctets } from '../crypto/random.js';
import type { DataKeys } from '../crypto/keys.js';
import { SEAL_OVERHEAD, seal, unseal } from '../crypto/seal.js';
import { SealError } from '../errors.js';

/**
 * The RADIUS `State` of an Access-Challenge: everything needed to continue the login, sealed
 * with AES-256-GCM under a key derived from the master key, so any gateway node sharing that key
 * can continue a challenge another node started, and the NAS cannot read or alter it. Single use
 * is enforced by the store (claimOnce on `nonce`).
 */
export interface ChallengeState {
  /** Random, unique: the single-use key. */
  readonly nonce: string;
  readonly attemptId: string;
  readonly userId: string;
  readonly clientName: string;
  /** The first factor: the one that already succeeded (stage `second`) or the one asking (stage `first`). */
  readonly firstFactor: string;
  /** Epoch ms after which the challenge is void. */
  readonly expiresAt: number;
  /**
   * `second`: the gateway asks for the second factor. `first`: the first factor's target (an
   * upstream RADIUS server) asked something, passed on to the user; its continuation is held by
   * the node that sent the challenge (see FirstFactorChallenges).
   */
  readonly stage: 'first' | 'second';
  /**
   * Stage `second` only: what the gateway asked. `code`: a one-time code (TOTP/HOTP or one it
   * sent). `menu`: which method. `push`: nothing to type; the answer waits for the push or call
   * started with this challenge (PendingApprovals, keyed by the nonce, on the node that sent it).
   */
  readonly step: ChallengeStep;
}

export type ChallengeStep = 'code' | 'menu' | 'push';
const STEPS: readonly ChallengeStep[] = ['code', 'menu', 'push'];

const CONTEXT = 'radius-state';
/** RFC 2865 §5: an attribute value holds at most 253 octets. */
export const MAX_STATE_LENGTH = 253;

export function newNonce(): string {
  return randomOctets(12).toString('base64url');
}

export function sealState(keys: DataKeys, state: ChallengeState): Buffer {
  const body = Buffer.from(
    JSON.stringify([2, state.nonce, state.attemptId, state.userId, state.clientName, state.firstFactor, state.expiresAt, state.stage === 'first' ? 1 : 2, STEPS.indexOf(state.step)]),
  );
  if (body.length + SEAL_OVERHEAD > MAX_STATE_LENGTH) throw new SealError('challenge state does not fit in a RADIUS State attribute');
  return seal(keys.get('challenge-state'), body, CONTEXT);
}

/** Undefined when the State was not made by a gateway with this key, or was altered. */
export function openState(keys: DataKeys, sealed: Buffer): ChallengeState | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(unseal(keys.get('challenge-state'), sealed, CONTEXT).toString('utf8'));
  } catch {
    return undefined;
  }
  // Version 1 (before the step) is read as a code challenge: States live minutes, across an upgrade.
  if (!Array.isArray(parsed) || !((parsed.length === 8 && parsed[0] === 1) || (parsed.length === 9 && parsed[0] === 2))) return undefined;
  const [, nonce, attemptId, userId, clientName, firstFactor, expiresAt, stage, stepIndex = 0] = parsed as unknown[];
  const step = typeof stepIndex === 'number' ? STEPS[stepIndex] : undefined;
  if (step === undefined) return undefined;
  if (stage !== 1 && stage !== 2) return undefined;
  if (typeof nonce !== 'string' || typeof attemptId !== 'string' || typeof userId !== 'string') return undefined;
  if (typeof clientName !== 'string' || typeof firstFactor !== 'string' || typeof expiresAt !== 'number') return undefined;
  return { nonce, attemptId, userId, clientName, firstFactor, expiresAt, stage: stage === 1 ? 'first' : 'second', step };
}
