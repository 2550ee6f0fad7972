/** Plain data types that cross the Store interface. No engine type ever leaves src/store/. */

/** Where a user came from: created locally, or synced from a named directory. */
export type UserSource = 'local' | `directory:${string}`;

/** Who a user is and how to reach them: the fields a directory sync maps from attributes. */
export interface UserProfile {
  /** The login name as stored (case preserved). Lookups are case-insensitive. */
  readonly username: string;
  readonly upn: string | null;
  readonly firstName: string | null;
  readonly lastName: string | null;
  readonly email: string | null;
  readonly phone: string | null;
  readonly mobile: string | null;
  /** Preferred second-factor method, e.g. 'totp'; null means the policy's first allowed method. */
  readonly defaultMethod: string | null;
  readonly language: string | null;
}

export interface User extends UserProfile {
  /** Stable unique id: a UUID for local users; objectGUID or entry DN for synced ones. */
  readonly id: string;
  readonly enabled: boolean;
  /** Blocked by an admin or by a fraud report; a blocked user is rejected before any factor. */
  readonly blocked: boolean;
  /** scrypt hash (see src/crypto/password-hash.ts) for first factor `local`; null when none is set. */
  readonly passwordHash: string | null;
  /** scrypt hash of the PIN for phone calls in PIN mode; null when none is set. */
  readonly pinHash: string | null;
  /** The user must choose a new PIN at the next PIN call (set by an admin with a temporary PIN). */
  readonly pinMustChange: boolean;
  readonly source: UserSource;
  /** The directory entry's DN as the last sync saw it; null for local users. */
  readonly directoryDn: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly syncedAt: number | null;
}

export interface NewUser {
  readonly id?: string;
  readonly username: string;
  readonly upn?: string | null;
  readonly firstName?: string | null;
  readonly lastName?: string | null;
  readonly email?: string | null;
  readonly phone?: string | null;
  readonly mobile?: string | null;
  readonly defaultMethod?: string | null;
  readonly language?: string | null;
  readonly enabled?: boolean;
  readonly blocked?: boolean;
  readonly passwordHash?: string | null;
  readonly pinHash?: string | null;
  readonly pinMustChange?: boolean;
  readonly source?: UserSource;
}

/** What indexUserNames loaded. */
export interface UserIndexStats {
  readonly users: number;
  /** Names indexed (user names and UPNs). */
  readonly names: number;
  /** Memory the index holds. */
  readonly bytes: number;
  readonly ms: number;
}

export type UserPatch = Partial<Omit<NewUser, 'id'>>;

export type OathKind = 'totp' | 'hotp';
export type OathAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface OathToken {
  readonly id: string;
  readonly userId: string;
  readonly kind: OathKind;
  readonly label: string;
  readonly algorithm: OathAlgorithm;
  readonly digits: number;
  /** TOTP step in seconds (ignored for HOTP). */
  readonly period: number;
  /** HOTP: the next expected counter. TOTP: unused (0). */
  readonly counter: number;
  /** The secret sealed with the data key (src/crypto/seal.ts); never the clear secret. */
  readonly sealedSecret: Buffer;
  /** TOTP: the last time step accepted (replay protection); null when never used. */
  readonly lastUsedStep: number | null;
  readonly enabled: boolean;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

export interface NewOathToken {
  readonly id?: string;
  readonly userId: string;
  readonly kind: OathKind;
  readonly label: string;
  readonly algorithm: OathAlgorithm;
  readonly digits: number;
  readonly period: number;
  readonly counter?: number;
  readonly sealedSecret: Buffer;
}

export interface LockoutState {
  /** Consecutive failures since the last success or the last lock expiry. */
  readonly failures: number;
  /** Epoch ms until which the user is locked out; null when not locked. */
  readonly lockedUntil: number | null;
}

export type AuditResult = 'accept' | 'reject' | 'challenge';

/** What the flow hands to the audit log. The chain fields are added by the store. */
export interface AuditEntry {
  /** Unique id of this record (UUID). */
  readonly id: string;
  /** Epoch ms when the attempt was received. */
  readonly receivedAt: number;
  /** Epoch ms when the decision was made. */
  readonly decidedAt: number;
  readonly attemptId: string;
  readonly protocol: 'radius' | 'ldap' | 'portal' | 'cli';
  readonly result: AuditResult;
  /** Closed vocabulary: a RejectReason for rejects, an AcceptReason for accepts, 'challenge_*' for challenges. */
  readonly reason: string;
  readonly userId: string | null;
  /** The name as the client sent it. */
  readonly username: string;
  readonly firstName: string | null;
  readonly lastName: string | null;
  readonly email: string | null;
  /** Only when a phone method was used. */
  readonly phone: string | null;
  /** Only when push was used. */
  readonly deviceToken: string | null;
  /** First factor used: 'local', 'none', 'ldap:<dir>', 'radius:<upstream>'. */
  readonly firstFactor: string | null;
  /** Second-factor method used: 'totp', 'hotp', 'push', … or null when none ran. */
  readonly method: string | null;
  readonly provider: string | null;
  readonly providerMessageId: string | null;
  readonly gatewayName: string;
  readonly gatewayIp: string | null;
  readonly clientName: string | null;
  readonly clientIp: string;
  readonly nasIdentifier: string | null;
  readonly nasIpAddress: string | null;
  readonly callingStationId: string | null;
  readonly calledStationId: string | null;
  /** Milliseconds per step, e.g. { firstFactor: 3.1, secondFactor: 0.4, total: 4.0 }. */
  readonly timings: Readonly<Record<string, number>>;
}

export interface AuditRecord extends AuditEntry {
  /** Position in the chain, 1-based, without gaps. */
  readonly seq: number;
  /** SHA-256 (hex) of the previous record, or 64 zeros for the first. */
  readonly prevHash: string;
  /** SHA-256 (hex) over prevHash and this record's canonical content. */
  readonly hash: string;
}

export interface AuditQuery {
  readonly since?: number;
  readonly until?: number;
  /** Matches the username (case-insensitive) or the user id. */
  readonly user?: string;
}

export interface AuditVerifyResult {
  readonly ok: boolean;
  readonly records: number;
  /** One line per problem, naming the record: "seq 17 (id …): hash does not match its content". */
  readonly problems: readonly string[];
}

export interface AccountingEntry {
  readonly receivedAt: number;
  readonly clientName: string;
  readonly clientIp: string;
  readonly statusType: string | null;
  readonly sessionId: string | null;
  readonly username: string | null;
  readonly nasIdentifier: string | null;
  readonly nasIpAddress: string | null;
  /** All attributes as name → values, for later inspection. */
  readonly attributes: Readonly<Record<string, readonly string[]>>;
}

// --- directory sync ----------------------------------------------------------------------------

/** The source of users synced from the directory `<name>` (the `directories.<name>` config key). */
export type DirectorySource = `directory:${string}`;

/** One directory entry as the sync hands it to the store; the sync owns all of these fields. */
export interface DirectoryUserData extends UserProfile {
  /** objectGUID (AD, as the usual GUID text) or entryUUID (OpenLDAP): stable across renames and moves. */
  readonly externalId: string;
  /** The entry's DN as the server spells it (it changes with a rename or a move). */
  readonly dn: string;
  /** false for an account the directory marks disabled (AD userAccountControl 0x2, …). */
  readonly enabled: boolean;
}

/** A user as the sync sees it: the stored user, its directory id and the sync items it is in. */
export interface SyncedUser extends User {
  readonly externalId: string | null;
  /** Names of the sync items (of its directory) whose scope holds the user; empty once gone from every scope. */
  readonly items: readonly string[];
}

/** What a sync run compares the directory with: each synced user's id, state and items, nothing more. */
export interface DirectoryMember {
  readonly externalId: string;
  readonly enabled: boolean;
  /** Sorted by name; empty once gone from every item's scope. */
  readonly items: readonly string[];
}

export interface DirectoryWriteOptions {
  /** The sync item the users were found in. */
  readonly item: string;
  /** Epoch ms written as synced_at. */
  readonly now: number;
  /** Compute the counts exactly, then roll back: nothing changes. */
  readonly dryRun?: boolean;
}

/** A directory user the store could not take; the rest of the batch is stored all the same. */
export interface DirectoryConflict {
  readonly externalId: string;
  readonly username: string;
  readonly message: string;
}

export interface DirectoryUpsertResult {
  readonly added: number;
  /** Changed values (a re-enabled user included). */
  readonly updated: number;
  /** Changed from enabled to disabled by the directory's own flag. */
  readonly disabled: number;
  readonly unchanged: number;
  readonly conflicts: readonly DirectoryConflict[];
}

export interface DirectoryRemoveOptions {
  /** What happens to a user who is left in no item's scope: disabled (tokens kept) or deleted (with its tokens). */
  readonly onRemoved: 'disable' | 'delete';
  readonly now: number;
  readonly dryRun?: boolean;
}

export interface DirectoryRemoveResult {
  /** Left in no item's scope and disabled now (already disabled ones are not counted). */
  readonly disabled: number;
  /** Left in no item's scope and deleted. */
  readonly removed: number;
  /** Dropped from this item but still in another item's scope. */
  readonly kept: number;
}

/** Where the next delta run of one sync item starts. */
export interface SyncState {
  readonly source: DirectorySource;
  readonly item: string;
  /** Fingerprint of the item's definition at its last full run: a changed definition forces a full run. */
  readonly itemHash: string;
  /** The server that gave the watermark (AD: its dsServiceName; OpenLDAP: its URL). */
  readonly server: string | null;
  /** AD: invocationId of that DC; a different one (another DC, a restore) forces a full run. */
  readonly invocationId: string | null;
  /** AD: highestCommittedUSN read before the last run's searches (decimal text, 64-bit). */
  readonly highestUsn: string | null;
  /** OpenLDAP: changes at or after this generalizedTime are fetched by the next delta. */
  readonly modifyTimestamp: string | null;
  /** OpenLDAP: contextCSN of the naming context before the last run (syncprov), when the server keeps one. */
  readonly contextCsn: string | null;
  readonly lastFullAt: number | null;
  readonly lastRunAt: number;
}

export type SyncRunKind = 'full' | 'delta';
/** `refused`: the run would have removed more than max_delete_percent of the synced users (nothing was removed). */
export type SyncRunStatus = 'ok' | 'failed' | 'refused';

/** What one sync run did to the users of one item. */
export interface SyncCounts {
  /** Entries read from the directory with their attributes. */
  readonly seen: number;
  readonly added: number;
  readonly updated: number;
  readonly disabled: number;
  readonly removed: number;
  readonly unchanged: number;
}

export interface NewSyncRun extends SyncCounts {
  readonly source: DirectorySource;
  readonly item: string;
  readonly kind: SyncRunKind;
  readonly status: SyncRunStatus;
  readonly forced: boolean;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** One line per problem (a conflict, the refusal, the failure). */
  readonly errors: readonly string[];
}

export interface SyncRun extends NewSyncRun {
  /** Increasing, assigned by the store. */
  readonly id: number;
}

export interface SyncRunQuery {
  readonly source?: DirectorySource;
  readonly item?: string;
  /** Newest first; default 50. */
  readonly limit?: number;
}

// --- cloud verification ------------------------------------------------------------------------

/** A device that receives pushes: an ntfy topic, or the user's name at Duo. */
export interface PushDevice {
  readonly id: string;
  readonly userId: string;
  /** The provider (config `providers.<name>`) that reaches it. */
  readonly provider: string;
  /** The ntfy topic or the Duo user name. A secret of sorts: never logged. */
  readonly address: string;
  readonly label: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

export interface NewPushDevice {
  readonly id?: string;
  readonly userId: string;
  readonly provider: string;
  readonly address: string;
  readonly label: string;
}

/** A one-time code sent by SMS, voice or email, kept as an HMAC only. */
export interface SentCode {
  readonly id: string;
  readonly userId: string;
  /** 'sms', 'voice' or 'email'. */
  readonly method: string;
  readonly provider: string;
  /** HMAC-SHA256 of the code (src/verify/sent-codes.ts); null when the provider checks its own code (Duo). */
  readonly codeHash: Buffer | null;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  readonly createdAt: number;
}

export type NewSentCode = Omit<SentCode, 'usedAt' | 'createdAt'> & { readonly createdAt: number };

/** A one-time bypass of the second factor (`mfa-gateway bypass add`). */
export interface Bypass {
  readonly id: string;
  readonly userId: string;
  readonly expiresAt: number;
  readonly usesLeft: number;
  readonly reason: string | null;
  readonly createdAt: number;
}

export interface NewBypass {
  readonly userId: string;
  readonly expiresAt: number;
  readonly uses: number;
  readonly reason?: string | null;
  readonly now: number;
}
