import { looksLikeDn, normaliseDn, splitRdns } from './dn.js';

/**
 * Directory groups as reply-attribute mappings see them: a group is named in the configuration by
 * its DN (`CN=VPN-Users,CN=Users,DC=example,DC=test`) or by its name (cn, or on AD also
 * sAMAccountName), and a user's memberships are one set of comparison keys holding both, so a
 * mapping is one Set lookup on the hot path. Pure functions, no I/O: the searches are in
 * ldap-directory.ts.
 */

/** AD's LDAP_MATCHING_RULE_IN_CHAIN: `member` through every level of group nesting. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

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
