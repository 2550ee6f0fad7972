/**
 * Attribute values: builders (attr.*), readers (read*), and radclient-style formatting and parsing
 * (`Name = value`) driven by the dictionary. Value encodings follow RFC 2865 §5 and RFC 8044 §3.
 */
import { isUtf8 } from 'node:buffer';
import { MAX_ATTRIBUTE_VALUE_LENGTH, RadiusEncodeError } from './packet.js';
import type { RadiusAttribute, RadiusPacket } from './packet.js';
import { STANDARD_ATTRIBUTES, STANDARD_ATTRIBUTES_BY_NAME, VENDORS, VENDOR_ATTRIBUTES_BY_NAME } from './dictionary/standard.js';
import type { AttributeDefinition } from './dictionary/standard.js';

/** Standard attribute numbers; the names are the dictionary names in CamelCase. */
export const AttributeType = {
  UserName: 1,
  UserPassword: 2,
  ChapPassword: 3,
  NasIpAddress: 4,
  NasPort: 5,
  ServiceType: 6,
  FramedProtocol: 7,
  FramedIpAddress: 8,
  FramedIpNetmask: 9,
  FramedRouting: 10,
  FilterId: 11,
  FramedMtu: 12,
  FramedCompression: 13,
  LoginIpHost: 14,
  LoginService: 15,
  LoginTcpPort: 16,
  ReplyMessage: 18,
  CallbackNumber: 19,
  CallbackId: 20,
  FramedRoute: 22,
  FramedIpxNetwork: 23,
  State: 24,
  Class: 25,
  VendorSpecific: 26,
  SessionTimeout: 27,
  IdleTimeout: 28,
  TerminationAction: 29,
  CalledStationId: 30,
  CallingStationId: 31,
  NasIdentifier: 32,
  ProxyState: 33,
  LoginLatService: 34,
  LoginLatNode: 35,
  LoginLatGroup: 36,
  FramedAppletalkLink: 37,
  FramedAppletalkNetwork: 38,
  FramedAppletalkZone: 39,
  AcctStatusType: 40,
  AcctDelayTime: 41,
  AcctInputOctets: 42,
  AcctOutputOctets: 43,
  AcctSessionId: 44,
  AcctAuthentic: 45,
  AcctSessionTime: 46,
  AcctInputPackets: 47,
  AcctOutputPackets: 48,
  AcctTerminateCause: 49,
  AcctMultiSessionId: 50,
  AcctLinkCount: 51,
  AcctInputGigawords: 52,
  AcctOutputGigawords: 53,
  EventTimestamp: 55,
  EgressVlanid: 56,
  IngressFilters: 57,
  EgressVlanName: 58,
  UserPriorityTable: 59,
  ChapChallenge: 60,
  NasPortType: 61,
  PortLimit: 62,
  LoginLatPort: 63,
  TunnelType: 64,
  TunnelMediumType: 65,
  TunnelClientEndpoint: 66,
  TunnelServerEndpoint: 67,
  AcctTunnelConnection: 68,
  TunnelPassword: 69,
  ArapPassword: 70,
  ArapFeatures: 71,
  ArapZoneAccess: 72,
  ArapSecurity: 73,
  ArapSecurityData: 74,
  PasswordRetry: 75,
  Prompt: 76,
  ConnectInfo: 77,
  ConfigurationToken: 78,
  EapMessage: 79,
  MessageAuthenticator: 80,
  TunnelPrivateGroupId: 81,
  TunnelAssignmentId: 82,
  TunnelPreference: 83,
  ArapChallengeResponse: 84,
  AcctInterimInterval: 85,
  AcctTunnelPacketsLost: 86,
  NasPortId: 87,
  FramedPool: 88,
  ChargeableUserIdentity: 89,
  TunnelClientAuthId: 90,
  TunnelServerAuthId: 91,
  NasFilterRule: 92,
  NasIpv6Address: 95,
  FramedInterfaceId: 96,
  FramedIpv6Prefix: 97,
  LoginIpv6Host: 98,
  FramedIpv6Route: 99,
  FramedIpv6Pool: 100,
  ErrorCause: 101,
  EapKeyName: 102,
  DigestResponse: 103,
  DigestRealm: 104,
  DigestNonce: 105,
  DigestResponseAuth: 106,
  DigestNextnonce: 107,
  DigestMethod: 108,
  DigestUri: 109,
  DigestQop: 110,
  DigestAlgorithm: 111,
  DigestEntityBodyHash: 112,
  DigestCnonce: 113,
  DigestNonceCount: 114,
  DigestUsername: 115,
  DigestOpaque: 116,
  DigestAuthParam: 117,
  DigestAkaAuts: 118,
  DigestDomain: 119,
  DigestStale: 120,
  DigestHa1: 121,
  SipAor: 122,
  DelegatedIpv6Prefix: 123,
  OperatorName: 126,
  LocationInformation: 127,
  LocationData: 128,
  BasicLocationPolicyRules: 129,
  ExtendedLocationPolicyRules: 130,
  LocationCapable: 131,
  RequestedLocationInfo: 132,
  FramedManagement: 133,
  ManagementTransportProtection: 134,
  ManagementPolicyId: 135,
  ManagementPrivilegeLevel: 136,
  FramedIpv6Address: 168,
  DnsServerIpv6Address: 169,
  RouteIpv6Information: 170,
  DelegatedIpv6PrefixPool: 171,
  StatefulIpv6AddressPool: 172,
} as const;
export type AttributeTypeNumber = (typeof AttributeType)[keyof typeof AttributeType];

/** Vendor ids (IANA Private Enterprise Numbers) this codec has names for. */
export const VendorId = {
  Cisco: 9,
  Microsoft: 311,
  CiscoAsa: 3076,
  Fortinet: 12356,
  PaloAlto: 25461,
} as const;

/** Microsoft vendor attribute numbers (RFC 2548) the gateway itself reads or writes. */
export const MicrosoftAttributeType = {
  MsChapResponse: 1,
  MsChapError: 2,
  MsMppeEncryptionPolicy: 7,
  MsMppeEncryptionTypes: 8,
  MsChapChallenge: 11,
  MsChapMppeKeys: 12,
  MsMppeSendKey: 16,
  MsMppeRecvKey: 17,
  MsChap2Response: 25,
  MsChap2Success: 26,
} as const;

/** RFC 2548 §2.3.2: MS-CHAP-Challenge of an MS-CHAPv2 login, the NAS's authenticator challenge. */
export const MS_CHAP_CHALLENGE_LENGTH = 16;
/** RFC 2548 §2.3.2: MS-CHAP2-Response is Ident, Flags, Peer-Challenge (16), Reserved (8), Response (24). */
export const MS_CHAP2_RESPONSE_LENGTH = 50;

// ---------------------------------------------------------------------------------------------
// Builders. Each returns an attribute whose value is a fresh buffer, and throws RadiusEncodeError
// rather than produce something encodePacket would refuse or a peer would misread.

function make(type: number, value: Buffer): RadiusAttribute {
  if (!Number.isInteger(type) || type < 1 || type > 255) {
    throw new RadiusEncodeError(`attribute type ${type} is not in 1..255`);
  }
  if (value.length > MAX_ATTRIBUTE_VALUE_LENGTH) {
    throw new RadiusEncodeError(`attribute ${type}: ${value.length}-octet value; at most ${MAX_ATTRIBUTE_VALUE_LENGTH} fit`);
  }
  // RFC 8044 §3.4, §3.5: text and string attributes of length zero MUST NOT be sent.
  if (value.length === 0) {
    throw new RadiusEncodeError(`attribute ${type}: empty values must not be sent`);
  }
  return Object.freeze({ type, value });
}

function uint32(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RadiusEncodeError(`${what}: ${n} is not a 32-bit unsigned integer`);
  }
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export const attr = {
  /** UTF-8 text. Callers that pass user input should cut it to 253 octets first. */
  text(type: number, s: string): RadiusAttribute {
    return make(type, Buffer.from(s, 'utf8'));
  },
  octets(type: number, value: Buffer): RadiusAttribute {
    return make(type, Buffer.from(value));
  },
  integer(type: number, n: number): RadiusAttribute {
    return make(type, uint32(n, `attribute ${type}`));
  },
  ipv4(type: number, address: string): RadiusAttribute {
    const b = parseIpv4(address);
    if (!b) throw new RadiusEncodeError(`attribute ${type}: ${JSON.stringify(address)} is not a dotted-quad IPv4 address`);
    return make(type, b);
  },
  ipv6(type: number, address: string): RadiusAttribute {
    const b = parseIpv6(address);
    if (!b) throw new RadiusEncodeError(`attribute ${type}: ${JSON.stringify(address)} is not an IPv6 address`);
    return make(type, b);
  },
  /** RFC 2869 §5.3 Event-Timestamp style: whole seconds since 1970-01-01 UTC. */
  date(type: number, d: Date): RadiusAttribute {
    const ms = d.getTime();
    if (!Number.isFinite(ms)) throw new RadiusEncodeError(`attribute ${type}: invalid date`);
    return make(type, uint32(Math.floor(ms / 1000), `attribute ${type}`));
  },
  /** Vendor-Specific in the RFC 2865 §5.26 suggested layout: vendor id, vendor type, vendor length, value. */
  vendorSpecific(vendorId: number, vendorType: number, value: Buffer): RadiusAttribute {
    if (!Number.isInteger(vendorId) || vendorId < 1 || vendorId > 0xffffff) {
      throw new RadiusEncodeError(`vendor id ${vendorId} is not in 1..16777215`);
    }
    if (!Number.isInteger(vendorType) || vendorType < 0 || vendorType > 255) {
      throw new RadiusEncodeError(`vendor attribute type ${vendorType} is not in 0..255`);
    }
    if (value.length > MAX_ATTRIBUTE_VALUE_LENGTH - 6) {
      throw new RadiusEncodeError(`vendor ${vendorId} attribute ${vendorType}: ${value.length}-octet value; at most 247 fit`);
    }
    const b = Buffer.alloc(6 + value.length);
    b.writeUInt32BE(vendorId);
    b[4] = vendorType;
    b[5] = 2 + value.length;
    value.copy(b, 6);
    return make(AttributeType.VendorSpecific, b);
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Readers. Each returns undefined for a value of the wrong size rather than guessing.

/** UTF-8 text; invalid sequences become U+FFFD. Use readTextStrict where the bytes matter (User-Name). */
export function readText(buf: Buffer): string {
  return buf.toString('utf8');
}

/** UTF-8 text, or undefined if the octets are not valid UTF-8 (RFC 8044 §3.4). */
export function readTextStrict(buf: Buffer): string | undefined {
  return isUtf8(buf) ? buf.toString('utf8') : undefined;
}

export function readInteger(buf: Buffer): number | undefined {
  return buf.length === 4 ? buf.readUInt32BE(0) : undefined;
}

export function readIpv4(buf: Buffer): string | undefined {
  return buf.length === 4 ? `${buf[0]}.${buf[1]}.${buf[2]}.${buf[3]}` : undefined;
}

export function readIpv6(buf: Buffer): string | undefined {
  return buf.length === 16 ? formatIpv6(buf) : undefined;
}

export function readDate(buf: Buffer): Date | undefined {
  return buf.length === 4 ? new Date(buf.readUInt32BE(0) * 1000) : undefined;
}

/** RFC 3162 §2.3: reserved octet, prefix length (0..128), then as many prefix octets as needed (up to 16). */
export function readIpv6Prefix(buf: Buffer): string | undefined {
  if (buf.length < 2 || buf.length > 18) return undefined;
  const prefixLength = buf[1] as number;
  if (prefixLength > 128 || buf.length - 2 < Math.ceil(prefixLength / 8)) return undefined;
  const address = Buffer.alloc(16);
  buf.copy(address, 0, 2);
  return `${formatIpv6(address)}/${prefixLength}`;
}

/** RFC 3162 §2.2: 8 octets, printed as four groups like FreeRADIUS does. */
export function readInterfaceId(buf: Buffer): string | undefined {
  if (buf.length !== 8) return undefined;
  return [0, 2, 4, 6].map((i) => buf.toString('hex', i, i + 2)).join(':');
}

export interface VendorSpecific {
  readonly vendorId: number;
  /** Everything after the vendor id. */
  readonly data: Buffer;
  /** The sub-attributes, when `data` follows the RFC 2865 §5.26 suggested layout exactly. */
  readonly attributes: readonly RadiusAttribute[] | undefined;
}

/** Splits a Vendor-Specific value; undefined if it is too short or the vendor id's high octet is set. */
export function readVendorSpecific(value: Buffer): VendorSpecific | undefined {
  // RFC 2865 §5.26: Length >= 7, so at least the 4-octet vendor id and one octet of data.
  if (value.length < 5 || value[0] !== 0) return undefined;
  const data = value.subarray(4);
  const attributes: RadiusAttribute[] = [];
  let offset = 0;
  while (offset < data.length) {
    const length = data[offset + 1];
    if (length === undefined || length < 2 || offset + length > data.length) {
      return { vendorId: value.readUInt32BE(0), data, attributes: undefined };
    }
    attributes.push({ type: data[offset] as number, value: data.subarray(offset + 2, offset + length) });
    offset += length;
  }
  return { vendorId: value.readUInt32BE(0), data, attributes };
}

/** A sub-attribute of a Vendor-Specific attribute: the vendor, its type and value octets. */
export interface VendorAttribute {
  readonly vendorId: number;
  readonly type: number;
  readonly value: Buffer;
}

/**
 * Every sub-attribute of `vendorId` (optionally only of `type`) in the Vendor-Specific attributes
 * of a packet, in order. Vendor-Specific attributes that do not follow the RFC 2865 §5.26 layout
 * are skipped: their contents cannot be told apart.
 */
export function getVendorAttributes(p: Pick<RadiusPacket, 'attributes'>, vendorId: number, type?: number): VendorAttribute[] {
  const out: VendorAttribute[] = [];
  for (const a of p.attributes) {
    if (a.type !== AttributeType.VendorSpecific) continue;
    const vsa = readVendorSpecific(a.value);
    if (vsa?.vendorId !== vendorId || vsa.attributes === undefined) continue;
    for (const sub of vsa.attributes) if (type === undefined || sub.type === type) out.push({ vendorId, type: sub.type, value: sub.value });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting: radclient-like `Name = value`, for the CLI and debug logs.

export interface FormattedAttribute {
  readonly name: string;
  readonly value: string;
}

/**
 * One attribute as a name and a printable value. Unknown attributes print as `Attr-N = 0x…`;
 * sensitive ones (hidden passwords, keys, password proofs) never print their octets. A
 * Vendor-Specific attribute holding exactly one sub-attribute prints as that sub-attribute.
 */
export function formatAttribute(a: RadiusAttribute): FormattedAttribute {
  const def = STANDARD_ATTRIBUTES.get(a.type);
  if (!def) return { name: `Attr-${a.type}`, value: hex(a.value) };
  if (def.valueType === 'vsa') {
    const lines = formatVendorSpecific(a.value);
    const [only, extra] = lines ?? [];
    if (only && !extra) return only;
    return { name: def.name, value: hex(a.value) };
  }
  return formatDefined(def, a.value);
}

/** All attributes as lines, Vendor-Specific attributes expanded into one line per sub-attribute. */
export function formatAttributes(attributes: readonly RadiusAttribute[]): FormattedAttribute[] {
  const out: FormattedAttribute[] = [];
  for (const a of attributes) {
    const lines = a.type === AttributeType.VendorSpecific ? formatVendorSpecific(a.value) : undefined;
    if (lines) out.push(...lines);
    else out.push(formatAttribute(a));
  }
  return out;
}

function formatVendorSpecific(value: Buffer): FormattedAttribute[] | undefined {
  const vsa = readVendorSpecific(value);
  if (!vsa?.attributes || vsa.attributes.length === 0) return undefined;
  const vendor = VENDORS.get(vsa.vendorId);
  return vsa.attributes.map((sub) => {
    const def = vendor?.attributes.get(sub.type);
    if (def) return formatDefined(def, sub.value);
    return { name: `${vendor ? vendor.name : `Vendor-${vsa.vendorId}`}-Attr-${sub.type}`, value: hex(sub.value) };
  });
}

function formatDefined(def: AttributeDefinition, value: Buffer): FormattedAttribute {
  if (def.sensitive) return { name: def.name, value: `<hidden, ${value.length} octets>` };
  let name = def.name;
  let body = value;
  if (def.tagged) {
    // RFC 2868 §3: integers always carry the tag octet; strings only when it is <= 0x1F.
    const first = value[0];
    // An integer's tag octet above 0x1F is malformed: show the octets rather than guess.
    if (def.valueType === 'integer' && first !== undefined && first > 0x1f) return { name, value: hex(value) };
    const hasTag = def.valueType === 'integer' ? value.length === 4 : first !== undefined && first <= 0x1f;
    if (hasTag && first !== undefined) {
      if (first !== 0) name = `${def.name}:${first}`;
      body = def.valueType === 'integer' ? Buffer.concat([Buffer.alloc(1), value.subarray(1)]) : value.subarray(1);
    }
  }
  return { name, value: formatValue(def, body) };
}

function formatValue(def: AttributeDefinition, v: Buffer): string {
  switch (def.valueType) {
    case 'text': {
      const s = readTextStrict(v);
      return s === undefined ? hex(v) : quote(s);
    }
    case 'integer': {
      const n = readInteger(v);
      if (n === undefined) return hex(v);
      return def.values?.get(n) ?? String(n);
    }
    case 'date': {
      const d = readDate(v);
      return d ? d.toISOString().replace('.000Z', 'Z') : hex(v);
    }
    case 'ipaddr':
      return readIpv4(v) ?? hex(v);
    case 'ipv6addr':
      return readIpv6(v) ?? hex(v);
    case 'ipv6prefix':
      return readIpv6Prefix(v) ?? hex(v);
    case 'ifid':
      return readInterfaceId(v) ?? hex(v);
    case 'octets':
    case 'vsa':
      return hex(v);
  }
}

function hex(b: Buffer): string {
  return `0x${b.toString('hex')}`;
}

/**
 * Double-quoted, with everything that could forge or hide log content escaped: control
 * characters (C0, DEL, C1), line/paragraph separators and bidirectional overrides (the
 * "Trojan Source" characters). A peer controls Reply-Message and friends.
 */
function quote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || isInvisibleFormatting(cp)) {
      out += `\\u{${cp.toString(16)}}`;
    } else out += ch;
  }
  return `${out}"`;
}

function isInvisibleFormatting(cp: number): boolean {
  return (
    cp === 0x200e ||
    cp === 0x200f ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    (cp >= 0x202a && cp <= 0x202e) ||
    (cp >= 0x2066 && cp <= 0x2069) ||
    cp === 0xfeff
  );
}

// ---------------------------------------------------------------------------------------------
// Parsing `Name = value` (config files, the CLI): the inverse of formatting for the standard
// dictionary and the named vendor attributes. Tagged attributes take the tag as `Name:tag`.

/**
 * Builds an attribute from its dictionary name and a value as formatAttribute prints it: text
 * unquoted or double-quoted; integers in decimal or by value name; addresses; dates as ISO 8601
 * or seconds; octets as 0x-hex. A vendor attribute's name (`Fortinet-Group-Name`) gives a
 * Vendor-Specific attribute holding that one sub-attribute. Throws RadiusEncodeError naming what
 * is wrong.
 */
export function parseAttribute(name: string, value: string): RadiusAttribute {
  const match = /^([A-Za-z0-9.-]+)(?::(\d{1,2}))?$/.exec(name.trim());
  const bare = match?.[1];
  const def = bare === undefined ? undefined : STANDARD_ATTRIBUTES_BY_NAME.get(bare);
  const vendor = bare === undefined || def !== undefined ? undefined : VENDOR_ATTRIBUTES_BY_NAME.get(bare);
  if (!match || (!def && !vendor)) throw new RadiusEncodeError(`unknown attribute ${JSON.stringify(name)}`);
  const tag = match[2] === undefined ? undefined : Number(match[2]);
  if (vendor) {
    const body = parseValue(vendor.attribute, value, tag);
    // RFC 8044 §3.4, §3.5: empty values must not be sent (make() checks this for the standard ones).
    if (body.length === 0) throw new RadiusEncodeError(`${vendor.attribute.name}: empty values must not be sent`);
    return attr.vendorSpecific(vendor.vendor.id, vendor.attribute.type, body);
  }
  const standard = def as AttributeDefinition;
  if (standard.valueType === 'vsa' || standard.type === AttributeType.MessageAuthenticator) {
    throw new RadiusEncodeError(`${standard.name} cannot be given as text; it is built by the codec`);
  }
  return make(standard.type, parseValue(standard, value, tag));
}

/** The value octets of `def` from its text form (with the RFC 2868 tag octet where one belongs). */
function parseValue(def: AttributeDefinition, value: string, tag: number | undefined): Buffer {
  if (tag !== undefined && (!def.tagged || tag < 1 || tag > 0x1f)) {
    throw new RadiusEncodeError(`${def.name}: a tag (1..31) is only allowed on tagged attributes (RFC 2868)`);
  }
  if (def.sensitive || def.valueType === 'vsa') {
    throw new RadiusEncodeError(`${def.name} cannot be given as text; it is built by the codec`);
  }
  const v = value.trim();
  const bad = (what: string): never => {
    throw new RadiusEncodeError(`${def.name}: ${JSON.stringify(value)} is not ${what}`);
  };

  switch (def.valueType) {
    case 'text': {
      const s = v.startsWith('"') ? unquote(v) : v;
      if (s === undefined) return bad('a properly quoted string');
      const b = Buffer.from(s, 'utf8');
      if (!def.tagged) return b;
      // RFC 2868 §3: a first octet <= 0x1F is read as a tag, so untagged text starting with one needs tag 0.
      const needsTag = tag !== undefined || (b[0] !== undefined && b[0] <= 0x1f);
      return needsTag ? Buffer.concat([Buffer.of(tag ?? 0), b]) : b;
    }
    case 'integer': {
      let n: number | undefined = /^\d{1,10}$/.test(v) ? Number(v) : undefined;
      if (n === undefined) for (const [k, label] of def.values ?? []) if (label === v) n = k;
      if (n === undefined) return bad('a number or a known value name');
      const b = uint32(n, def.name);
      if (def.tagged) {
        // RFC 2868 §3.1: tag octet plus a 3-octet value.
        if (n > 0xffffff) return bad('a 24-bit number');
        b[0] = tag ?? 0;
      }
      return b;
    }
    case 'date': {
      const seconds = /^\d{1,10}$/.test(v) ? Number(v) : Date.parse(v) / 1000;
      if (!Number.isFinite(seconds)) return bad('a date');
      return uint32(Math.floor(seconds), def.name);
    }
    case 'ipaddr':
      return parseIpv4(v) ?? bad('an IPv4 address');
    case 'ipv6addr':
      return parseIpv6(v) ?? bad('an IPv6 address');
    case 'ipv6prefix': {
      const [address, bits] = v.split('/');
      const a = address === undefined ? undefined : parseIpv6(address);
      const n = bits !== undefined && /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (!a || !(n >= 0 && n <= 128)) return bad('an IPv6 prefix');
      return Buffer.concat([Buffer.of(0, n), a.subarray(0, Math.ceil(n / 8))]);
    }
    case 'ifid': {
      const h = v.replaceAll(':', '');
      if (!/^[0-9a-fA-F]{16}$/.test(h)) return bad('an interface id');
      return Buffer.from(h, 'hex');
    }
    case 'octets': {
      if (/^0x([0-9a-fA-F]{2})*$/.test(v)) return Buffer.from(v.slice(2), 'hex');
      const s = v.startsWith('"') ? unquote(v) : v;
      if (s === undefined) return bad('0x-hex or a string');
      return Buffer.from(s, 'utf8');
    }
  }
}

/** The dictionary entry behind an attribute name as parseAttribute takes it (`Tunnel-Type:1`, `Fortinet-Group-Name`), if any. */
export function attributeDefinition(name: string): AttributeDefinition | undefined {
  const bare = /^([A-Za-z0-9.-]+)(?::\d{1,2})?$/.exec(name.trim())?.[1];
  if (bare === undefined) return undefined;
  return STANDARD_ATTRIBUTES_BY_NAME.get(bare) ?? VENDOR_ATTRIBUTES_BY_NAME.get(bare)?.attribute;
}

function unquote(v: string): string | undefined {
  if (v.length < 2 || !v.endsWith('"')) return undefined;
  let out = '';
  const body = v.slice(1, -1);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    if (ch === '"') return undefined;
    if (ch !== '\\') {
      out += ch;
      continue;
    }
    const next = body[++i];
    if (next === 'n') out += '\n';
    else if (next === 'r') out += '\r';
    else if (next === 't') out += '\t';
    else if (next === '"' || next === '\\') out += next;
    else if (next === 'u') {
      const m = /^\{([0-9a-fA-F]{1,6})\}/.exec(body.slice(i + 1));
      const cp = m ? parseInt(m[1] as string, 16) : NaN;
      if (!m || !(cp <= 0x10ffff)) return undefined;
      out += String.fromCodePoint(cp);
      i += m[0].length;
    } else return undefined;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Addresses, parsed and printed by hand: the codec depends on Buffer and node:crypto only.

/** Strict dotted quad: four decimal octets, no leading zeros (which some parsers read as octal). */
export function parseIpv4(s: string): Buffer | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

/** RFC 4291 §2.2 text forms, including `::` and a trailing dotted quad. No zone ids. */
export function parseIpv6(s: string): Buffer | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const gap = s.indexOf('::');
  if (gap !== -1 && s.indexOf('::', gap + 1) !== -1) return undefined;
  const headText = gap === -1 ? s : s.slice(0, gap);
  const tailText = gap === -1 ? '' : s.slice(gap + 2);
  const head = headText === '' ? [] : headText.split(':');
  const tail = tailText === '' ? [] : tailText.split(':');
  const toWords = (parts: string[], isLastSegment: boolean): number[] | undefined => {
    const out: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (isLastSegment && i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIpv4(p);
        if (!v4) return undefined;
        out.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  const headWords = toWords(head, tail.length === 0 && gap === -1);
  const tailWords = toWords(tail, true);
  if (!headWords || !tailWords) return undefined;
  const count = headWords.length + tailWords.length;
  if (gap === -1 ? count !== 8 : count > 7) return undefined;
  const words = [...headWords, ...new Array<number>(8 - count).fill(0), ...tailWords];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** RFC 5952 canonical text: lowercase, no leading zeros, longest zero run (>= 2) as `::`. */
export function formatIpv6(b: Buffer): string {
  const words = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const text = words.map((w) => w.toString(16));
  if (bestStart === -1) return text.join(':');
  return `${text.slice(0, bestStart).join(':')}::${text.slice(bestStart + bestLength).join(':')}`;
}
