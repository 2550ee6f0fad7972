import type { RadiusAttribute } from '../radius/codec/index.js';

/** What a front end hands to the flow: one login attempt, protocol details already translated. */

export type Protocol = 'radius' | 'ldap' | 'portal' | 'cli';

/** The client (NAS, LDAP application) the attempt came through, as the front end identified it. */
export interface AttemptClient {
  /** Client name from the config (`clients[].name`). */
  readonly name: string;
  /** Source address of the request. */
  readonly ip: string;
}

/** Identifiers the NAS sent about itself and the session, recorded in the audit. */
export interface NasInfo {
  readonly identifier: string | null;
  readonly ipAddress: string | null;
  readonly callingStationId: string | null;
  readonly calledStationId: string | null;
}

/**
 * An MS-CHAPv2 login (RFC 2759, carried in RFC 2548 attributes): a proof that the user knows the
 * password, bound to the NAS's challenge, never the password itself. Only a first factor that
 * holds the password's NT hash can check it (an upstream RADIUS server such as NPS).
 */
export interface MsChapV2Proof {
  /** The NAS's authenticator challenge (MS-CHAP-Challenge), 16 octets. */
  readonly challenge: Buffer;
  /** MS-CHAP2-Response: Ident, Flags, Peer-Challenge, 8 reserved octets, NT-Response; 50 octets. */
  readonly response: Buffer;
}

export interface AuthAttempt {
  /** Unique id of this attempt (UUID), written into logs and the audit record. */
  readonly id: string;
  readonly protocol: Protocol;
  readonly client: AttemptClient;
  /** The login name exactly as sent. */
  readonly username: string;
  /** The password as sent, possibly with an inline factor (`secret,123456`). Absent in a challenge answer and with `msChapV2`. */
  readonly password: string | undefined;
  /** An MS-CHAPv2 login: the proof of the password in place of `password`. Never with `state`. */
  readonly msChapV2?: MsChapV2Proof;
  /** The sealed challenge State returned by the client when answering a challenge. */
  readonly state: Buffer | undefined;
  /** The user's answer to a challenge (the code typed at the prompt). */
  readonly response: string | undefined;
  readonly nas: NasInfo;
  /** Local address the request arrived on (the gateway's IP in the audit). */
  readonly localAddress: string | null;
  /** Epoch ms. */
  readonly receivedAt: number;
  /** RADIUS only: the request's attributes, for an upstream RADIUS first factor to forward (it drops credentials and state). */
  readonly forward?: readonly RadiusAttribute[];
}
