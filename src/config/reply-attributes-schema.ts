import { z } from 'zod';
import { looksLikeDn } from '../directory/dn.js';
import { groupKey } from '../directory/groups.js';
import { attributeDefinition, parseAttribute } from '../radius/codec/attributes.js';
import { STANDARD_ATTRIBUTES_BY_NAME, VENDOR_ATTRIBUTES_BY_NAME } from '../radius/codec/dictionary/standard.js';
import { RadiusEncodeError, type RadiusAttribute } from '../radius/codec/packet.js';
import type { ReplyAttributeMapping } from './config.js';

/**
 * `directories.<name>.reply_attributes`: RADIUS reply attributes by directory group, for the NAS
 * to put a user in the right VPN group, VLAN or admin role.
 *
 * ```yaml
 * reply_attributes:                  # an ordered list: the FIRST entry whose group the user is in wins
 *   - group: VPN-Admins              # cn or (AD) sAMAccountName, or the group's full DN
 *     attributes:
 *       Fortinet-Group-Name: vpn-admins
 *       Tunnel-Type: VLAN
 *       Tunnel-Medium-Type: IEEE-802
 *       Tunnel-Private-Group-Id: 10
 *       Cisco-AVPair: ["shell:priv-lvl=15", "ip:inacl#1=permit ip any any"]   # a list: repeated
 *   - group: CN=VPN-Users,CN=Users,DC=example,DC=test
 *     attributes: {Fortinet-Group-Name: vpn-users}
 * ```
 *
 * Names and values are those of FreeRADIUS's dictionaries, as radclient prints them; every one is
 * checked and encoded when the configuration loads, so a typo is a configuration error naming
 * its key, never a surprise at login time.
 */

/** Attributes a directory group must not set: the gateway writes them per request, or only a NAS sends them. */
const REFUSED: ReadonlyMap<string, string> = new Map([
  ...['State', 'Proxy-State', 'Message-Authenticator', 'EAP-Message'].map((n): [string, string] => [n, 'is written by the gateway for each request']),
  ...['MS-CHAP-Error', 'MS-CHAP2-Success', 'MS-CHAP-Challenge', 'MS-CHAP-Domain'].map((n): [string, string] => [n, 'belongs to one MS-CHAP login, not to a group']),
  ...[
    'User-Password',
    'CHAP-Password',
    'CHAP-Challenge',
    'NAS-IP-Address',
    'NAS-IPv6-Address',
    'NAS-Identifier',
    'NAS-Port',
    'NAS-Port-Id',
    'NAS-Port-Type',
    'Called-Station-Id',
    'Calling-Station-Id',
  ].map((n): [string, string] => [n, 'is sent by the NAS, never in an Access-Accept (RFC 2865 §5.44)']),
]);

/**
 * Octets one entry's attributes may take: a reply is at most 4096 octets (RFC 2865 §3), and the
 * header (20), Message-Authenticator (18), a Reply-Message and the NAS's Proxy-State need room.
 */
export const REPLY_ATTRIBUTES_BUDGET = 3500;

const entrySchema = z.strictObject({
  /** The group's DN, or its name (cn; on AD also sAMAccountName). Nested membership counts. */
  group: z
    .string()
    .min(1)
    .refine((group) => groupKey(group) !== undefined, { error: (issue) => (looksLikeDn(String(issue.input)) ? 'is not a valid DN' : 'must not be empty') }),
  /** Attribute name → value, or a list of values for an attribute sent several times. Empty: send nothing (and stop looking). */
  attributes: z.record(z.string(), z.unknown()).superRefine((attributes, ctx) => {
    let octets = 0;
    for (const [name, raw] of Object.entries(attributes)) {
      const result = encodeAttribute(name, raw);
      if ('problem' in result) ctx.addIssue({ code: 'custom', path: [name, ...result.at], message: result.problem });
      else octets += result.attributes.reduce((sum, a) => sum + 2 + a.value.length, 0);
    }
    if (octets > REPLY_ATTRIBUTES_BUDGET) ctx.addIssue({ code: 'custom', message: `${octets} octets of attributes; at most ${REPLY_ATTRIBUTES_BUDGET} fit in a reply` });
  }),
});

export const replyAttributesSchema = z
  .array(entrySchema)
  .min(1)
  .superRefine((entries, ctx) => {
    // Checked once every entry is well-formed (zod runs this only then).
    const firstIndex = new Map<string, number>();
    entries.forEach((entry, i) => {
      const key = groupKey(entry.group);
      if (key === undefined) return;
      const earlier = firstIndex.get(key);
      if (earlier === undefined) firstIndex.set(key, i);
      else {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'group'],
          message: `names the same group as reply_attributes[${earlier}]; the first matching entry wins, so this one would never apply`,
        });
      }
    });
  });
export type ReplyAttributesConfig = z.infer<typeof replyAttributesSchema>;

/** The entries with their attributes encoded, in order. Call only on a validated list (it throws on what validation reports). */
export function encodeReplyAttributes(entries: ReplyAttributesConfig): ReplyAttributeMapping[] {
  return entries.map((entry) => ({
    group: entry.group,
    attributes: Object.entries(entry.attributes).flatMap(([name, raw]) => {
      const result = encodeAttribute(name, raw);
      if ('problem' in result) throw new RadiusEncodeError(`${name}: ${result.problem}`);
      return result.attributes;
    }),
  }));
}

type Encoded = { readonly attributes: RadiusAttribute[] } | { readonly problem: string; readonly at: readonly number[] };

/** One `Name: value` or `Name: [values]` of the YAML, as attributes (or what is wrong with it). */
function encodeAttribute(name: string, raw: unknown): Encoded {
  const bare = name.trim().replace(/:\d+$/, '');
  const refused = REFUSED.get(bare);
  if (refused !== undefined) return { problem: `${bare} ${refused}`, at: [] };
  const def = attributeDefinition(name);
  if (def === undefined) {
    const suggestion = closestName(bare);
    return { problem: suggestion === undefined ? 'unknown attribute (names as in the FreeRADIUS dictionaries, e.g. Fortinet-Group-Name)' : `unknown attribute (did you mean '${suggestion}'?)`, at: [] };
  }
  const list = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  if (list.length === 0) return { problem: 'must have at least 1 value', at: [] };
  const attributes: RadiusAttribute[] = [];
  for (const [i, value] of list.entries()) {
    const at = Array.isArray(raw) ? [i] : [];
    let text: string;
    if (typeof value === 'string') text = value;
    else if (typeof value === 'number' && Number.isFinite(value)) {
      // YAML reads 0x41 as the number 65: an octets value must be quoted to keep its meaning.
      if (def.valueType === 'octets') return { problem: `write ${def.name} as a quoted string ('0x…' or text), not a number`, at };
      text = String(value);
    } else return { problem: 'must be a string or a number (or a list of them)', at };
    // RFC 8044 §3.4, §3.5: an empty value must not be sent.
    if (text.trim() === '') return { problem: 'must not be empty', at };
    try {
      attributes.push(parseAttribute(name, text));
    } catch (err) {
      if (!(err instanceof RadiusEncodeError)) throw err;
      // parseAttribute names the attribute first; the key path already does.
      const prefix = `${def.name}: `;
      return { problem: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message, at };
    }
  }
  return { attributes };
}

/** The dictionary name nearest to a misspelt one, when it is near enough to be what was meant. */
function closestName(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of [...STANDARD_ATTRIBUTES_BY_NAME.keys(), ...VENDOR_ATTRIBUTES_BY_NAME.keys()]) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 5)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length] ?? Infinity;
}
