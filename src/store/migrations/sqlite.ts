import type { Migration } from './migration.js';

/**
 * The SQLite schema, as numbered migrations. Written to be mirrored by a PostgreSQL engine with
 * the same tables, columns and meaning:
 * - plain types only: TEXT, BIGINT (epoch ms and counters), INTEGER, BLOB (→ BYTEA); booleans are
 *   INTEGER 0/1 with a CHECK (→ BOOLEAN or the same SMALLINT + CHECK);
 * - `*_key` columns hold the case-folded name (computed in TypeScript, not by SQL `lower()`,
 *   which differs between engines), with ordinary UNIQUE indexes;
 * - `audit_log.seq` is `INTEGER PRIMARY KEY` (SQLite's rowid alias, for speed; → BIGINT PRIMARY
 *   KEY) and is assigned by the store, never by the database, because it is part of the hash;
 * - `accounting.id` is the only database-assigned key (→ BIGINT GENERATED ALWAYS AS IDENTITY);
 * - the triggers that make `audit_log` append-only guard against bugs, not against someone with
 *   write access to the file: that is what the hash chain and its head are for.
 */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE users (
  id              TEXT    NOT NULL PRIMARY KEY,
  username        TEXT    NOT NULL,
  username_key    TEXT    NOT NULL,
  upn             TEXT,
  upn_key         TEXT,
  first_name      TEXT,
  last_name       TEXT,
  email           TEXT,
  phone           TEXT,
  mobile          TEXT,
  default_method  TEXT,
  language        TEXT,
  enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  blocked         INTEGER NOT NULL CHECK (blocked IN (0, 1)),
  password_hash   TEXT,
  source          TEXT    NOT NULL,
  created_at      BIGINT  NOT NULL,
  updated_at      BIGINT  NOT NULL,
  synced_at       BIGINT
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_upn_key ON users (upn_key);

CREATE TABLE oath_tokens (
  id              TEXT    NOT NULL PRIMARY KEY,
  user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind            TEXT    NOT NULL CHECK (kind IN ('totp', 'hotp')),
  label           TEXT    NOT NULL,
  algorithm       TEXT    NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
  digits          INTEGER NOT NULL,
  period          INTEGER NOT NULL,
  counter         BIGINT  NOT NULL,
  sealed_secret   BLOB    NOT NULL,
  last_used_step  BIGINT,
  enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  created_at      BIGINT  NOT NULL,
  last_used_at    BIGINT
);
CREATE INDEX oath_tokens_user_id ON oath_tokens (user_id);

CREATE TABLE lockouts (
  user_id         TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  failures        INTEGER NOT NULL,
  locked_until    BIGINT,
  updated_at      BIGINT  NOT NULL
);

CREATE TABLE single_use_claims (
  kind            TEXT    NOT NULL,
  claim_key       TEXT    NOT NULL,
  claimed_at      BIGINT  NOT NULL,
  expires_at      BIGINT  NOT NULL,
  PRIMARY KEY (kind, claim_key)
);
CREATE INDEX single_use_claims_expires_at ON single_use_claims (expires_at);

CREATE TABLE audit_log (
  seq                  INTEGER NOT NULL PRIMARY KEY,
  id                   TEXT    NOT NULL UNIQUE,
  received_at          BIGINT  NOT NULL,
  decided_at           BIGINT  NOT NULL,
  attempt_id           TEXT    NOT NULL,
  protocol             TEXT    NOT NULL,
  result               TEXT    NOT NULL,
  reason               TEXT    NOT NULL,
  user_id              TEXT,
  username             TEXT    NOT NULL,
  username_key         TEXT    NOT NULL,
  first_name           TEXT,
  last_name            TEXT,
  email                TEXT,
  phone                TEXT,
  device_token         TEXT,
  first_factor         TEXT,
  method               TEXT,
  provider             TEXT,
  provider_message_id  TEXT,
  gateway_name         TEXT    NOT NULL,
  gateway_ip           TEXT,
  client_name          TEXT,
  client_ip            TEXT    NOT NULL,
  nas_identifier       TEXT,
  nas_ip_address       TEXT,
  calling_station_id   TEXT,
  called_station_id    TEXT,
  timings              TEXT    NOT NULL,
  prev_hash            TEXT    NOT NULL,
  hash                 TEXT    NOT NULL
);
-- Only indexes that grow at their right-hand edge (seq, time-ordered ids, received_at): an index
-- on user name or id would dirty one random page per record in every group commit. Exports by
-- user filter while paging through seq.
CREATE INDEX audit_log_received_at ON audit_log (received_at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The chain head: seq and hash of the last record, updated in the same transaction as every
-- append, so a removed tail (which leaves a chain that is intact in itself) is still detected.
CREATE TABLE audit_head (
  id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  seq   BIGINT  NOT NULL,
  hash  TEXT    NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE accounting (
  id               INTEGER NOT NULL PRIMARY KEY,
  received_at      BIGINT  NOT NULL,
  client_name      TEXT    NOT NULL,
  client_ip        TEXT    NOT NULL,
  status_type      TEXT,
  session_id       TEXT,
  username         TEXT,
  nas_identifier   TEXT,
  nas_ip_address   TEXT,
  attributes       TEXT    NOT NULL
);
CREATE INDEX accounting_received_at ON accounting (received_at);
`,
  },
  {
    version: 2,
    name: 'directory-sync',
    sql: `
-- Directory sync: a synced user is matched on (source, external_id): objectGUID on AD, entryUUID
-- on OpenLDAP. Local users keep external_id NULL (NULLs never collide in a UNIQUE index, in
-- SQLite as in PostgreSQL).
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_source_external_id ON users (source, external_id);

-- Which sync items (of the user's own directory) hold the user in scope. A user left in none is
-- disabled or deleted, as the directory's on_removed says.
CREATE TABLE sync_memberships (
  user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  item        TEXT    NOT NULL,
  since       BIGINT  NOT NULL,
  PRIMARY KEY (user_id, item)
);

-- Where the next delta of each (directory, item) starts.
CREATE TABLE sync_state (
  source            TEXT    NOT NULL,
  item              TEXT    NOT NULL,
  item_hash         TEXT    NOT NULL,
  server            TEXT,
  invocation_id     TEXT,
  highest_usn       TEXT,
  modify_timestamp  TEXT,
  context_csn       TEXT,
  last_full_at      BIGINT,
  last_run_at       BIGINT  NOT NULL,
  PRIMARY KEY (source, item)
);

-- One row per item per run (→ id BIGINT GENERATED ALWAYS AS IDENTITY).
CREATE TABLE sync_runs (
  id           INTEGER NOT NULL PRIMARY KEY,
  source       TEXT    NOT NULL,
  item         TEXT    NOT NULL,
  kind         TEXT    NOT NULL CHECK (kind IN ('full', 'delta')),
  status       TEXT    NOT NULL CHECK (status IN ('ok', 'failed', 'refused')),
  forced       INTEGER NOT NULL CHECK (forced IN (0, 1)),
  started_at   BIGINT  NOT NULL,
  finished_at  BIGINT  NOT NULL,
  seen         INTEGER NOT NULL,
  added        INTEGER NOT NULL,
  updated      INTEGER NOT NULL,
  disabled     INTEGER NOT NULL,
  removed      INTEGER NOT NULL,
  unchanged    INTEGER NOT NULL,
  errors       TEXT    NOT NULL
);
CREATE INDEX sync_runs_source_item ON sync_runs (source, item, id);
`,
  },
  {
    version: 3,
    name: 'cloud-verification',
    sql: `
-- PIN for phone calls in PIN mode (scrypt hash), and whether the user must choose a new one.
ALTER TABLE users ADD COLUMN pin_hash TEXT;
ALTER TABLE users ADD COLUMN pin_must_change INTEGER NOT NULL DEFAULT 0 CHECK (pin_must_change IN (0, 1));

-- Devices that receive pushes: an ntfy topic (a long random name the app subscribed to), or a
-- Duo user name. The address is a secret of sorts (anyone subscribed sees the prompts), never logged.
CREATE TABLE push_devices (
  id            TEXT    NOT NULL PRIMARY KEY,
  user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  provider      TEXT    NOT NULL,
  address       TEXT    NOT NULL,
  label         TEXT    NOT NULL,
  created_at    BIGINT  NOT NULL,
  last_used_at  BIGINT
);
CREATE INDEX push_devices_user_id ON push_devices (user_id);

-- One-time codes sent by SMS, voice or email: only an HMAC of the code is kept. A NULL code_hash
-- means the provider made the code and checks it (Duo SMS passcodes).
CREATE TABLE sent_codes (
  id          TEXT    NOT NULL PRIMARY KEY,
  user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  method      TEXT    NOT NULL,
  provider    TEXT    NOT NULL,
  code_hash   BLOB,
  expires_at  BIGINT  NOT NULL,
  used_at     BIGINT,
  created_at  BIGINT  NOT NULL
);
CREATE INDEX sent_codes_user_id ON sent_codes (user_id, expires_at);

-- One-time bypasses (mfa-gateway bypass add): the second factor is skipped while uses_left > 0
-- and now < expires_at.
CREATE TABLE bypasses (
  id          TEXT    NOT NULL PRIMARY KEY,
  user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  expires_at  BIGINT  NOT NULL,
  uses_left   INTEGER NOT NULL CHECK (uses_left >= 0),
  reason      TEXT,
  created_at  BIGINT  NOT NULL
);
CREATE INDEX bypasses_user_id ON bypasses (user_id);

-- Remembered successes: (user, client address) → until when the second factor is skipped.
CREATE TABLE remembered_logins (
  user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_key  TEXT    NOT NULL,
  expires_at  BIGINT  NOT NULL,
  PRIMARY KEY (user_id, client_key)
);

-- Sends and pushes counted for rate limits (push fatigue, toll fraud): scope ('push', 'sms', …),
-- key (a user id, or '*' for the whole gateway) and time.
CREATE TABLE rate_events (
  scope  TEXT    NOT NULL,
  key    TEXT    NOT NULL,
  at     BIGINT  NOT NULL
);
CREATE INDEX rate_events_scope_key_at ON rate_events (scope, key, at);
`,
  },
  {
    version: 4,
    name: 'directory-dn',
    sql: `
-- The directory entry's DN of a synced user (NULL for local users): the first factor binds with it
-- instead of searching for the entry first, and a login given as a DN finds the user by its key
-- (the DN in one normalised, lower-case spelling). Not unique: two directories may serve one tree.
ALTER TABLE users ADD COLUMN directory_dn TEXT;
ALTER TABLE users ADD COLUMN dn_key TEXT;
CREATE INDEX users_dn_key ON users (dn_key);
-- A delta run reads only changed entries: the next run of every item is a full one, which stores
-- the DN of every user already synced.
UPDATE sync_state SET last_full_at = NULL;
`,
  },
];
