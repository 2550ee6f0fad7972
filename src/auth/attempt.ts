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

export interface AuthAttempt {
  /** Unique id of this attempt (UUID), written into logs and the audit record. */
  readonly id: string;
  readonly protocol: Protocol;
  readonly client: AttemptClient;
  /** The login name exactly as sent. */
  readonly username: string;
  /** The password as sent, possibly with an inline factor (`secret,123456`). Absent in a challenge answer. */
  readonly password: string | undefined;
  /** The sealed challenge State returned by the client when answering a challenge. */
  readonly state: Buffer | undefined;
  /** The user's answer to a challenge (the code typed at the prompt). */
  readonly response: string | undefined;
  readonly nas: NasInfo;
  /** Local address the request arrived on (the gateway's IP in the audit). */
  readonly localAddress: string | null;
  /** Epoch ms. */
  readonly receivedAt: number;
}
