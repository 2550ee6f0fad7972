import type {
  AccountingEntry,
  Bypass,
  NewBypass,
  NewPushDevice,
  NewSentCode,
  PushDevice,
  SentCode,
  AuditEntry,
  AuditQuery,
  AuditRecord,
  AuditVerifyResult,
  DirectoryMember,
  DirectoryRemoveOptions,
  DirectoryRemoveResult,
  DirectorySource,
  DirectoryUpsertResult,
  DirectoryUserData,
  DirectoryWriteOptions,
  LockoutState,
  NewOathToken,
  NewUser,
  OathToken,
  NewSyncRun,
  SyncedUser,
  SyncRun,
  SyncRunQuery,
  SyncState,
  User,
  UserIndexStats,
  UserPatch,
} from './types.js';

export type * from './types.js';

/**
 * The persistence interface. Every method is asynchronous because the PostgreSQL engine is,
 * although the SQLite engine is synchronous underneath. The flow and the CLI talk only to this.
 *
 * Single-use facts are claimed with one conditional write whose row count says who won, so two
 * requests (or two gateway nodes) racing can never both succeed.
 */
export interface Store {
  readonly engine: 'sqlite' | 'postgres';

  // --- users -------------------------------------------------------------------------------
  /** Throws AlreadyExistsError when the username (case-insensitive) or UPN is taken. */
  createUser(user: NewUser): Promise<User>;
  getUser(id: string): Promise<User | undefined>;
  /**
   * Case-insensitive match on username or UPN; else, for a login given as a DN, the one synced
   * user whose entry it names.
   */
  findUser(name: string): Promise<User | undefined>;
  /**
   * Loads every user's login names into memory, so that findUser costs one hash probe (and one
   * read of the user) whatever the number of users; writes of this store keep it current, and a
   * name another process added or changed is found in the store and then added. The gateway calls
   * it at start; short-lived commands need not.
   */
  indexUserNames(): Promise<UserIndexStats>;
  listUsers(): Promise<User[]>;
  /** Throws NotFoundError. Returns the updated user. */
  updateUser(id: string, patch: UserPatch): Promise<User>;
  /** Deletes the user and its tokens and lockout state. Throws NotFoundError. */
  deleteUser(id: string): Promise<void>;

  // --- directory sync ----------------------------------------------------------------------
  // Every method here touches only users whose source is the given `directory:<name>`: local
  // users and other directories' users are never changed (a name they hold is a conflict).
  /**
   * Adds or updates the users found in one sync item, matched on (source, externalId), in ONE
   * transaction, and records that they are in `opts.item`'s scope. A user whose name or UPN is
   * held by another user is not stored and comes back as a conflict; the rest commit.
   */
  upsertDirectoryUsers(source: DirectorySource, users: readonly DirectoryUserData[], opts: DirectoryWriteOptions): Promise<DirectoryUpsertResult>;
  /** The users of one source with their external ids and item memberships, by username. */
  listUsersBySource(source: DirectorySource): Promise<SyncedUser[]>;
  /** Lean and fast (a run reads it for 100 000 users): id, enabled and items of every synced user of the source. */
  listDirectoryMembers(source: DirectorySource): Promise<DirectoryMember[]>;
  /**
   * Drops `item` from these users' memberships (one transaction); a user left in no item is
   * disabled (tokens kept) or deleted (tokens too), as `opts.onRemoved` says.
   */
  removeDirectoryUsers(source: DirectorySource, item: string, externalIds: readonly string[], opts: DirectoryRemoveOptions): Promise<DirectoryRemoveResult>;
  getSyncState(source: DirectorySource, item: string): Promise<SyncState | undefined>;
  /** Inserts or replaces the state of (source, item). */
  putSyncState(state: SyncState): Promise<void>;
  recordSyncRun(run: NewSyncRun): Promise<SyncRun>;
  /** Newest first. */
  listSyncRuns(query?: SyncRunQuery): Promise<SyncRun[]>;

  // --- OATH tokens -------------------------------------------------------------------------
  addToken(token: NewOathToken): Promise<OathToken>;
  listTokens(userId: string): Promise<OathToken[]>;
  getToken(id: string): Promise<OathToken | undefined>;
  /** Throws NotFoundError. */
  deleteToken(id: string): Promise<void>;
  /**
   * TOTP replay protection: records `step` as used when it is later than the token's last used
   * step. True when this call won; false when that step (or a later one) was already used.
   */
  claimTotpStep(tokenId: string, step: number, now: number): Promise<boolean>;
  /**
   * HOTP: moves the counter from `expected` to `next` (> expected). False when the counter was
   * no longer `expected` (another request used it first).
   */
  advanceHotpCounter(tokenId: string, expected: number, next: number, now: number): Promise<boolean>;

  // --- cloud verification ------------------------------------------------------------------
  addPushDevice(device: NewPushDevice): Promise<PushDevice>;
  listPushDevices(userId: string): Promise<PushDevice[]>;
  /** Throws NotFoundError. */
  deletePushDevice(id: string): Promise<void>;
  markPushDeviceUsed(id: string, now: number): Promise<void>;
  addSentCode(code: NewSentCode): Promise<void>;
  /** Codes of the user not expired yet (used ones included: a second use is a replay), newest first. */
  listLiveSentCodes(userId: string, now: number): Promise<SentCode[]>;
  /** Marks the code used; false when it was used (or expired) already: one conditional write. */
  useSentCode(id: string, now: number): Promise<boolean>;
  addBypass(bypass: NewBypass): Promise<Bypass>;
  /** Live bypasses (uses left, not expired), of one user or of all. */
  listBypasses(userId: string | undefined, now: number): Promise<Bypass[]>;
  /** Takes one use of a live bypass of the user; the bypass taken, or undefined when none is left. */
  useBypass(userId: string, now: number): Promise<Bypass | undefined>;
  /** Removes all bypasses of the user; how many. */
  deleteBypasses(userId: string): Promise<number>;
  /** Remembers a success of the user from `clientKey` until `expiresAt`. */
  rememberLogin(userId: string, clientKey: string, expiresAt: number): Promise<void>;
  isLoginRemembered(userId: string, clientKey: string, now: number): Promise<boolean>;
  /** Forgets every remembered login of the user (a fraud report, an admin). */
  forgetLogins(userId: string): Promise<void>;
  /**
   * Rate limit: records one event of (scope, key) at `now` when fewer than `limit` happened in
   * the `windowMs` before, atomically. True when recorded (under the limit).
   */
  takeRateSlot(scope: string, key: string, windowMs: number, limit: number, now: number): Promise<boolean>;

  // --- lockout -----------------------------------------------------------------------------
  getLockout(userId: string, now: number): Promise<LockoutState>;
  /**
   * Adds one failure atomically. When the count reaches `maxFailures` the user is locked until
   * now + lockMs and the count starts again. An expired lock is forgotten first.
   */
  registerFailure(userId: string, now: number, maxFailures: number, lockMs: number): Promise<LockoutState>;
  /** Forgets failures and any lock (after a success, or by an admin). */
  clearFailures(userId: string): Promise<void>;

  // --- single-use facts (challenge State nonces, callback tokens) ---------------------------
  /** True when (kind, key) was not claimed before; the claim is forgotten after `expiresAt`. */
  claimOnce(kind: string, key: string, expiresAt: number, now: number): Promise<boolean>;

  // --- audit -------------------------------------------------------------------------------
  /**
   * Appends one record to the hash chain. Records appended in the same event-loop turn are
   * committed together in one transaction (group commit); the promise resolves only once the
   * record is durably committed, so the caller may then answer.
   */
  appendAudit(entry: AuditEntry): Promise<AuditRecord>;
  /** In seq order. */
  queryAudit(query?: AuditQuery): AsyncIterable<AuditRecord>;
  verifyAudit(): Promise<AuditVerifyResult>;

  // --- accounting --------------------------------------------------------------------------
  recordAccounting(entry: AccountingEntry): Promise<void>;
  countAccounting(): Promise<number>;

  // --- change notice -----------------------------------------------------------------------
  /**
   * A number that changes whenever another process (the CLI, another node) committed a change.
   * Used by long-lived caches to notice changes without polling every row.
   */
  changeMarker(): Promise<string>;

  // --- maintenance -------------------------------------------------------------------------
  /** Online, consistent copy of the whole store to `file` (which must not exist). */
  backup(file: string): Promise<void>;
  /** Drops expired single-use claims. */
  prune(now: number): Promise<void>;
  /** Flushes pending audit records, then closes. */
  close(): Promise<void>;
}
