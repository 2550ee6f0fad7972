/**
 * Whole-packet builders and checks: the pieces (encodePacket, hiding, MACs, authenticators) put
 * together in the one order that is correct, so that callers cannot get it wrong:
 * attributes → Message-Authenticator → Request/Response Authenticator.
 */
import { AUTHENTICATOR_LENGTH, Code, HEADER_LENGTH, RadiusEncodeError, encodePacket } from './packet.js';
import type { RadiusAttribute, RadiusPacket } from './packet.js';
import { AttributeType } from './attributes.js';
import {
  computeAccountingRequestAuthenticator,
  computeResponseAuthenticator,
  randomAuthenticator,
  verifyResponseAuthenticator,
} from './authenticators.js';
import { MESSAGE_AUTHENTICATOR_LENGTH, computeMessageAuthenticator, verifyReplyMessageAuthenticator } from './message-authenticator.js';
import { hidePassword } from './user-password.js';

// Message-Authenticator goes first, so its value sits right after the header.
const FIRST_VALUE_OFFSET = HEADER_LENGTH + 2;
const ZERO_AUTHENTICATOR = Buffer.alloc(AUTHENTICATOR_LENGTH);

function placeholder(): RadiusAttribute {
  return { type: AttributeType.MessageAuthenticator, value: Buffer.alloc(MESSAGE_AUTHENTICATOR_LENGTH) };
}

function assertSecret(secret: Buffer): void {
  // An empty secret makes every MAC and authenticator forgeable by anyone; config forbids it,
  // this is the last line.
  if (secret.length === 0) throw new RadiusEncodeError('the shared secret is empty');
}

function refuse(attributes: readonly RadiusAttribute[], type: number, why: string): void {
  if (attributes.some((a) => a.type === type)) throw new RadiusEncodeError(why);
}

// RFC 2865 §4, RFC 2866 §4, RFC 5997 §3: which reply codes answer which request codes.
const REPLY_CODES: ReadonlyMap<number, readonly number[]> = new Map([
  [Code.AccessRequest, [Code.AccessAccept, Code.AccessReject, Code.AccessChallenge]],
  [Code.StatusServer, [Code.AccessAccept, Code.AccountingResponse]],
  [Code.AccountingRequest, [Code.AccountingResponse]],
]);

/**
 * Builds a complete reply to `request`:
 * - Message-Authenticator as the FIRST attribute. Blast-RADIUS (CVE-2024-3596) forges an Accept
 *   from a Reject with an MD5 chosen-prefix collision; that needs the bytes before the
 *   attacker-controlled Proxy-State to be predictable, and an HMAC value up front makes them
 *   unpredictable even for clients that ignore the attribute. Omitted only in the reply to an
 *   Accounting-Request, where RFC 2866 expects none and implementations disagree on its framing.
 * - then `attributes` in the given order;
 * - then the request's Proxy-State attributes, in their order (RFC 2865 §5.33);
 * - MAC over that with the request authenticator in the header (RFC 3579 §3.2);
 * - Response Authenticator last, since it covers the MAC (RFC 2865 §3).
 */
export function encodeReply(request: RadiusPacket, code: number, attributes: readonly RadiusAttribute[], secret: Buffer): Buffer {
  assertSecret(secret);
  const allowed = REPLY_CODES.get(request.code);
  if (!allowed?.includes(code)) {
    throw new RadiusEncodeError(`code ${code} is not a reply to code ${request.code}`);
  }
  refuse(attributes, AttributeType.MessageAuthenticator, 'Message-Authenticator is added by encodeReply');
  refuse(attributes, AttributeType.ProxyState, 'Proxy-State is copied from the request by encodeReply');

  const withMac = request.code !== Code.AccountingRequest;
  const proxyStates = request.attributes.filter((a) => a.type === AttributeType.ProxyState);
  const raw = encodePacket({
    code,
    identifier: request.identifier,
    authenticator: request.authenticator,
    attributes: [...(withMac ? [placeholder()] : []), ...attributes, ...proxyStates],
  });
  if (withMac) {
    computeMessageAuthenticator(raw, FIRST_VALUE_OFFSET, request.authenticator, secret).copy(raw, FIRST_VALUE_OFFSET);
  }
  computeResponseAuthenticator(raw, request.authenticator, secret).copy(raw, 4);
  return raw;
}

export interface AccessRequestOptions {
  readonly identifier: number;
  readonly secret: Buffer;
  readonly attributes: readonly RadiusAttribute[];
  /** Cleartext password, hidden into User-Password here (RFC 2865 §5.2). At most 128 octets. */
  readonly password?: Buffer;
  /** Only for tests and reproducible examples: a reused authenticator leaks the password's XOR. */
  readonly authenticator?: Buffer;
  /** Access-Request (default) or Status-Server (RFC 5997). */
  readonly code?: number;
}

/**
 * Builds an Access-Request or Status-Server: random authenticator unless given,
 * Message-Authenticator first (RFC 5997 §3 requires it in Status-Server; Blast-RADIUS guidance in
 * every Access-Request), User-Password hidden and placed after User-Name.
 * Returns the authenticator too: the reply is verified against it.
 */
export function encodeAccessRequest(opts: AccessRequestOptions): { packet: Buffer; authenticator: Buffer } {
  assertSecret(opts.secret);
  const code = opts.code ?? Code.AccessRequest;
  if (code !== Code.AccessRequest && code !== Code.StatusServer) {
    throw new RadiusEncodeError(`encodeAccessRequest builds Access-Request or Status-Server, not code ${code}`);
  }
  const authenticator = Buffer.from(opts.authenticator ?? randomAuthenticator());
  if (authenticator.length !== AUTHENTICATOR_LENGTH) {
    throw new RadiusEncodeError(`authenticator must be ${AUTHENTICATOR_LENGTH} octets, not ${authenticator.length}`);
  }
  refuse(opts.attributes, AttributeType.MessageAuthenticator, 'Message-Authenticator is added by encodeAccessRequest');

  const attributes = [placeholder(), ...opts.attributes];
  if (opts.password !== undefined) {
    if (code === Code.StatusServer) throw new RadiusEncodeError('a Status-Server carries no password');
    refuse(opts.attributes, AttributeType.UserPassword, 'give the password as `password`, not as a User-Password attribute');
    const hidden = { type: AttributeType.UserPassword, value: hidePassword(opts.password, opts.secret, authenticator) };
    const userName = attributes.findIndex((a) => a.type === AttributeType.UserName);
    attributes.splice(userName === -1 ? 1 : userName + 1, 0, hidden);
  }

  const packet = encodePacket({ code, identifier: opts.identifier, authenticator, attributes });
  computeMessageAuthenticator(packet, FIRST_VALUE_OFFSET, authenticator, opts.secret).copy(packet, FIRST_VALUE_OFFSET);
  return { packet, authenticator };
}

export interface AccountingRequestOptions {
  readonly identifier: number;
  readonly secret: Buffer;
  readonly attributes: readonly RadiusAttribute[];
  /** Add a Message-Authenticator (first, computed over a zero authenticator field, as FreeRADIUS does). */
  readonly messageAuthenticator?: boolean;
}

/** Builds an Accounting-Request with its RFC 2866 §3 Request Authenticator. */
export function encodeAccountingRequest(opts: AccountingRequestOptions): Buffer {
  assertSecret(opts.secret);
  refuse(opts.attributes, AttributeType.MessageAuthenticator, 'Message-Authenticator is added by encodeAccountingRequest');
  const withMac = opts.messageAuthenticator === true;
  const packet = encodePacket({
    code: Code.AccountingRequest,
    identifier: opts.identifier,
    authenticator: ZERO_AUTHENTICATOR,
    attributes: withMac ? [placeholder(), ...opts.attributes] : opts.attributes,
  });
  if (withMac) {
    computeMessageAuthenticator(packet, FIRST_VALUE_OFFSET, ZERO_AUTHENTICATOR, opts.secret).copy(packet, FIRST_VALUE_OFFSET);
  }
  computeAccountingRequestAuthenticator(packet, opts.secret).copy(packet, 4);
  return packet;
}

export interface VerifyReplyOptions {
  /**
   * Refuse replies without a Message-Authenticator. Blast-RADIUS guidance: a client that sent one
   * should demand one in Access-Accept/Reject/Challenge. Off by default because old servers omit it.
   */
  readonly requireMessageAuthenticator?: boolean;
}

/**
 * True when the reply's Response Authenticator is right for `requestAuthenticator` and its
 * Message-Authenticator, if present (or required), is valid and unique. The caller still matches
 * the Identifier, the source address and the reply code to the request.
 */
export function verifyReply(
  reply: RadiusPacket,
  requestAuthenticator: Buffer,
  secret: Buffer,
  options: VerifyReplyOptions = {},
): boolean {
  if (secret.length === 0) return false;
  if (!verifyResponseAuthenticator(reply, requestAuthenticator, secret)) return false;
  const mac = verifyReplyMessageAuthenticator(reply, requestAuthenticator, secret);
  if (mac === 'missing') return options.requireMessageAuthenticator !== true;
  return mac === 'valid';
}
