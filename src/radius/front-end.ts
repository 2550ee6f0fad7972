import { randomUUID } from 'node:crypto';
import type { AuthAttempt } from '../auth/attempt.js';
import type { Decision } from '../auth/decision.js';
import type { ResolvedClient } from '../config/config.js';
import { AttributeType, Code, attr, getAttribute, readIpv4, readText, readTextStrict, unhidePassword, type RadiusAttribute, type RadiusPacket } from './codec/index.js';

/**
 * RADIUS ⇄ flow translation, and nothing else: no policy is decided here (STYLE.md §1).
 */

export interface PacketOrigin {
  readonly address: string;
  readonly port: number;
  /** The local address the packet arrived on. */
  readonly localAddress: string | null;
}

export function toAttempt(packet: RadiusPacket, client: ResolvedClient, origin: PacketOrigin, receivedAt: number): AuthAttempt {
  const text = (type: number): string | null => {
    const value = getAttribute(packet, type);
    return value === undefined ? null : readText(value);
  };
  // A User-Name that is not valid UTF-8 matches nobody (rather than a lossy look-alike).
  const rawName = getAttribute(packet, AttributeType.UserName);
  const username = rawName === undefined ? '' : (readTextStrict(rawName) ?? '');
  const hidden = getAttribute(packet, AttributeType.UserPassword);
  const clear = hidden === undefined ? undefined : unhidePassword(hidden, client.secret, packet.authenticator);
  const password = clear === undefined ? undefined : clear.toString('utf8');
  const state = getAttribute(packet, AttributeType.State);
  const nasIp = getAttribute(packet, AttributeType.NasIpAddress);
  return {
    id: randomUUID(),
    protocol: 'radius',
    client: { name: client.name, ip: origin.address },
    username,
    // RFC 2865 §4.4: the answer to an Access-Challenge comes back in User-Password, with State.
    password: state === undefined ? password : undefined,
    state,
    response: state === undefined ? undefined : password,
    nas: {
      identifier: text(AttributeType.NasIdentifier),
      ipAddress: nasIp === undefined ? null : (readIpv4(nasIp) ?? null),
      callingStationId: text(AttributeType.CallingStationId),
      calledStationId: text(AttributeType.CalledStationId),
    },
    localAddress: origin.localAddress,
    receivedAt,
  };
}

/** RFC 2865 §5: a text attribute holds 1..253 octets. Longer messages are cut at a character boundary. */
function replyMessage(text: string | undefined): RadiusAttribute[] {
  if (text === undefined || text === '') return [];
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length > 253) bytes = Buffer.from(new TextDecoder().decode(bytes.subarray(0, 253)).replace(/\uFFFD$/, ''), 'utf8');
  return [attr.octets(AttributeType.ReplyMessage, bytes)];
}

/** The reply's code and attributes (Message-Authenticator and Proxy-State are added by the encoder). */
export function toReply(decision: Decision): { code: number; attributes: RadiusAttribute[] } {
  switch (decision.kind) {
    case 'accept':
      return { code: Code.AccessAccept, attributes: replyMessage(decision.message) };
    case 'reject':
      return { code: Code.AccessReject, attributes: replyMessage(decision.message) };
    case 'challenge':
      return { code: Code.AccessChallenge, attributes: [...replyMessage(decision.prompt), attr.octets(AttributeType.State, decision.state)] };
  }
}
