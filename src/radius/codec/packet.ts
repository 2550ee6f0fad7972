/**
 * RADIUS packet model and structural decode/encode (RFC 2865 §3, §5).
 *
 * Structural only: this module checks framing (header, Length, attribute
 * lengths) and nothing about what the attributes mean. Authenticators,
 * Message-Authenticator and password hiding live in their own modules.
 */
import { GatewayError } from '../../errors.js';

export const Code = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccountingRequest: 4,
  AccountingResponse: 5,
  AccessChallenge: 11,
  StatusServer: 12,
  StatusClient: 13,
} as const;
export type CodeNumber = (typeof Code)[keyof typeof Code];

/** radclient-style names, for logs and the CLI. */
export const CODE_NAMES: ReadonlyMap<number, string> = new Map([
  [Code.AccessRequest, 'Access-Request'],
  [Code.AccessAccept, 'Access-Accept'],
  [Code.AccessReject, 'Access-Reject'],
  [Code.AccountingRequest, 'Accounting-Request'],
  [Code.AccountingResponse, 'Accounting-Response'],
  [Code.AccessChallenge, 'Access-Challenge'],
  [Code.StatusServer, 'Status-Server'],
  [Code.StatusClient, 'Status-Client'],
]);

export function codeName(code: number): string {
  return CODE_NAMES.get(code) ?? `Code-${code}`;
}

// RFC 2865 §3: "The minimum length is 20 and maximum length is 4096."
export const MAX_PACKET_LENGTH = 4096;
export const MIN_PACKET_LENGTH = 20;
export const HEADER_LENGTH = 20;
export const AUTHENTICATOR_LENGTH = 16;
// One octet of Length covers type, length and value, so a value holds at most 255 - 2.
export const MAX_ATTRIBUTE_VALUE_LENGTH = 253;

export interface RadiusAttribute {
  readonly type: number;
  /** The value octets only, without the type and length octets. */
  readonly value: Buffer;
}

export interface RadiusPacket {
  readonly code: number;
  readonly identifier: number;
  readonly authenticator: Buffer;
  readonly attributes: readonly RadiusAttribute[];
  /**
   * The packet exactly as received, cut at its Length field (padding removed). Message-Authenticator
   * and the authenticators are checked over these bytes, never over a re-encoding, so that an
   * attribute we would encode differently can never change what was signed. `authenticator` and
   * every attribute `value` are views into this buffer: treat them as read-only.
   */
  readonly raw: Buffer;
}

export type DecodeFailure =
  /** Fewer than 20 octets: not even a header. */
  | 'too_short'
  /** The Length field is below 20. */
  | 'bad_length'
  /** The Length field is above the allowed maximum (4096 unless the caller lowered it). */
  | 'too_long'
  /** The Length field claims more octets than were received. */
  | 'length_mismatch'
  /** An attribute length below 2, an attribute running past Length, or a lone type octet. */
  | 'bad_attribute_length'
  /** The Code is not one this gateway speaks. */
  | 'unknown_code';

export class RadiusDecodeError extends GatewayError {
  readonly code = 'GW_ERR_RADIUS_DECODE';
  constructor(
    message: string,
    readonly reason: DecodeFailure,
  ) {
    super(message);
  }
}

/** A packet could not be built: a value over 253 octets, a packet over 4096, a bad header field. */
export class RadiusEncodeError extends GatewayError {
  readonly code = 'GW_ERR_RADIUS_ENCODE';
}

const KNOWN_CODES: ReadonlySet<number> = new Set(Object.values(Code));

export function isKnownCode(code: number): boolean {
  return KNOWN_CODES.has(code);
}

/**
 * Decodes one datagram. Never throws: every malformed input comes back as a RadiusDecodeError
 * value, which a server drops silently (RFC 2865 §3).
 */
export function decodePacket(buf: Buffer, maxLength: number = MAX_PACKET_LENGTH): RadiusPacket | RadiusDecodeError {
  if (buf.length < MIN_PACKET_LENGTH) {
    return new RadiusDecodeError(`packet of ${buf.length} octets is shorter than the ${MIN_PACKET_LENGTH}-octet header`, 'too_short');
  }
  const code = buf[0] as number;
  if (!KNOWN_CODES.has(code)) {
    return new RadiusDecodeError(`unknown code ${code}`, 'unknown_code');
  }
  const length = buf.readUInt16BE(2);
  if (length < MIN_PACKET_LENGTH) {
    return new RadiusDecodeError(`Length field ${length} is below the minimum of ${MIN_PACKET_LENGTH}`, 'bad_length');
  }
  if (length > maxLength) {
    return new RadiusDecodeError(`Length field ${length} is above the maximum of ${maxLength}`, 'too_long');
  }
  // RFC 2865 §3: shorter than Length → discard; octets beyond Length are padding and ignored.
  if (length > buf.length) {
    return new RadiusDecodeError(`Length field ${length} exceeds the ${buf.length} octets received`, 'length_mismatch');
  }

  // One copy decouples the packet from a buffer the caller (or the socket) might reuse.
  const raw = Buffer.from(buf.subarray(0, length));
  const attributes: RadiusAttribute[] = [];
  let offset = HEADER_LENGTH;
  while (offset < length) {
    if (offset + 2 > length) {
      return new RadiusDecodeError(`attribute at offset ${offset} has a type but no length octet`, 'bad_attribute_length');
    }
    const attrLength = raw[offset + 1] as number;
    if (attrLength < 2 || offset + attrLength > length) {
      return new RadiusDecodeError(
        `attribute ${raw[offset] as number} at offset ${offset} has length ${attrLength}, which does not fit the packet`,
        'bad_attribute_length',
      );
    }
    attributes.push(Object.freeze({ type: raw[offset] as number, value: raw.subarray(offset + 2, offset + attrLength) }));
    offset += attrLength;
  }

  return Object.freeze({
    code,
    identifier: raw[1] as number,
    authenticator: raw.subarray(4, HEADER_LENGTH),
    attributes: Object.freeze(attributes),
    raw,
  });
}

export interface PacketFields {
  readonly code: number;
  readonly identifier: number;
  readonly authenticator: Buffer;
  readonly attributes: readonly RadiusAttribute[];
}

/** Serialises the fields as given; computes nothing. Throws RadiusEncodeError on anything that cannot go on the wire. */
export function encodePacket(p: PacketFields): Buffer {
  if (!Number.isInteger(p.code) || !KNOWN_CODES.has(p.code)) {
    throw new RadiusEncodeError(`cannot encode unknown code ${p.code}`);
  }
  if (!isOctet(p.identifier)) {
    throw new RadiusEncodeError(`identifier ${p.identifier} is not in 0..255`);
  }
  if (p.authenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new RadiusEncodeError(`authenticator must be ${AUTHENTICATOR_LENGTH} octets, not ${p.authenticator.length}`);
  }
  let length = HEADER_LENGTH;
  for (const a of p.attributes) {
    if (!isOctet(a.type)) {
      throw new RadiusEncodeError(`attribute type ${a.type} is not in 0..255`);
    }
    if (a.value.length > MAX_ATTRIBUTE_VALUE_LENGTH) {
      throw new RadiusEncodeError(
        `attribute ${a.type} has a ${a.value.length}-octet value; at most ${MAX_ATTRIBUTE_VALUE_LENGTH} fit in one attribute`,
      );
    }
    length += 2 + a.value.length;
  }
  if (length > MAX_PACKET_LENGTH) {
    throw new RadiusEncodeError(`packet would be ${length} octets; at most ${MAX_PACKET_LENGTH} are allowed`);
  }

  const out = Buffer.alloc(length);
  out[0] = p.code;
  out[1] = p.identifier;
  out.writeUInt16BE(length, 2);
  p.authenticator.copy(out, 4);
  let offset = HEADER_LENGTH;
  for (const a of p.attributes) {
    out[offset] = a.type;
    out[offset + 1] = 2 + a.value.length;
    a.value.copy(out, offset + 2);
    offset += 2 + a.value.length;
  }
  return out;
}

export function getAttribute(p: Pick<RadiusPacket, 'attributes'>, type: number): Buffer | undefined {
  return p.attributes.find((a) => a.type === type)?.value;
}

export function getAttributes(p: Pick<RadiusPacket, 'attributes'>, type: number): Buffer[] {
  return p.attributes.filter((a) => a.type === type).map((a) => a.value);
}

export interface AttributeLocation {
  /** Offset of the value (after type and length) within the packet. */
  readonly valueOffset: number;
  readonly valueLength: number;
}

/**
 * Where the attributes of one type sit in an encoded packet. Walks `raw` afresh rather than
 * trusting a RadiusPacket's parsed fields, because the callers (MAC checks) must cover exactly the
 * signed bytes. Returns undefined if `raw` is not a well-formed packet whose Length equals its size.
 */
export function locateAttributes(raw: Buffer, type: number): AttributeLocation[] | undefined {
  if (raw.length < MIN_PACKET_LENGTH || raw.readUInt16BE(2) !== raw.length) return undefined;
  const found: AttributeLocation[] = [];
  let offset = HEADER_LENGTH;
  while (offset < raw.length) {
    if (offset + 2 > raw.length) return undefined;
    const attrLength = raw[offset + 1] as number;
    if (attrLength < 2 || offset + attrLength > raw.length) return undefined;
    if (raw[offset] === type) found.push({ valueOffset: offset + 2, valueLength: attrLength - 2 });
    offset += attrLength;
  }
  return found;
}

function isOctet(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 255;
}
