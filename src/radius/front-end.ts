import { randomUUID } from 'node:crypto';
import type { AuthAttempt, MsChapV2Proof } from '../auth/attempt.js';
import type { Decision, MppeKeys } from '../auth/decision.js';
import type { ResolvedClient } from '../config/config.js';
import {
  AttributeType,
  Code,
  MS_CHAP2_RESPONSE_LENGTH,
  MS_CHAP_CHALLENGE_LENGTH,
  MicrosoftAttributeType,
  VendorId,
  attr,
  encryptMppeKey,
  getAttribute,
  getVendorAttributes,
  newMppeSalts,
  readIpv4,
  readText,
  readTextStrict,
  unhidePassword,
  type RadiusAttribute,
  type RadiusPacket,
} from './codec/index.js';

/**
 * RADIUS ⇄ flow translation, and nothing else: no policy is decided here (STYLE.md §1).
 */

export interface PacketOrigin {
  readonly address: string;
  readonly port: number;
  /** The local address the packet arrived on. */
  readonly localAddress: string | null;
}

/** An attribute as text, null when absent. (Module level: a closure made per request costs a defineProperty under the tsx loader.) */
function textOf(packet: RadiusPacket, type: number): string | null {
  const value = getAttribute(packet, type);
  return value === undefined ? null : readText(value);
}

export function toAttempt(packet: RadiusPacket, client: ResolvedClient, origin: PacketOrigin, receivedAt: number): AuthAttempt {
  // A User-Name that is not valid UTF-8 matches nobody (rather than a lossy look-alike).
  const rawName = getAttribute(packet, AttributeType.UserName);
  const username = rawName === undefined ? '' : (readTextStrict(rawName) ?? '');
  const hidden = getAttribute(packet, AttributeType.UserPassword);
  const clear = hidden === undefined ? undefined : unhidePassword(hidden, client.secret, packet.authenticator);
  const password = clear === undefined ? undefined : clear.toString('utf8');
  const state = getAttribute(packet, AttributeType.State);
  const nasIp = getAttribute(packet, AttributeType.NasIpAddress);
  const msChapV2 = hidden === undefined && state === undefined ? readMsChapV2(packet) : undefined;
  return {
    id: randomUUID(),
    protocol: 'radius',
    client: { name: client.name, ip: origin.address },
    username,
    // RFC 2865 §4.4: the answer to an Access-Challenge comes back in User-Password, with State.
    password: state === undefined ? password : undefined,
    state,
    response: state === undefined ? undefined : password,
    ...(msChapV2 === undefined ? {} : { msChapV2 }),
    nas: {
      identifier: textOf(packet, AttributeType.NasIdentifier),
      ipAddress: nasIp === undefined ? null : (readIpv4(nasIp) ?? null),
      callingStationId: textOf(packet, AttributeType.CallingStationId),
      calledStationId: textOf(packet, AttributeType.CalledStationId),
    },
    localAddress: origin.localAddress,
    receivedAt,
    // All of them: the upstream client (src/radius/upstream.ts) drops credentials, State, Proxy-State and Message-Authenticator.
    forward: packet.attributes,
  };
}

/**
 * An MS-CHAPv2 login (RFC 2548 §2.3.2, §2.3.3): exactly one MS-CHAP-Challenge of 16 octets and one
 * MS-CHAP2-Response of 50. Anything else is no MS-CHAPv2 login the gateway can pass on: the
 * request then carries no credential at all and fails as such.
 */
function readMsChapV2(packet: RadiusPacket): MsChapV2Proof | undefined {
  const challenges = getVendorAttributes(packet, VendorId.Microsoft, MicrosoftAttributeType.MsChapChallenge);
  const responses = getVendorAttributes(packet, VendorId.Microsoft, MicrosoftAttributeType.MsChap2Response);
  const [challenge] = challenges;
  const [response] = responses;
  if (challenge === undefined || response === undefined || challenges.length !== 1 || responses.length !== 1) return undefined;
  if (challenge.value.length !== MS_CHAP_CHALLENGE_LENGTH || response.value.length !== MS_CHAP2_RESPONSE_LENGTH) return undefined;
  return { challenge: Buffer.from(challenge.value), response: Buffer.from(response.value) };
}

/** RFC 2865 §5: a text attribute holds 1..253 octets. Longer messages are cut at a character boundary. */
function replyMessage(text: string | undefined): RadiusAttribute[] {
  if (text === undefined || text === '') return [];
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 253) bytes = Buffer.from(new TextDecoder().decode(bytes.subarray(0, 253)).replace(/\uFFFD$/, ''), 'utf8');
  return [attr.octets(AttributeType.ReplyMessage, bytes)];
}

/** What keys the hidden attributes of one reply: the client's secret and the Request Authenticator of the request it answers. */
export interface ReplyKeying {
  readonly secret: Buffer;
  readonly requestAuthenticator: Buffer;
}

/**
 * MS-MPPE-Send-Key and -Recv-Key for this reply (RFC 2548 §2.4.2, §2.4.3), each with its own
 * new salt. Made once per reply: the encoded reply is what a retransmission gets again.
 */
function mppeKeyAttributes(keys: MppeKeys | undefined, keying: ReplyKeying): RadiusAttribute[] {
  if (keys === undefined) return [];
  const present: Array<[number, Buffer]> = [];
  if (keys.recvKey !== undefined) present.push([MicrosoftAttributeType.MsMppeRecvKey, keys.recvKey]);
  if (keys.sendKey !== undefined) present.push([MicrosoftAttributeType.MsMppeSendKey, keys.sendKey]);
  const salts = newMppeSalts(present.length);
  return present.map(([type, key], i) =>
    attr.vendorSpecific(VendorId.Microsoft, type, encryptMppeKey(key, keying.secret, keying.requestAuthenticator, salts[i] as Buffer)),
  );
}

/** The reply's code and attributes (Message-Authenticator and Proxy-State are added by the encoder). */
export function toReply(decision: Decision, keying: ReplyKeying): { code: number; attributes: RadiusAttribute[] } {
  switch (decision.kind) {
    case 'accept':
      return {
        code: Code.AccessAccept,
        attributes: [...replyMessage(decision.message), ...(decision.attributes ?? []), ...mppeKeyAttributes(decision.mppeKeys, keying)],
      };
    case 'reject':
      return { code: Code.AccessReject, attributes: [...replyMessage(decision.message), ...(decision.attributes ?? [])] };
    case 'challenge':
      return { code: Code.AccessChallenge, attributes: [...replyMessage(decision.prompt), attr.octets(AttributeType.State, decision.state)] };
  }
}
