import type { OathToken } from '../store/types.js';

/** Second-factor methods the gateway knows by name (inline keywords and defaults use these). */
export type MethodName = 'totp' | 'hotp' | 'push' | 'sms' | 'phone' | 'voice' | 'email';

/** Keywords a user may append to the password to pick an out-of-band method: `secret,push`. */
export const INLINE_KEYWORDS: ReadonlySet<string> = new Set(['push', 'sms', 'phone', 'call', 'voice', 'email']);

export type CodeCheck =
  | { readonly ok: true; readonly method: 'totp' | 'hotp'; readonly token: OathToken }
  | { readonly ok: false; readonly reason: 'bad_code' | 'code_replayed' };
