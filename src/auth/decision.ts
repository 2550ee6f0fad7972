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

/** `challenge_code`: the gateway asks for the second factor. `challenge_first_factor`: it passes on the first factor's question. */
export type ChallengeReason = 'challenge_code' | 'challenge_first_factor';

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
export const FAILURE_REASONS: ReadonlySet<RejectReason> = new Set(['bad_password', 'bad_code', 'code_replayed', 'upstream_rejected']);
