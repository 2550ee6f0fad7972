import type Database from 'better-sqlite3';
import type { Bypass, PushDevice, SentCode } from '../types.js';

/**
 * Statements of the cloud-verification tables (migration 3): push devices, sent one-time codes,
 * bypasses, remembered logins and rate-limit events. The store's methods validate their
 * arguments and choose the transaction; these only speak SQL.
 */

interface PushDeviceRow {
  id: string;
  user_id: string;
  provider: string;
  address: string;
  label: string;
  created_at: number;
  last_used_at: number | null;
}

export function toPushDevice(r: PushDeviceRow): PushDevice {
  return { id: r.id, userId: r.user_id, provider: r.provider, address: r.address, label: r.label, createdAt: r.created_at, lastUsedAt: r.last_used_at };
}

interface SentCodeRow {
  id: string;
  user_id: string;
  method: string;
  provider: string;
  code_hash: Buffer | null;
  expires_at: number;
  used_at: number | null;
  created_at: number;
}

export function toSentCode(r: SentCodeRow): SentCode {
  return {
    id: r.id,
    userId: r.user_id,
    method: r.method,
    provider: r.provider,
    codeHash: r.code_hash === null ? null : Buffer.from(r.code_hash),
    expiresAt: r.expires_at,
    usedAt: r.used_at,
    createdAt: r.created_at,
  };
}

interface BypassRow {
  id: string;
  user_id: string;
  expires_at: number;
  uses_left: number;
  reason: string | null;
  created_at: number;
}

export function toBypass(r: BypassRow): Bypass {
  return { id: r.id, userId: r.user_id, expiresAt: r.expires_at, usesLeft: r.uses_left, reason: r.reason, createdAt: r.created_at };
}

export function verificationStatements(db: Database.Database) {
  return {
    deviceInsert: db.prepare<[Omit<PushDeviceRow, 'last_used_at'>]>(
      'INSERT INTO push_devices (id, user_id, provider, address, label, created_at) VALUES (@id, @user_id, @provider, @address, @label, @created_at)',
    ),
    deviceById: db.prepare<[string], PushDeviceRow>('SELECT * FROM push_devices WHERE id = ?'),
    devicesOfUser: db.prepare<[string], PushDeviceRow>('SELECT * FROM push_devices WHERE user_id = ? ORDER BY created_at, id'),
    deviceDelete: db.prepare<[string]>('DELETE FROM push_devices WHERE id = ?'),
    deviceUsed: db.prepare<[{ id: string; now: number }]>('UPDATE push_devices SET last_used_at = @now WHERE id = @id'),

    codeInsert: db.prepare<[Omit<SentCodeRow, 'used_at'>]>(
      'INSERT INTO sent_codes (id, user_id, method, provider, code_hash, expires_at, created_at) VALUES (@id, @user_id, @method, @provider, @code_hash, @expires_at, @created_at)',
    ),
    codesLive: db.prepare<[{ user_id: string; now: number }], SentCodeRow>(
      'SELECT * FROM sent_codes WHERE user_id = @user_id AND expires_at > @now ORDER BY created_at DESC, id',
    ),
    // The conditional write whose row count says who won.
    codeUse: db.prepare<[{ id: string; now: number }]>('UPDATE sent_codes SET used_at = @now WHERE id = @id AND used_at IS NULL AND expires_at > @now'),
    codesPrune: db.prepare<[number]>('DELETE FROM sent_codes WHERE expires_at <= ?'),

    bypassInsert: db.prepare<[BypassRow]>(
      'INSERT INTO bypasses (id, user_id, expires_at, uses_left, reason, created_at) VALUES (@id, @user_id, @expires_at, @uses_left, @reason, @created_at)',
    ),
    bypassById: db.prepare<[string], BypassRow>('SELECT * FROM bypasses WHERE id = ?'),
    bypassesLive: db.prepare<[{ now: number }], BypassRow>('SELECT * FROM bypasses WHERE uses_left > 0 AND expires_at > @now ORDER BY created_at, id'),
    bypassesLiveOfUser: db.prepare<[{ user_id: string; now: number }], BypassRow>(
      'SELECT * FROM bypasses WHERE user_id = @user_id AND uses_left > 0 AND expires_at > @now ORDER BY expires_at, id',
    ),
    bypassTake: db.prepare<[{ id: string; now: number }]>('UPDATE bypasses SET uses_left = uses_left - 1 WHERE id = @id AND uses_left > 0 AND expires_at > @now'),
    bypassesDelete: db.prepare<[string]>('DELETE FROM bypasses WHERE user_id = ?'),
    bypassesPrune: db.prepare<[number]>('DELETE FROM bypasses WHERE expires_at <= ? OR uses_left = 0'),

    rememberPut: db.prepare<[{ user_id: string; client_key: string; expires_at: number }]>(
      `INSERT INTO remembered_logins (user_id, client_key, expires_at) VALUES (@user_id, @client_key, @expires_at)
       ON CONFLICT (user_id, client_key) DO UPDATE SET expires_at = excluded.expires_at`,
    ),
    rememberGet: db.prepare<[{ user_id: string; client_key: string; now: number }], { one: number }>(
      'SELECT 1 AS one FROM remembered_logins WHERE user_id = @user_id AND client_key = @client_key AND expires_at > @now',
    ),
    rememberForget: db.prepare<[string]>('DELETE FROM remembered_logins WHERE user_id = ?'),
    rememberPrune: db.prepare<[number]>('DELETE FROM remembered_logins WHERE expires_at <= ?'),

    rateCount: db.prepare<[{ scope: string; key: string; since: number }], { n: number }>(
      'SELECT COUNT(*) AS n FROM rate_events WHERE scope = @scope AND key = @key AND at > @since',
    ),
    rateInsert: db.prepare<[{ scope: string; key: string; at: number }]>('INSERT INTO rate_events (scope, key, at) VALUES (@scope, @key, @at)'),
    /** Events older than a day: no window is longer. */
    ratePrune: db.prepare<[number]>('DELETE FROM rate_events WHERE at <= ?'),
  };
}

export type VerificationStatements = ReturnType<typeof verificationStatements>;
