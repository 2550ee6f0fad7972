import type { RadiusAttribute } from '../radius/codec/index.js';
import type { User } from '../store/types.js';
import type { AuthAttempt, MsChapV2Proof } from './attempt.js';
import type { MppeKeys, RejectReason } from './decision.js';

/**
 * A first factor that lives outside the gateway: a directory (`ldap:<name>`) or an upstream
 * RADIUS server (`radius:<name>`). The flow hands it the password with any inline factor already
 * split off, so the directory sees one bind per attempt.
 */
export interface PasswordCheck {
  readonly attempt: AuthAttempt;
  /** The login name as the client sent it (the target resolves its own name forms). */
  readonly login: string;
  readonly password: string;
  /** The user as the gateway knows it, when it does. */
  readonly user: User | undefined;
  /** When answering the target's own challenge: what its challenge outcome carried (an upstream's State). */
  readonly continuation?: Buffer;
}

/** An MS-CHAPv2 login to check: the proof of the password instead of the password. */
export interface MsChapV2Check {
  readonly attempt: AuthAttempt;
  /** The login name as the client sent it (the name the proof was computed with). */
  readonly login: string;
  readonly proof: MsChapV2Proof;
  /** The user as the gateway knows it, when it does. */
  readonly user: User | undefined;
}

export type PasswordOutcome =
  | {
      readonly kind: 'accept';
      /** Reply attributes the target wants the NAS to get on accept (upstream Class, Filter-Id, Framed-*, vendor attributes). */
      readonly replyAttributes?: readonly RadiusAttribute[];
      /** Where the password was checked ("ldaps://10.0.0.5:636", "10.0.0.7:1812"), for the log. */
      readonly server?: string;
      /** Link-encryption keys for the NAS (an upstream's answer to MS-CHAPv2), in the clear. */
      readonly mppeKeys?: MppeKeys;
    }
  | {
      readonly kind: 'reject';
      readonly reason: RejectReason;
      /** The target's own words (AD's `data 775`, an upstream Reply-Message), for the log only. */
      readonly detail?: string;
      /** Reply attributes the NAS should get with the reject (an upstream's MS-CHAP-Error). */
      readonly replyAttributes?: readonly RadiusAttribute[];
    }
  | {
      /** The target asks the user something first (an upstream Access-Challenge): the gateway passes the prompt on. */
      readonly kind: 'challenge';
      readonly prompt: string;
      /** Handed back in PasswordCheck.continuation with the user's answer. */
      readonly continuation: Buffer;
    };

export interface FirstFactorTarget {
  /** `ldap:corp`, `radius:nps`. */
  readonly name: string;
  /** Throws UpstreamUnavailable when no server of the target answered. */
  check(req: PasswordCheck): Promise<PasswordOutcome>;
  /**
   * Checks an MS-CHAPv2 login; present only on targets that can (an upstream RADIUS server that
   * holds the NT hashes). On accept the outcome carries what the NAS needs to finish MS-CHAPv2
   * (MS-CHAP2-Success in `replyAttributes`) and its MPPE keys. Throws UpstreamUnavailable as `check`.
   */
  checkMsChapV2?(req: MsChapV2Check): Promise<PasswordOutcome>;
  close(): Promise<void>;
}

/** The targets of the running configuration, by first-factor name. */
export interface FirstFactorTargets {
  get(name: string): FirstFactorTarget | undefined;
}
