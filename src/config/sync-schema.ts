import { FilterParser } from 'ldapts';
import { z } from 'zod';

/**
 * The `sync:` section of a directory (`directories.<name>.sync`): which directory users the
 * gateway keeps a local copy of, how their attributes map, and how often it looks. Kept apart from
 * schema.ts, which only names it; nothing here reaches the network (filters are parsed, not sent).
 */

const NAME = /^[A-Za-z0-9_-]+$/;

/** An attribute type name or OID (RFC 4512 §2.5), as written in a filter or an attribute list. */
const attributeName = z.string().regex(/^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$/, 'must be an LDAP attribute name such as telephoneNumber');

/** A mapped attribute: its name, or null for "not synced" (the field stays empty). */
const mappedAttribute = attributeName.nullable().optional();

/** A second-factor method name as the verify/ module names methods ('totp', 'hotp', …). */
export const syncMethodName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a method name such as totp');

/** A BCP 47 language tag, loosely: `en`, `de-CH`, `zh-Hant-TW`. */
export const syncLanguage = z.string().regex(/^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$/, 'must be a language tag such as en or de-CH');

/** true when `value` has the shape of a DN: RDNs of `type=value`, at least one. */
export function looksLikeDn(value: string): boolean {
  return /^\s*(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=\s*\S/.test(value);
}

const dn = z.string().min(1).refine(looksLikeDn, 'must be a DN such as OU=Staff,DC=example,DC=test');

/** One parenthesised filter: balanced, nothing after its closing parenthesis, and ldapts can parse it. */
function parsesAsFilter(value: string): boolean {
  const filter = value.trim();
  let depth = 0;
  for (let i = 0; i < filter.length; i++) {
    const c = filter[i];
    if (c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0 && i !== filter.length - 1) return false;
    if (depth < 0) return false;
  }
  if (depth !== 0 || !filter.startsWith('(')) return false;
  try {
    FilterParser.parseString(filter);
    return true;
  } catch {
    return false;
  }
}

const ldapFilter = z.string().min(1).refine(parsesAsFilter, 'must be an LDAP filter in parentheses such as (department=Sales)');

export const syncItemSchema = z
  .strictObject({
    /** Names the item in `sync run --item`, `sync status` and the store's memberships. */
    name: z.string().regex(NAME, 'letters, digits, _ - only'),
    /** An OU (or any container): the users under it. */
    ou: dn.optional(),
    /** A security group: its members, members of nested groups included. */
    group: dn.optional(),
    /** An LDAP filter, ANDed with `user_filter`, searched under `base`. */
    filter: ldapFilter.optional(),
    /** Where a `filter` item searches; default: the directory's base_dn. */
    base: dn.optional(),
    /** `ou` and `filter` items: `sub` (the whole subtree) or `one` (direct children only). */
    scope: z.enum(['sub', 'one']).default('sub'),
    /** `group` items: members of nested groups count too. */
    nested: z.boolean().default(true),
    /** Default method of this item's users when their mapped attribute is empty. */
    method: syncMethodName.optional(),
    /** Default language of this item's users when their mapped attribute is empty. */
    language: syncLanguage.optional(),
  })
  .superRefine((item, ctx) => {
    const kinds = (['ou', 'group', 'filter'] as const).filter((k) => item[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `needs exactly one of ou, group or filter (has ${kinds.length === 0 ? 'none' : kinds.join(', ')})` });
    }
    if (item.base !== undefined && item.filter === undefined) {
      ctx.addIssue({ code: 'custom', path: ['base'], message: 'only a filter item takes a base (an ou item is its own base)' });
    }
  });
export type SyncItemConfig = z.infer<typeof syncItemSchema>;

/** Which directory attribute fills which user field; unset keys take the flavour's default, null turns a field off. */
export const syncAttributesSchema = z.strictObject({
  username: attributeName.optional(),
  upn: mappedAttribute,
  first_name: mappedAttribute,
  last_name: mappedAttribute,
  email: mappedAttribute,
  phone: mappedAttribute,
  mobile: mappedAttribute,
  language: mappedAttribute,
  default_method: mappedAttribute,
});
export type SyncAttributesConfig = z.infer<typeof syncAttributesSchema>;

export const syncSchema = z
  .strictObject({
    /** false: configured but not scheduled (`sync run` still works). */
    enabled: z.boolean().default(true),
    /** Minutes between runs, from 1 to 1440 (24 hours). */
    interval_minutes: z.number().int().min(1).max(1440).default(60),
    /** A full reconcile at least this often (hours); the runs in between are deltas. */
    full_every_hours: z.number().min(1).max(720).default(24),
    /** Entries per page of a paged search (AD's MaxPageSize is 1000). */
    page_size: z.number().int().min(10).max(5000).default(500),
    /** Users that left every item's scope: `disable` (tokens kept) or `delete` (tokens too). */
    on_removed: z.enum(['disable', 'delete']).default('disable'),
    /**
     * A run that would disable or delete more than this share (%) of the directory's synced users
     * stops before removing anyone, unless forced: an empty search after a misconfiguration must
     * not wipe the users out.
     */
    max_delete_percent: z.number().min(0).max(100).default(10),
    /** Which entries are users; default per flavour (AD: person users; ldap: person or posixAccount). */
    user_filter: ldapFilter.optional(),
    /** OpenLDAP: what marks an account disabled. AD always uses userAccountControl bit 0x2. */
    disabled_when: z.array(z.enum(['pwd_account_locked_time', 'shadow_expire'])).default(['pwd_account_locked_time', 'shadow_expire']),
    /**
     * OpenLDAP without a contextCSN: a delta asks for entries changed since the last run's start
     * minus this margin (the gateway's clock is compared with the server's modifyTimestamp).
     */
    clock_skew_seconds: z.number().int().min(0).max(3600).default(60),
    attributes: syncAttributesSchema.prefault({}),
    /** Defaults for users whose mapped attribute is empty and whose item sets none. */
    defaults: z
      .strictObject({
        method: syncMethodName.optional(),
        language: syncLanguage.optional(),
      })
      .prefault({}),
    items: z.array(syncItemSchema).min(1),
  })
  .superRefine((sync, ctx) => {
    const names = new Set<string>();
    sync.items.forEach((item, i) => {
      if (names.has(item.name)) ctx.addIssue({ code: 'custom', path: ['items', i, 'name'], message: `duplicate item name '${item.name}'` });
      names.add(item.name);
    });
  });
export type SyncConfig = z.infer<typeof syncSchema>;
