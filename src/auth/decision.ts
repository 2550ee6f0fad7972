import type { RadiusAttribute } from '../radius/codec/index.js';

/**
 * A rejection is a value with a reason from a closed vocabulary; the audit stores it verbatim so
 * admins can filter on it. Faults (a broken upstream, a bug) are exceptions: see src/errors.ts.
 */
export const REJECT_REASONS = [
  'bad_password',
  'bad_code',
  'code_replayed',
  'code_missing',
  'user_unknown',
  'user_disabled',
  'user_blocked',
  'locked_out',
  'not_enrolled',
  'method_not_allowed',
  'challenge_invalid',
  'challenge_expired',
  'challenge_replayed',
  'provider_unavailable',
  'internal_error',
  // First factor against a directory or an upstream RADIUS server (AD's `data XXX` codes in brackets).
  /** No directory server or upstream RADIUS server answered: the first factor could not be checked. */
  'first_factor_unavailable',
  /**
   * The login came in a form the policy's first factor cannot check: an MS-CHAPv2 login (a proof
   * of the password, not the password) with first factor `local` or `ldap:`. Only an upstream
   * RADIUS server holding the NT hashes (`radius:`, e.g. NPS) can check MS-CHAPv2.
   */
  'first_factor_unsupported',
  /** The upstream RADIUS server sent Access-Reject (it does not say why). */
  'upstream_rejected',
  /** Logon hours or workstation restrictions [530, 531]. */
  'logon_restricted',
  /** [532] */
  'password_expired',
  /** Disabled in the directory [533] (user_disabled is the gateway's own flag). */
  'account_disabled',
  /** [701] */
  'account_expired',
  /** [773] */
  'must_change_password',
  // Second factor through the cloud (push, phone call, SMS, voice, email).
  /** The user declined the push, call or two-way SMS. */
  'denied',
  /** The push, call or two-way SMS was not answered in time (approval_timeout_seconds). */
  'approval_timeout',
  /** The user reported the request as fraud (push "Not me", 0 on a call); the user is blocked when fraud.block_user. */
  'fraud_reported',
  /** Number matching: the user picked another number than the prompt showed. */
  'number_mismatch',
  /** PIN mode: the PIN keyed in on the call was wrong. */
  'bad_pin',
  /** Push-fatigue limit reached (methods.push.max_per_10_minutes): a code method is needed now. */
  'push_limited',
  /** SMS or call limit reached (per user or for the whole gateway): toll-fraud protection. */
  'rate_limited',
  /** Every provider of the method refused the message (a bad phone number, an unknown Duo user). */
  'delivery_failed',
  /** A code was sent (SMS, voice, email) to a client that cannot show a prompt: log in again with password,code. */
  'code_sent',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export const ACCEPT_REASONS = [
  /** Both factors (or the first factor and a policy that needs no second) succeeded. */
  'accepted',
  /** No second factor enrolled and the policy says `unenrolled: allow`. */
  'accepted_unenrolled',
  /** Unknown user and the policy says `unknown_users: pass` with first factor `none`. */
  'accepted_unknown_user',
  /** The second-factor service failed and the policy's fail mode is `safe`. */
  'accepted_fail_open',
  /** A one-time bypass (`mfa-gateway bypass add`) replaced the second factor. */
  'accepted_bypass',
  /** A recent success of the same user from the same address (policy remember_seconds). */
  'accepted_remembered',
] as const;
export type AcceptReason = (typeof ACCEPT_REASONS)[number];

/**
 * Link-encryption keys for the NAS (MPPE, RFC 3079) that the first factor's target issued (an
 * upstream's MS-MPPE-Send-Key / -Recv-Key, already decrypted). Plain values held in memory only,
 * never logged, stored or sealed: a front end encrypts them for the one reply that carries them.
 */
export interface MppeKeys {
  /** The NAS's send key (MS-MPPE-Send-Key). */
  readonly sendKey?: Buffer;
  /** The NAS's receive key (MS-MPPE-Recv-Key). */
  readonly recvKey?: Buffer;
}

/**
 * `challenge_code`: the gateway asks for a code. `challenge_method`: it offers the method menu.
 * `challenge_push`: it shows the number to pick in the app and waits for the answer.
 * `challenge_first_factor`: it passes on the first factor's question.
 */
export type ChallengeReason = 'challenge_code' | 'challenge_method' | 'challenge_push' | 'challenge_first_factor';

export type Decision =
  | {
      readonly kind: 'accept';
      readonly reason: AcceptReason;
      readonly message?: string;
      /** Reply attributes from the first factor's target (an upstream's Class, Filter-Id, MS-CHAP2-Success, …) for the NAS. */
      readonly attributes?: readonly RadiusAttribute[];
      /** MPPE keys from the first factor's target, for the NAS (encrypted by the front end). */
      readonly mppeKeys?: MppeKeys;
    }
  | {
      readonly kind: 'reject';
      readonly reason: RejectReason;
      readonly message?: string;
      /** Reply attributes from the first factor's target for the NAS (an upstream's MS-CHAP-Error). */
      readonly attributes?: readonly RadiusAttribute[];
    }
  | { readonly kind: 'challenge'; readonly reason: ChallengeReason; readonly state: Buffer; readonly prompt: string };

export const Decision = {
  accept(reason: AcceptReason = 'accepted', message?: string): Decision {
    return message === undefined ? { kind: 'accept', reason } : { kind: 'accept', reason, message };
  },
  reject(reason: RejectReason, message?: string, attributes?: readonly RadiusAttribute[]): Decision {
    return {
      kind: 'reject',
      reason,
      ...(message === undefined ? {} : { message }),
      ...(attributes === undefined || attributes.length === 0 ? {} : { attributes }),
    };
  },
  challenge(state: Buffer, prompt: string, reason: ChallengeReason = 'challenge_code'): Decision {
    return { kind: 'challenge', reason, state, prompt };
  },
} as const;

/** Reasons that count towards the per-user lockout: someone is guessing. */
export const FAILURE_REASONS: ReadonlySet<RejectReason> = new Set(['bad_password', 'bad_code', 'code_replayed', 'upstream_rejected', 'bad_pin', 'number_mismatch']);
