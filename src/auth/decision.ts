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

export type ChallengeReason = 'challenge_code';

export type Decision =
  | { readonly kind: 'accept'; readonly reason: AcceptReason; readonly message?: string }
  | { readonly kind: 'reject'; readonly reason: RejectReason; readonly message?: string }
  | { readonly kind: 'challenge'; readonly reason: ChallengeReason; readonly state: Buffer; readonly prompt: string };

export const Decision = {
  accept(reason: AcceptReason = 'accepted', message?: string): Decision {
    return message === undefined ? { kind: 'accept', reason } : { kind: 'accept', reason, message };
  },
  reject(reason: RejectReason, message?: string): Decision {
    return message === undefined ? { kind: 'reject', reason } : { kind: 'reject', reason, message };
  },
  challenge(state: Buffer, prompt: string): Decision {
    return { kind: 'challenge', reason: 'challenge_code', state, prompt };
  },
} as const;

/** Reasons that count towards the per-user lockout: someone is guessing. */
export const FAILURE_REASONS: ReadonlySet<RejectReason> = new Set(['bad_password', 'bad_code', 'code_replayed', 'upstream_rejected']);
