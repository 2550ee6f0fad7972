import { splitRdns } from './dn.js';

/**
 * Directory groups as reply-attribute mappings see them: a group is named in the configuration by
 * its DN (`CN=VPN-Users,CN=Users,DC=example,DC=test`) or by its name (cn, or on AD also
 * sAMAccountName), and a user's memberships are one set of comparison keys holding both, so a
 * mapping is one Set lookup on the hot path. Pure functions, no I/O: the searches are in
 * ldap-directory.ts.
 */

/** AD's LDAP_MATCHING_RULE_IN_CHAIN: `member` through every level of group nesting. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

/** Starts like a DN (`cn=`, `CN =`, `2.5.4.3=`): the same test parseLogin uses. */
export function looksLikeDn(text: string): boolean {
  return /^\s*(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=/.test(text);
}

/**
 * A DN in one canonical spelling for comparison, or undefined when it is no DN: attribute types
 * and values lower-cased, blanks around `=` and `,` dropped, escapes (`\,`, `\2C`, `\C3\A9`)
 * decoded and the few characters that need it re-escaped the same way. So `CN=Smith\, J,DC=x`
 * and `cn=smith\2c j, dc=X` compare equal. Multi-valued RDNs (`+`) are compared as written.
 */
export function normaliseDn(dn: string): string | undefined {
  const rdns = splitRdns(dn);
  if (rdns === undefined) return undefined;
  const out: string[] = [];
  for (const rdn of rdns) {
    const eq = firstUnescaped(rdn, '=');
    if (eq <= 0) return undefined;
    const type = rdn.slice(0, eq).trim().toLowerCase();
    const value = unescapeValue(rdn.slice(eq + 1));
    if (type === '' || value === undefined || value === '') return undefined;
    out.push(`${type}=${value.normalize('NFC').toLowerCase().replace(/[\\,]/g, (c) => `\\${c}`)}`);
  }
  return out.join(',');
}

/**
 * The comparison key of a group as the configuration names it: a DN in normaliseDn's spelling,
 * or a name lower-cased; undefined for an empty name or a malformed DN.
 */
export function groupKey(group: string): string | undefined {
  if (looksLikeDn(group)) return normaliseDn(group);
  const name = group.trim().normalize('NFC').toLowerCase();
  return name === '' ? undefined : name;
}

/** A group the directory returned: its DN and its names (cn values; on AD also sAMAccountName). */
export interface FoundGroup {
  readonly dn: string;
  readonly names: readonly string[];
}

/** The comparison keys of a user's groups: every DN (normalised) and every name (lower-cased). */
export function membershipKeys(groups: Iterable<FoundGroup>): ReadonlySet<string> {
  const keys = new Set<string>();
  for (const group of groups) {
    const dn = normaliseDn(group.dn);
    if (dn !== undefined) keys.add(dn);
    for (const name of group.names) {
      // A name that looks like a DN would be read as one in the configuration: never as a name.
      const key = looksLikeDn(name) ? undefined : groupKey(name);
      if (key !== undefined) keys.add(key);
    }
  }
  return keys;
}

/** The first mapping whose group the user is in (the configuration's order decides), or undefined. */
export function firstMatch<T extends { readonly key: string }>(mappings: readonly T[], memberships: ReadonlySet<string>): T | undefined {
  return mappings.find((m) => memberships.has(m.key));
}

/**
 * Where to look for groups: the domain (the trailing `DC=` RDNs of the base DN, as written), so a
 * group outside the users' base (AD's CN=Users while users live in OU=Staff) is still found. A
 * base without DC= RDNs (`o=Example`) is used as it is.
 */
export function groupSearchBase(baseDn: string): string {
  const rdns = splitRdns(baseDn);
  if (rdns === undefined) return baseDn;
  let first = rdns.length;
  while (first > 0 && /^\s*dc\s*=/i.test(rdns[first - 1] ?? '')) first--;
  return first === rdns.length || first === 0 ? baseDn : rdns.slice(first).map((r) => r.trim()).join(',');
}

function firstUnescaped(text: string, char: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === char) return i;
  }
  return -1;
}

/** RFC 4514 §3 value: `\` + special character or two hex digits (UTF-8 octets); unescaped outer blanks dropped. */
function unescapeValue(raw: string): string | undefined {
  const bytes: number[] = [];
  let end = 0; // octets up to the last one that must stay (escaped, or not a blank)
  let i = 0;
  while (i < raw.length && raw[i] === ' ') i++;
  for (; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\') {
      const pair = raw.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
      } else {
        const cp = raw.codePointAt(i + 1);
        if (cp === undefined) return undefined;
        const next = String.fromCodePoint(cp);
        bytes.push(...Buffer.from(next, 'utf8'));
        i += next.length;
      }
      end = bytes.length;
    } else {
      // Whole code points: a surrogate pair is one character.
      const ch = String.fromCodePoint(raw.codePointAt(i) ?? 0xfffd);
      i += ch.length - 1;
      bytes.push(...Buffer.from(ch, 'utf8'));
      if (ch !== ' ') end = bytes.length;
    }
  }
  return Buffer.from(bytes.slice(0, end)).toString('utf8');
}
