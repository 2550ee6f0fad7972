import { createHash } from 'node:crypto';
import { AndFilter, EqualityFilter, ExtensibleFilter, FilterParser, type Filter } from 'ldapts';
import type { ResolvedDirectory } from '../../config/config.js';
import type { SyncAttributesConfig, SyncConfig } from '../../config/sync-schema.js';
import type { DirectorySource, UserProfile } from '../../store/types.js';

/**
 * A directory's `sync:` section turned into what a run needs: the flavour's defaults filled in
 * (attribute names, the user filter, the id and change attributes), each item's search, and a
 * fingerprint per item so that a changed definition forces a full run.
 */

/** AD's LDAP_MATCHING_RULE_IN_CHAIN: `memberOf` through every level of group nesting. */
export const IN_CHAIN_RULE = '1.2.840.113556.1.4.1941';

export type Flavour = 'ad' | 'ldap';

/** User field → directory attribute (null: not synced; the login name always is). */
export type AttributeMap = { readonly [K in keyof UserProfile]: K extends 'username' ? string : string | null };

/** The attributes both flavours share (inetOrgPerson's, which AD has too). */
const COMMON_ATTRIBUTES = {
  firstName: 'givenName',
  lastName: 'sn',
  email: 'mail',
  phone: 'telephoneNumber',
  mobile: 'mobile',
  language: 'preferredLanguage',
  defaultMethod: null,
} as const;

const DEFAULT_ATTRIBUTES: Readonly<Record<Flavour, AttributeMap>> = {
  ad: { username: 'sAMAccountName', upn: 'userPrincipalName', ...COMMON_ATTRIBUTES },
  ldap: { username: 'uid', upn: null, ...COMMON_ATTRIBUTES },
};

/** Person accounts only: on AD `objectClass=user` alone would take computer accounts too. */
const DEFAULT_USER_FILTER: Readonly<Record<Flavour, string>> = {
  ad: '(&(objectCategory=person)(objectClass=user))',
  ldap: '(|(objectClass=person)(objectClass=posixAccount))',
};

export const ID_ATTRIBUTE: Readonly<Record<Flavour, string>> = { ad: 'objectGUID', ldap: 'entryUUID' };

export interface SyncItem {
  readonly name: string;
  readonly kind: 'ou' | 'group' | 'filter';
  /** Where the item's users are searched. */
  readonly base: string;
  readonly scope: 'one' | 'sub';
  /** The group's DN (group items). */
  readonly group: string | undefined;
  readonly nested: boolean;
  /**
   * The users of the item, as one filter under `base`: user filter AND item filter (filter items)
   * AND, on AD, memberOf in chain (group items). OpenLDAP group items resolve membership
   * themselves and use only the user filter.
   */
  readonly filter: Filter;
  readonly method: string | undefined;
  readonly language: string | undefined;
  /** Changes whenever anything that decides the item's users or their values changes. */
  readonly hash: string;
}

export interface SyncPlan {
  readonly directory: ResolvedDirectory;
  readonly name: string;
  readonly source: DirectorySource;
  readonly flavour: Flavour;
  readonly settings: SyncConfig;
  readonly attributes: AttributeMap;
  readonly idAttribute: string;
  readonly userFilter: Filter;
  /** Everything a user entry is read with. */
  readonly readAttributes: readonly string[];
  readonly binaryAttributes: readonly string[];
  readonly items: readonly SyncItem[];
}

export function attributeMap(flavour: Flavour, overrides: SyncAttributesConfig): AttributeMap {
  const d = DEFAULT_ATTRIBUTES[flavour];
  const pick = (value: string | null | undefined, dflt: string | null): string | null => (value === undefined ? dflt : value);
  return {
    username: overrides.username ?? d.username,
    upn: pick(overrides.upn, d.upn),
    firstName: pick(overrides.first_name, d.firstName),
    lastName: pick(overrides.last_name, d.lastName),
    email: pick(overrides.email, d.email),
    phone: pick(overrides.phone, d.phone),
    mobile: pick(overrides.mobile, d.mobile),
    language: pick(overrides.language, d.language),
    defaultMethod: pick(overrides.default_method, d.defaultMethod),
  };
}

/** The plan of a directory with a `sync:` section; undefined without one. */
export function syncPlan(directory: ResolvedDirectory): SyncPlan | undefined {
  const settings = directory.sync;
  if (settings === undefined) return undefined;
  const flavour = directory.flavour;
  const attributes = attributeMap(flavour, settings.attributes);
  const userFilterText = settings.user_filter ?? DEFAULT_USER_FILTER[flavour];
  const userFilter = FilterParser.parseString(userFilterText);
  const idAttribute = ID_ATTRIBUTE[flavour];
  const flagAttributes =
    flavour === 'ad'
      ? ['userAccountControl']
      : [
          ...(settings.disabled_when.includes('pwd_account_locked_time') ? ['pwdAccountLockedTime'] : []),
          ...(settings.disabled_when.includes('shadow_expire') ? ['shadowExpire'] : []),
        ];
  const mapped = Object.values(attributes).filter((a): a is string => a !== null);
  const readAttributes = [...new Set([idAttribute, ...mapped, ...flagAttributes])];
  const common = {
    flavour,
    userFilter: userFilterText,
    attributes,
    disabledWhen: flavour === 'ad' ? ['userAccountControl'] : settings.disabled_when,
    baseDn: directory.base_dn,
    defaults: settings.defaults,
  };
  const items = settings.items.map((item): SyncItem => {
    const kind = item.ou !== undefined ? 'ou' : item.group !== undefined ? 'group' : 'filter';
    const base = item.ou ?? (kind === 'filter' ? (item.base ?? directory.base_dn) : directory.base_dn);
    let filter: Filter = FilterParser.parseString(userFilterText);
    if (kind === 'filter' && item.filter !== undefined) filter = new AndFilter({ filters: [filter, FilterParser.parseString(item.filter.trim())] });
    if (kind === 'group' && flavour === 'ad' && item.group !== undefined) {
      // memberOf in chain follows nesting; a plain memberOf only direct membership.
      const member = item.nested
        ? new ExtensibleFilter({ matchType: 'memberOf', rule: IN_CHAIN_RULE, value: item.group })
        : new EqualityFilter({ attribute: 'memberOf', value: item.group });
      filter = new AndFilter({ filters: [filter, member] });
    }
    const scope = kind === 'group' ? 'sub' : item.scope;
    const hash = createHash('sha256')
      .update(JSON.stringify({ ...common, item: { kind, base, scope, group: item.group, nested: item.nested, filter: item.filter, method: item.method, language: item.language } }))
      .digest('hex')
      .slice(0, 32);
    return { name: item.name, kind, base, scope, group: item.group, nested: item.nested, filter, method: item.method, language: item.language, hash };
  });
  return {
    directory,
    name: directory.name,
    source: `directory:${directory.name}`,
    flavour,
    settings,
    attributes,
    idAttribute,
    userFilter,
    readAttributes,
    binaryAttributes: flavour === 'ad' ? ['objectGUID'] : [],
    items,
  };
}
