import type { RejectReason } from '../auth/decision.js';

/**
 * Active Directory answers a failed simple bind with LDAP result 49 (invalidCredentials) and a
 * diagnostic text such as
 *
 *   80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1
 *
 * The `data XXX` part is the Win32 error (hex) that says why; the DSID differs between Windows
 * builds and Samba, so only `data` is read. Anything else (OpenLDAP's bare 49, an unknown code,
 * no text at all) is a plain bad password: the directory did not say more, and guessing a more
 * specific reason would tell an attacker more than the directory does.
 */

/** The `data` codes AD is known to send for a simple bind, and what each means for the audit. */
export const AD_BIND_CODES: ReadonlyMap<string, RejectReason> = new Map<string, RejectReason>([
  ['52e', 'bad_password'], // ERROR_LOGON_FAILURE: wrong password (and, on AD, unknown user)
  ['525', 'user_unknown'], // ERROR_NO_SUCH_USER
  ['530', 'logon_restricted'], // ERROR_INVALID_LOGON_HOURS
  ['531', 'logon_restricted'], // ERROR_INVALID_WORKSTATION
  ['532', 'password_expired'], // ERROR_PASSWORD_EXPIRED
  ['533', 'account_disabled'], // ERROR_ACCOUNT_DISABLED
  ['701', 'account_expired'], // ERROR_ACCOUNT_EXPIRED
  ['773', 'must_change_password'], // ERROR_PASSWORD_MUST_CHANGE
  ['775', 'locked_out'], // ERROR_ACCOUNT_LOCKED_OUT
]);

export interface AdBindDiagnostic {
  readonly reason: RejectReason;
  /** `data 52e` as AD wrote it (lower case, no leading zeros), when the text had one. */
  readonly diagnostic?: string;
}

// `data` then the hex code, ended by a comma, blank, NUL or the end of the text.
const DATA_CODE = /(?:^|[\s,])data\s+(?:0x)?([0-9a-f]{1,8})(?=$|[\s,\0])/i;

/** The hex Win32 code after `data` (`'52e'`), or undefined when the text carries none. */
export function adDataCode(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const match = DATA_CODE.exec(text);
  if (match?.[1] === undefined) return undefined;
  return match[1].toLowerCase().replace(/^0+(?=.)/, '');
}

/** The reject reason for a bind the directory refused with invalidCredentials (49). */
export function adBindRejection(text: string | undefined): AdBindDiagnostic {
  const code = adDataCode(text);
  if (code === undefined) return { reason: 'bad_password' };
  return { reason: AD_BIND_CODES.get(code) ?? 'bad_password', diagnostic: `data ${code}` };
}
