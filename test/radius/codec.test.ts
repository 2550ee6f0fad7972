import t from 'tap';
import { createHash, createHmac } from 'node:crypto';
import { GatewayError } from '../../src/errors.js';
import {
  AttributeType,
  Code,
  MAX_PACKET_LENGTH,
  RadiusDecodeError,
  RadiusEncodeError,
  STANDARD_ATTRIBUTES,
  attr,
  computeMessageAuthenticator,
  computeResponseAuthenticator,
  decodePacket,
  encodeAccessRequest,
  encodeAccountingRequest,
  encodePacket,
  encodeReply,
  formatAttribute,
  formatAttributes,
  formatIpv6,
  getAttribute,
  getAttributes,
  hidePassword,
  parseAttribute,
  parseIpv4,
  parseIpv6,
  readDate,
  readInteger,
  readIpv4,
  readIpv6,
  readText,
  readTextStrict,
  unhidePassword,
  verifyAccountingRequestAuthenticator,
  verifyReply,
  verifyReplyMessageAuthenticator,
  verifyRequestMessageAuthenticator,
  verifyResponseAuthenticator,
} from '../../src/radius/codec/index.js';
import type { DecodeFailure, RadiusAttribute, RadiusPacket } from '../../src/radius/codec/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decoded(buf: Buffer): RadiusPacket {
  const p = decodePacket(buf);
  if (p instanceof RadiusDecodeError) throw p;
  return p;
}

function lines(p: RadiusPacket): string[] {
  return formatAttributes(p.attributes).map((l) => `${l.name} = ${l.value}`);
}

// ---------------------------------------------------------------------------------------------
// RFC 2865 §7 examples, shared secret "xyzzy5461".
//
// Provenance: the RFC text itself was not retrievable here, so the hex dumps were taken from
// public test suites that embed them: §7.1 (both packets), the §7.2 Access-Request and the §7.3
// Access-Challenge agree byte for byte across independent copies (SigScale's Erlang radius
// suite, a Rust codec's suite, ForgeRock's Java suite); the §7.2 Access-Accept and the rest of
// §7.3 come from the SigScale suite, which notes that it follows RFC 2865 Errata ID 1469 there
// (the printed §7.3 second Access-Request has a wrong State length). None of this is taken on
// trust: every reply below must verify under MD5 with the secret and the request authenticator,
// and every hidden password must unhide to the text the RFC names, which a transcription error
// in the authenticators, the hidden octets or any reply octet would break.
const SECRET = Buffer.from('xyzzy5461');

const RFC_7_1_REQUEST = hex(`
  01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
  98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
  93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
  01 10 05 06 00 00 00 03`);
const RFC_7_1_ACCEPT = hex(`
  02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
  9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
  0e 06 c0 a8 01 03`);
const RFC_7_2_REQUEST = hex(`
  01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
  0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
  75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
  06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
  02 07 06 00 00 00 01`);
const RFC_7_2_ACCEPT = hex(`
  02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
  3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
  08 06 ff ff ff fe 0a 06 00 00 00 02 0d 06 00 00
  00 01 0c 06 00 00 05 dc`);
const RFC_7_3_REQUEST_1 = hex(`
  01 02 00 39 f3 a4 7a 1f 6a 6d 76 71 0b 94 7a b9
  30 41 a0 39 01 07 6d 6f 70 73 79 02 12 33 65 75
  73 77 82 89 b5 70 88 5e 15 08 48 25 c5 04 06 c0
  a8 01 10 05 06 00 00 00 07`);
const RFC_7_3_CHALLENGE = hex(`
  0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c
  71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20
  33 32 37 36 39 34 33 30 2e 20 20 45 6e 74 65 72
  20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f
  6d 70 74 2e 18 0a 33 32 37 36 39 34 33 30`);
const RFC_7_3_REQUEST_2 = hex(`
  01 03 00 43 b1 22 55 6d 42 8a 13 d0 d6 25 38 07
  c4 57 ec f0 01 07 6d 6f 70 73 79 02 12 69 2c 1f
  20 5f c0 81 b9 19 b9 51 95 f5 61 a5 81 04 06 c0
  a8 01 10 05 06 00 00 00 07 18 0a 33 32 37 36 39
  34 33 30`);
const RFC_7_3_REJECT = hex('03 03 00 14 a4 2f 4f ca 45 91 6c 4e 09 c8 34 0f 9e 74 6a a0');

void t.test('RFC 2865 §7.1: User Telnet to Specified Host', async (t) => {
  const req = decoded(RFC_7_1_REQUEST);
  t.equal(req.code, Code.AccessRequest);
  t.equal(req.identifier, 0);
  t.equal(req.authenticator.toString('hex'), '0f403f9473978057bd83d5cb98f4227a');
  t.same(
    req.attributes.map((a) => a.type),
    [AttributeType.UserName, AttributeType.UserPassword, AttributeType.NasIpAddress, AttributeType.NasPort],
  );
  t.equal(readText(getAttribute(req, AttributeType.UserName) as Buffer), 'nemo');
  t.equal(readIpv4(getAttribute(req, AttributeType.NasIpAddress) as Buffer), '192.168.1.16');
  t.equal(readInteger(getAttribute(req, AttributeType.NasPort) as Buffer), 3);
  const hidden = getAttribute(req, AttributeType.UserPassword) as Buffer;
  t.equal(unhidePassword(hidden, SECRET, req.authenticator)?.toString(), 'arctangent');
  t.equal(verifyRequestMessageAuthenticator(req, SECRET), 'missing', 'RFC 2865 predates Message-Authenticator');
  t.same(lines(req), ['User-Name = "nemo"', 'User-Password = <hidden, 16 octets>', 'NAS-IP-Address = 192.168.1.16', 'NAS-Port = 3']);

  t.ok(encodePacket(req).equals(RFC_7_1_REQUEST), 're-encodes byte for byte');
  const built = encodePacket({
    code: Code.AccessRequest,
    identifier: 0,
    authenticator: req.authenticator,
    attributes: [
      attr.text(AttributeType.UserName, 'nemo'),
      attr.octets(AttributeType.UserPassword, hidePassword(Buffer.from('arctangent'), SECRET, req.authenticator)),
      attr.ipv4(AttributeType.NasIpAddress, '192.168.1.16'),
      attr.integer(AttributeType.NasPort, 3),
    ],
  });
  t.ok(built.equals(RFC_7_1_REQUEST), 'building it from its parts gives the same bytes');

  const accept = decoded(RFC_7_1_ACCEPT);
  t.equal(accept.code, Code.AccessAccept);
  t.equal(accept.identifier, 0);
  t.same(lines(accept), ['Service-Type = Login-User', 'Login-Service = Telnet', 'Login-IP-Host = 192.168.1.3']);
  t.ok(verifyResponseAuthenticator(accept, req.authenticator, SECRET), 'Response Authenticator verifies');
  t.ok(verifyReply(accept, req.authenticator, SECRET), 'verifyReply accepts it (no Message-Authenticator to check)');
  t.notOk(verifyReply(accept, req.authenticator, SECRET, { requireMessageAuthenticator: true }), 'unless one is required');
  t.notOk(verifyResponseAuthenticator(accept, decoded(RFC_7_2_REQUEST).authenticator, SECRET), 'not against another request');
  t.notOk(verifyResponseAuthenticator(accept, req.authenticator, Buffer.from('xyzzy5462')), 'not with another secret');
  t.ok(encodePacket(accept).equals(RFC_7_1_ACCEPT));

  const reply = encodePacket({
    code: Code.AccessAccept,
    identifier: 0,
    authenticator: req.authenticator,
    attributes: [
      attr.integer(AttributeType.ServiceType, 1),
      attr.integer(AttributeType.LoginService, 0),
      attr.ipv4(AttributeType.LoginIpHost, '192.168.1.3'),
    ],
  });
  computeResponseAuthenticator(reply, req.authenticator, SECRET).copy(reply, 4);
  t.ok(reply.equals(RFC_7_1_ACCEPT), 'computing the Response Authenticator reproduces the RFC reply');
});

void t.test('RFC 2865 §7.2: Framed User Authenticating with CHAP', async (t) => {
  const req = decoded(RFC_7_2_REQUEST);
  t.equal(req.identifier, 1);
  t.same(lines(req), [
    'User-Name = "flopsy"',
    'CHAP-Password = <hidden, 17 octets>',
    'NAS-IP-Address = 192.168.1.16',
    'NAS-Port = 20',
    'Service-Type = Framed-User',
    'Framed-Protocol = PPP',
  ]);
  const chap = getAttribute(req, AttributeType.ChapPassword) as Buffer;
  t.equal(chap.length, 17);
  t.equal(chap[0], 22, 'CHAP Ident 22, then the 16-octet response');
  t.equal(getAttribute(req, AttributeType.ChapChallenge), undefined, 'no CHAP-Challenge: the Request Authenticator is the challenge (§5.3)');
  t.ok(encodePacket(req).equals(RFC_7_2_REQUEST));

  const accept = decoded(RFC_7_2_ACCEPT);
  t.same(lines(accept), [
    'Service-Type = Framed-User',
    'Framed-Protocol = PPP',
    'Framed-IP-Address = 255.255.255.254',
    'Framed-Routing = Listen',
    'Framed-Compression = Van-Jacobson-TCP-IP',
    'Framed-MTU = 1500',
  ]);
  t.ok(verifyResponseAuthenticator(accept, req.authenticator, SECRET), 'Response Authenticator verifies');
  t.ok(encodePacket(accept).equals(RFC_7_2_ACCEPT));
});

void t.test('RFC 2865 §7.3: User with Challenge-Response card', async (t) => {
  const req1 = decoded(RFC_7_3_REQUEST_1);
  t.equal(req1.identifier, 2);
  t.equal(readText(getAttribute(req1, AttributeType.UserName) as Buffer), 'mopsy');
  t.equal(unhidePassword(getAttribute(req1, AttributeType.UserPassword) as Buffer, SECRET, req1.authenticator)?.toString(), 'challenge');
  t.equal(readInteger(getAttribute(req1, AttributeType.NasPort) as Buffer), 7);
  t.ok(encodePacket(req1).equals(RFC_7_3_REQUEST_1));

  const challenge = decoded(RFC_7_3_CHALLENGE);
  t.equal(challenge.code, Code.AccessChallenge);
  t.same(lines(challenge), ['Reply-Message = "Challenge 32769430.  Enter response at prompt."', 'State = 0x3332373639343330']);
  t.ok(verifyResponseAuthenticator(challenge, req1.authenticator, SECRET));
  t.ok(encodePacket(challenge).equals(RFC_7_3_CHALLENGE));

  const req2 = decoded(RFC_7_3_REQUEST_2);
  t.equal(req2.identifier, 3);
  t.equal(unhidePassword(getAttribute(req2, AttributeType.UserPassword) as Buffer, SECRET, req2.authenticator)?.toString(), '99101462');
  t.ok((getAttribute(req2, AttributeType.State) as Buffer).equals(getAttribute(challenge, AttributeType.State) as Buffer), 'State echoed');
  t.ok(encodePacket(req2).equals(RFC_7_3_REQUEST_2));

  const reject = decoded(RFC_7_3_REJECT);
  t.equal(reject.code, Code.AccessReject);
  t.equal(reject.attributes.length, 0);
  t.ok(verifyResponseAuthenticator(reject, req2.authenticator, SECRET));
  t.notOk(verifyResponseAuthenticator(reject, req1.authenticator, SECRET));
  t.ok(encodePacket(reject).equals(RFC_7_3_REJECT));
});

// ---------------------------------------------------------------------------------------------

const S = Buffer.from('a-much-better-shared-secret-0123');

/** HMAC-MD5 as RFC 3579 §3.2 words it, computed on a zeroed copy: independent of the codec's slicing. */
function referenceMac(raw: Buffer, valueOffset: number, authenticatorField: Buffer, secret: Buffer): Buffer {
  const copy = Buffer.from(raw);
  authenticatorField.copy(copy, 4);
  copy.fill(0, valueOffset, valueOffset + 16);
  return createHmac('md5', secret).update(copy).digest();
}

function sampleRequest(extra: readonly RadiusAttribute[] = []): { packet: RadiusPacket; bytes: Buffer } {
  const { packet: bytes } = encodeAccessRequest({
    identifier: 42,
    secret: S,
    password: Buffer.from('correct horse'),
    attributes: [
      attr.text(AttributeType.UserName, 'alice'),
      attr.text(AttributeType.NasIdentifier, 'vpn-1'),
      attr.ipv4(AttributeType.NasIpAddress, '10.0.0.1'),
      ...extra,
    ],
  });
  return { packet: decoded(bytes), bytes };
}

void t.test('Message-Authenticator, RFC 2869 §5.14 / RFC 3579 §3.2', async (t) => {
  await t.test('requests', async (t) => {
    const eap = attr.octets(AttributeType.EapMessage, hex('02 01 00 0a 01 61 6c 69 63 65'));
    const { packet } = sampleRequest([eap]);
    t.equal(packet.attributes[0]?.type, AttributeType.MessageAuthenticator, 'first attribute');
    t.equal(verifyRequestMessageAuthenticator(packet, S), 'valid');
    t.ok(
      (getAttribute(packet, AttributeType.MessageAuthenticator) as Buffer).equals(referenceMac(packet.raw, 22, packet.authenticator, S)),
      'equals HMAC-MD5 over the packet with the value zeroed',
    );
    t.equal(verifyRequestMessageAuthenticator(packet, Buffer.from('another-secret-entirely')), 'invalid');

    const unsigned = decoded(encodePacket({ code: Code.AccessRequest, identifier: 1, authenticator: Buffer.alloc(16, 7), attributes: [eap] }));
    t.equal(verifyRequestMessageAuthenticator(unsigned, S), 'missing');

    const status = decoded(encodeAccessRequest({ identifier: 9, secret: S, attributes: [], code: Code.StatusServer }).packet);
    t.equal(status.code, Code.StatusServer);
    t.equal(verifyRequestMessageAuthenticator(status, S), 'valid', 'Status-Server (RFC 5997 §3)');
  });

  await t.test('position does not matter to the check', async (t) => {
    const auth = Buffer.alloc(16, 0x5a);
    const raw = encodePacket({
      code: Code.AccessRequest,
      identifier: 3,
      authenticator: auth,
      attributes: [attr.text(AttributeType.UserName, 'bob'), { type: AttributeType.MessageAuthenticator, value: Buffer.alloc(16) }],
    });
    const offset = raw.length - 16;
    computeMessageAuthenticator(raw, offset, auth, S).copy(raw, offset);
    t.equal(verifyRequestMessageAuthenticator(decoded(raw), S), 'valid', 'Message-Authenticator last');
  });

  await t.test('malformed or duplicated attributes are invalid', async (t) => {
    for (const length of [0, 1, 15, 17, 32]) {
      const p = decoded(
        encodePacket({
          code: Code.AccessRequest,
          identifier: 1,
          authenticator: Buffer.alloc(16),
          attributes: [{ type: AttributeType.MessageAuthenticator, value: Buffer.alloc(length) }],
        }),
      );
      t.equal(verifyRequestMessageAuthenticator(p, S), 'invalid', `length ${length}`);
    }
    // Two attributes, the first carrying a MAC that would verify on its own.
    const auth = Buffer.alloc(16, 1);
    const raw = encodePacket({
      code: Code.AccessRequest,
      identifier: 1,
      authenticator: auth,
      attributes: [
        { type: AttributeType.MessageAuthenticator, value: Buffer.alloc(16) },
        { type: AttributeType.MessageAuthenticator, value: Buffer.alloc(16, 0xee) },
      ],
    });
    computeMessageAuthenticator(raw, 22, auth, S).copy(raw, 22);
    t.ok(referenceMac(raw, 22, auth, S).equals(raw.subarray(22, 38)), 'the first one is a correct MAC');
    t.equal(verifyRequestMessageAuthenticator(decoded(raw), S), 'invalid', 'but two of them are refused');
  });

  await t.test('a flipped bit anywhere in the MAC is rejected (constant-time compare path)', async (t) => {
    const { bytes } = sampleRequest();
    let rejected = 0;
    for (let i = 0; i < 16; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(bytes);
        copy[22 + i] = (copy[22 + i] as number) ^ (1 << bit);
        if (verifyRequestMessageAuthenticator(decoded(copy), S) === 'invalid') rejected++;
      }
    }
    t.equal(rejected, 128, 'all 16 octets × 8 bits');
  });

  await t.test('a flipped bit anywhere else in a signed request is rejected', async (t) => {
    const { bytes } = sampleRequest();
    let accepted = 0;
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(bytes);
        copy[i] = (copy[i] as number) ^ (1 << bit);
        const p = decodePacket(copy);
        if (!(p instanceof RadiusDecodeError) && verifyRequestMessageAuthenticator(p, S) === 'valid') accepted++;
      }
    }
    t.equal(accepted, 0);
  });

  await t.test('replies', async (t) => {
    const { packet: request } = sampleRequest();
    const eap = attr.octets(AttributeType.EapMessage, hex('01 02 00 06 0d 20'));
    const bytes = encodeReply(request, Code.AccessChallenge, [eap, attr.octets(AttributeType.State, Buffer.from('s1'))], S);
    const reply = decoded(bytes);
    t.equal(verifyReplyMessageAuthenticator(reply, request.authenticator, S), 'valid');
    t.ok(
      (getAttribute(reply, AttributeType.MessageAuthenticator) as Buffer).equals(referenceMac(reply.raw, 22, request.authenticator, S)),
      'HMAC over the reply with the REQUEST authenticator in the header',
    );
    t.ok(verifyReply(reply, request.authenticator, S, { requireMessageAuthenticator: true }));
    t.notOk(verifyReply(reply, Buffer.alloc(16), S));
    t.notOk(verifyReply(reply, request.authenticator, Buffer.from('x')));

    // Flip each MAC bit and then repair the Response Authenticator, so that only the MAC is wrong.
    let rejected = 0;
    for (let i = 0; i < 16; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(bytes);
        copy[22 + i] = (copy[22 + i] as number) ^ (1 << bit);
        computeResponseAuthenticator(copy, request.authenticator, S).copy(copy, 4);
        const p = decoded(copy);
        if (verifyResponseAuthenticator(p, request.authenticator, S) && !verifyReply(p, request.authenticator, S)) rejected++;
      }
    }
    t.equal(rejected, 128, 'a bad MAC fails verifyReply even under a valid Response Authenticator');
  });

  await t.test('accounting', async (t) => {
    const bytes = encodeAccountingRequest({
      identifier: 7,
      secret: S,
      messageAuthenticator: true,
      attributes: [attr.integer(AttributeType.AcctStatusType, 1), attr.text(AttributeType.AcctSessionId, 'abc')],
    });
    const p = decoded(bytes);
    t.ok(verifyAccountingRequestAuthenticator(p, S), 'RFC 2866 §3 Request Authenticator');
    t.equal(verifyRequestMessageAuthenticator(p, S), 'valid', 'MAC over a zeroed authenticator field');
    t.ok(
      (getAttribute(p, AttributeType.MessageAuthenticator) as Buffer).equals(referenceMac(p.raw, 22, Buffer.alloc(16), S)),
      'as FreeRADIUS computes it',
    );
    const md5 = createHash('md5')
      .update(Buffer.concat([bytes.subarray(0, 4), Buffer.alloc(16), bytes.subarray(20)]))
      .update(S)
      .digest();
    t.ok(md5.equals(p.authenticator), 'MD5(Code+ID+Length+16 zeros+Attributes+Secret)');
    const newAuthenticator = Buffer.from(bytes);
    newAuthenticator[4] = (newAuthenticator[4] as number) ^ 0x80;
    t.equal(
      verifyRequestMessageAuthenticator(decoded(newAuthenticator), S),
      'invalid',
      'the MAC does not cover the Authenticator field here, so the RFC 2866 authenticator is checked too',
    );
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    t.notOk(verifyAccountingRequestAuthenticator(decoded(tampered), S));
    t.notOk(verifyAccountingRequestAuthenticator(p, Buffer.from('wrong')));
    t.notOk(verifyAccountingRequestAuthenticator(p, Buffer.alloc(0)), 'never with an empty secret');
    t.equal(verifyRequestMessageAuthenticator(p, Buffer.alloc(0)), 'invalid');

    // An Accounting-Response signed FreeRADIUS-style: MAC over a zeroed Authenticator field first.
    const resp = encodePacket({
      code: Code.AccountingResponse,
      identifier: p.identifier,
      authenticator: Buffer.alloc(16),
      attributes: [{ type: AttributeType.MessageAuthenticator, value: Buffer.alloc(16) }],
    });
    computeMessageAuthenticator(resp, 22, Buffer.alloc(16), S).copy(resp, 22);
    computeResponseAuthenticator(resp, p.authenticator, S).copy(resp, 4);
    t.equal(verifyReplyMessageAuthenticator(decoded(resp), p.authenticator, S), 'valid', 'zero framing accepted for Accounting-Response');
    t.ok(verifyReply(decoded(resp), p.authenticator, S, { requireMessageAuthenticator: true }));
    const bent = Buffer.from(resp);
    bent[4] = (bent[4] as number) ^ 1;
    t.equal(verifyReplyMessageAuthenticator(decoded(bent), p.authenticator, S), 'invalid', 'but only with a valid Response Authenticator');
    t.notOk(verifyReply(decoded(bent), p.authenticator, S));
  });
});

void t.test('encodeReply', async (t) => {
  const auth = Buffer.alloc(16, 0x11);
  const requestBytes = encodePacket({
    code: Code.AccessRequest,
    identifier: 200,
    authenticator: auth,
    attributes: [
      attr.octets(AttributeType.ProxyState, Buffer.from('first')),
      attr.text(AttributeType.UserName, 'carol'),
      attr.octets(AttributeType.ProxyState, Buffer.from('second')),
      { type: AttributeType.ProxyState, value: Buffer.alloc(0) },
      attr.octets(AttributeType.ProxyState, Buffer.from('fourth')),
    ],
  });
  const request = decoded(requestBytes);
  const given = [attr.text(AttributeType.ReplyMessage, 'welcome'), attr.octets(AttributeType.Class, Buffer.from('c')), attr.integer(AttributeType.SessionTimeout, 3600)];
  const bytes = encodeReply(request, Code.AccessAccept, given, S);
  const reply = decoded(bytes);

  t.equal(reply.identifier, 200);
  t.equal(bytes[20], AttributeType.MessageAuthenticator, 'Message-Authenticator is the first attribute');
  t.equal(bytes[21], 18);
  t.same(
    reply.attributes.map((a) => a.type),
    [80, 18, 25, 27, 33, 33, 33, 33],
    'then the given attributes, then Proxy-State',
  );
  t.same(
    getAttributes(reply, AttributeType.ProxyState).map((b) => b.toString()),
    ['first', 'second', '', 'fourth'],
    'Proxy-State copied in order, byte for byte, even empty ones',
  );
  t.ok(verifyReply(reply, auth, S, { requireMessageAuthenticator: true }));
  t.equal(verifyReplyMessageAuthenticator(reply, auth, S), 'valid');

  const reject = decoded(encodeReply(request, Code.AccessReject, [], S));
  t.same(
    reject.attributes.map((a) => a.type),
    [80, 33, 33, 33, 33],
  );
  t.ok(verifyReply(reject, auth, S));

  const status = decoded(encodeAccessRequest({ identifier: 1, secret: S, attributes: [], code: Code.StatusServer }).packet);
  const alive = decoded(encodeReply(status, Code.AccessAccept, [], S));
  t.ok(verifyReply(alive, status.authenticator, S, { requireMessageAuthenticator: true }), 'reply to Status-Server carries a MAC');
  const aliveAcct = decoded(encodeReply(status, Code.AccountingResponse, [], S));
  t.equal(verifyReplyMessageAuthenticator(aliveAcct, status.authenticator, S), 'valid', 'RFC 5997: request authenticator framing');

  const acct = decoded(encodeAccountingRequest({ identifier: 5, secret: S, attributes: [attr.integer(AttributeType.AcctStatusType, 2)] }));
  const acctReply = decoded(encodeReply(acct, Code.AccountingResponse, [], S));
  t.equal(getAttribute(acctReply, AttributeType.MessageAuthenticator), undefined, 'no MAC in an Accounting-Response to accounting');
  t.ok(verifyReply(acctReply, acct.authenticator, S));

  t.throws(() => encodeReply(request, Code.AccountingResponse, [], S), { code: 'GW_ERR_RADIUS_ENCODE' }, 'wrong reply code');
  t.throws(() => encodeReply(request, Code.AccessRequest, [], S), { code: 'GW_ERR_RADIUS_ENCODE' });
  t.throws(() => encodeReply(acct, Code.AccessAccept, [], S), { code: 'GW_ERR_RADIUS_ENCODE' });
  t.throws(() => encodeReply(request, Code.AccessAccept, [{ type: 80, value: Buffer.alloc(16) }], S), RadiusEncodeError);
  t.throws(() => encodeReply(request, Code.AccessAccept, [attr.octets(33, Buffer.from('x'))], S), RadiusEncodeError);
  t.throws(() => encodeReply(request, Code.AccessAccept, [], Buffer.alloc(0)), RadiusEncodeError, 'empty secret');
  t.notOk(verifyReply(reply, auth, Buffer.alloc(0)));
});

void t.test('encodeAccessRequest', async (t) => {
  const a = encodeAccessRequest({ identifier: 1, secret: S, attributes: [attr.text(1, 'dave')], password: Buffer.from('pw') });
  const b = encodeAccessRequest({ identifier: 1, secret: S, attributes: [attr.text(1, 'dave')], password: Buffer.from('pw') });
  t.notOk(a.authenticator.equals(b.authenticator), 'random authenticators');
  t.ok(a.packet.subarray(4, 20).equals(a.authenticator));
  const p = decoded(a.packet);
  t.same(
    p.attributes.map((x) => x.type),
    [80, 1, 2],
    'MAC first, User-Password after User-Name',
  );
  t.equal(unhidePassword(getAttribute(p, 2) as Buffer, S, a.authenticator)?.toString(), 'pw');
  t.equal(verifyRequestMessageAuthenticator(p, S), 'valid');

  const noName = decoded(encodeAccessRequest({ identifier: 2, secret: S, attributes: [attr.text(32, 'nas')], password: Buffer.from('pw') }).packet);
  t.same(
    noName.attributes.map((x) => x.type),
    [80, 2, 32],
  );

  const fixed = Buffer.alloc(16, 3);
  const c = encodeAccessRequest({ identifier: 3, secret: S, attributes: [], authenticator: fixed });
  t.ok(c.authenticator.equals(fixed) && c.authenticator !== fixed, 'a given authenticator is used (and copied)');

  t.throws(() => encodeAccessRequest({ identifier: 1, secret: S, attributes: [], code: Code.AccessAccept }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 1, secret: S, attributes: [], code: Code.StatusServer, password: Buffer.from('x') }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 1, secret: S, attributes: [{ type: 80, value: Buffer.alloc(16) }] }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 1, secret: S, attributes: [attr.octets(2, Buffer.alloc(16))], password: Buffer.from('x') }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 1, secret: S, attributes: [], password: Buffer.alloc(129, 0x41) }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 1, secret: S, attributes: [], authenticator: Buffer.alloc(15) }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 256, secret: S, attributes: [] }), RadiusEncodeError);
  t.throws(() => encodeAccessRequest({ identifier: 1, secret: Buffer.alloc(0), attributes: [] }), RadiusEncodeError);
});

void t.test('decodePacket: every DecodeFailure, and padding', async (t) => {
  const header = (code: number, length: number, total = length): Buffer => {
    const b = Buffer.alloc(total);
    b[0] = code;
    b[1] = 9;
    b.writeUInt16BE(length, 2);
    return b;
  };
  const failure = (buf: Buffer, maxLength?: number): DecodeFailure | 'ok' => {
    const r = decodePacket(buf, maxLength);
    return r instanceof RadiusDecodeError ? r.reason : 'ok';
  };

  for (let n = 0; n < 20; n++) t.equal(failure(Buffer.alloc(n, 1)), 'too_short', `${n} octets`);
  for (const code of [0, 6, 10, 14, 40, 43, 255]) t.equal(failure(header(code, 20)), 'unknown_code', `code ${code}`);
  for (const length of [0, 1, 19]) t.equal(failure(header(1, length, 20)), 'bad_length', `Length ${length}`);
  t.equal(failure(header(1, 4097)), 'too_long', 'Length 4097');
  t.equal(failure(header(1, 65535)), 'too_long', 'Length 65535');
  t.equal(failure(header(1, 100), 50), 'too_long', 'above a lowered maximum');
  const largest = header(1, 4096);
  for (let i = 20; i < 4096; i += 2) {
    largest[i] = 18;
    largest[i + 1] = 2;
  }
  t.equal(failure(largest), 'ok', 'Length 4096 exactly');
  t.equal(failure(header(1, 30, 25)), 'length_mismatch', 'Length beyond the datagram');
  t.equal(failure(header(1, 21, 20)), 'length_mismatch');

  const withAttrs = (length: number, attrs: number[], total = length): Buffer => {
    const b = header(1, length, total);
    Buffer.from(attrs).copy(b, 20);
    return b;
  };
  t.equal(failure(withAttrs(22, [1, 0])), 'bad_attribute_length', 'attribute length 0');
  t.equal(failure(withAttrs(22, [1, 1])), 'bad_attribute_length', 'attribute length 1');
  t.equal(failure(withAttrs(23, [1, 4, 0x61])), 'bad_attribute_length', 'attribute past Length');
  t.equal(failure(withAttrs(24, [1, 6, 0x61, 0x62], 30)), 'bad_attribute_length', 'attribute reaching into the padding');
  t.equal(failure(withAttrs(21, [1])), 'bad_attribute_length', 'lone type octet');
  t.equal(failure(withAttrs(25, [1, 3, 0x61, 2])), 'bad_attribute_length', 'lone type octet after an attribute');
  t.equal(failure(withAttrs(22, [1, 2])), 'ok', 'an empty attribute is structurally fine');

  const padded = Buffer.concat([RFC_7_1_REQUEST, Buffer.alloc(10, 0xff)]);
  const p = decoded(padded);
  t.equal(p.raw.length, RFC_7_1_REQUEST.length, 'octets beyond Length are padding and ignored (RFC 2865 §3)');
  t.equal(p.attributes.length, 4);
  t.ok(encodePacket(p).equals(RFC_7_1_REQUEST));
  t.ok(decoded(Buffer.concat([RFC_7_1_REQUEST, Buffer.alloc(MAX_PACKET_LENGTH)])), 'padding may exceed the maximum length');

  const input = Buffer.from(RFC_7_1_REQUEST);
  const q = decoded(input);
  input.fill(0);
  t.equal(readText(getAttribute(q, 1) as Buffer), 'nemo', 'the packet does not alias the input buffer');

  const err = decodePacket(Buffer.alloc(3));
  t.ok(err instanceof GatewayError);
  t.equal((err as RadiusDecodeError).code, 'GW_ERR_RADIUS_DECODE');
  t.ok(Object.isFrozen(q) && Object.isFrozen(q.attributes), 'decoded packets are frozen');
});

void t.test('encodePacket limits', async (t) => {
  const base = { code: Code.AccessAccept, identifier: 0, authenticator: Buffer.alloc(16) };
  t.equal(encodePacket({ ...base, attributes: [{ type: 18, value: Buffer.alloc(253) }] }).length, 20 + 255, '253-octet value fits');
  t.throws(() => encodePacket({ ...base, attributes: [{ type: 18, value: Buffer.alloc(254) }] }), { code: 'GW_ERR_RADIUS_ENCODE' });

  const full = [...Array.from({ length: 15 }, () => ({ type: 18, value: Buffer.alloc(253, 0x61) })), { type: 18, value: Buffer.alloc(249, 0x62) }];
  const max = encodePacket({ ...base, attributes: full });
  t.equal(max.length, 4096, 'exactly 4096 octets');
  t.equal(decoded(max).attributes.length, 16);
  t.throws(() => encodePacket({ ...base, attributes: [...full, { type: 18, value: Buffer.alloc(0) }] }), RadiusEncodeError, '4098 octets');

  for (const identifier of [-1, 256, 1.5, NaN]) t.throws(() => encodePacket({ ...base, identifier, attributes: [] }), RadiusEncodeError);
  for (const code of [0, 6, 256]) t.throws(() => encodePacket({ ...base, code, attributes: [] }), RadiusEncodeError);
  t.throws(() => encodePacket({ ...base, authenticator: Buffer.alloc(15), attributes: [] }), RadiusEncodeError);
  t.throws(() => encodePacket({ ...base, attributes: [{ type: 256, value: Buffer.alloc(1) }] }), RadiusEncodeError);
});

void t.test('User-Password hiding, RFC 2865 §5.2', async (t) => {
  const ra = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  for (const [n, hiddenLength] of [
    [0, 16],
    [1, 16],
    [15, 16],
    [16, 16],
    [17, 32],
    [128, 128],
  ] as const) {
    const password = Buffer.alloc(n);
    for (let i = 0; i < n; i++) password[i] = 0x21 + ((i * 7) % 90);
    const hidden = hidePassword(password, S, ra);
    t.equal(hidden.length, hiddenLength, `${n} octets hide into ${hiddenLength}`);
    t.ok(unhidePassword(hidden, S, ra)?.equals(password), `${n} octets round-trip`);
    t.notOk(unhidePassword(hidden, Buffer.from('other'), ra)?.equals(password) ?? false, 'not under another secret');
  }
  t.throws(() => hidePassword(Buffer.alloc(129, 0x41), S, ra), { code: 'GW_ERR_RADIUS_ENCODE' }, '129 octets refused');
  t.throws(() => hidePassword(Buffer.from('x'), S, Buffer.alloc(8)), RadiusEncodeError);
  for (const n of [0, 8, 15, 17, 31, 144]) t.equal(unhidePassword(Buffer.alloc(n), S, ra), undefined, `hidden length ${n} refused`);

  // The chain, spelled out independently for two blocks.
  const password = Buffer.from('0123456789abcdefXYZ');
  const p1 = password.subarray(0, 16);
  const p2 = Buffer.concat([password.subarray(16), Buffer.alloc(13)]);
  const b1 = createHash('md5').update(S).update(ra).digest();
  const c1 = Buffer.from(p1.map((x, i) => x ^ (b1[i] as number)));
  const b2 = createHash('md5').update(S).update(c1).digest();
  const c2 = Buffer.from(p2.map((x, i) => x ^ (b2[i] as number)));
  t.ok(hidePassword(password, S, ra).equals(Buffer.concat([c1, c2])), 'c(i) = p(i) xor MD5(S + c(i-1))');

  t.equal(unhidePassword(hidePassword(Buffer.from('pw\0\0'), S, ra), S, ra)?.toString(), 'pw', 'trailing NULs are padding');
  t.equal(unhidePassword(hidePassword(Buffer.from('p\0w'), S, ra), S, ra)?.toString('hex'), '700077', 'inner NULs are kept');
});

void t.test('attribute values', async (t) => {
  t.equal(readText(attr.text(1, 'zoë').value), 'zoë');
  t.equal(readTextStrict(Buffer.from([0xc3, 0x28])), undefined, 'invalid UTF-8');
  t.equal(readInteger(attr.integer(27, 0xffffffff).value), 0xffffffff);
  t.equal(readInteger(Buffer.alloc(3)), undefined);
  t.equal(readInteger(Buffer.alloc(5)), undefined);
  t.equal(readIpv4(attr.ipv4(4, '255.0.10.1').value), '255.0.10.1');
  t.equal(readIpv4(Buffer.alloc(16)), undefined);
  t.equal(readIpv6(attr.ipv6(95, '2001:db8::1').value), '2001:db8::1');
  t.equal(readDate(attr.date(55, new Date('2024-05-06T07:08:09.999Z')).value)?.toISOString(), '2024-05-06T07:08:09.000Z');
  t.ok(attr.octets(25, Buffer.from('x')).value.equals(Buffer.from('x')));
  const source = Buffer.from('abc');
  const copied = attr.octets(25, source);
  source.fill(0);
  t.equal(copied.value.toString(), 'abc', 'octets are copied');

  for (const bad of [() => attr.integer(5, -1), () => attr.integer(5, 2 ** 32), () => attr.integer(5, 1.5), () => attr.text(18, 'x'.repeat(254))]) {
    t.throws(bad, RadiusEncodeError);
  }
  t.throws(() => attr.text(18, ''), RadiusEncodeError, 'empty values are not sent (RFC 8044 §3.4)');
  t.throws(() => attr.ipv4(4, '1.2.3'), RadiusEncodeError);
  t.throws(() => attr.ipv6(95, '1::2::3'), RadiusEncodeError);
  t.throws(() => attr.date(55, new Date('nope')), RadiusEncodeError);
  t.throws(() => attr.text(0, 'x'), RadiusEncodeError);
  t.equal(attr.text(18, 'é'.repeat(126)).value.length, 252);

  for (const ok of ['0.0.0.0', '255.255.255.255', '10.1.2.3']) t.ok(parseIpv4(ok), ok);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', ' 1.2.3.4', 'a.b.c.d', '1..2.3', '1.2.3.4 ']) {
    t.equal(parseIpv4(bad), undefined, JSON.stringify(bad));
  }
  const v6: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['fe80::1:0:0:0', 'fe80::1:0:0:0'], // equal runs: the first is shortened (RFC 5952 §4.2.3)
    ['fe80:0:0:1::', 'fe80:0:0:1::'], // the longest run wins
    ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'], // a single zero group is not shortened
  ];
  for (const [input, canonical] of v6) t.equal(formatIpv6(parseIpv6(input) as Buffer), canonical, input);
  for (const bad of [':', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1.2.3.4', '::1.2.3.256', ':1::', '1::2:', 'g::', '1.2.3.4::', 'fe80::1%eth0']) {
    t.equal(parseIpv6(bad), undefined, JSON.stringify(bad));
  }
});

void t.test('formatting and parsing `Name = value`', async (t) => {
  const f = (a: RadiusAttribute): string => {
    const l = formatAttribute(a);
    return `${l.name} = ${l.value}`;
  };
  t.equal(f({ type: 200, value: Buffer.from([1, 2]) }), 'Attr-200 = 0x0102');
  t.equal(f({ type: 18, value: Buffer.alloc(0) }), 'Reply-Message = ""');
  t.equal(f({ type: 18, value: Buffer.from('a"b\\c\nd\u0007\u202e') }), 'Reply-Message = "a\\"b\\\\c\\nd\\u{7}\\u{202e}"', 'escapes');
  t.equal(f({ type: 1, value: Buffer.from([0xff, 0xfe]) }), 'User-Name = 0xfffe', 'invalid UTF-8 prints as hex');
  t.equal(f({ type: 6, value: Buffer.from([0, 0, 0, 99]) }), 'Service-Type = 99', 'unnamed value');
  t.equal(f({ type: 6, value: Buffer.from([0, 0, 0]) }), 'Service-Type = 0x000000', 'wrong length prints as hex');
  t.equal(f({ type: 55, value: Buffer.from([0x66, 0x38, 0x8e, 0x00]) }), 'Event-Timestamp = 2024-05-06T08:00:00Z');
  t.equal(f({ type: 97, value: hex('00 40 20 01 0d b8 00 00 00 01') }), 'Framed-IPv6-Prefix = 2001:db8:0:1::/64');
  t.equal(f({ type: 96, value: hex('0011223344556677') }), 'Framed-Interface-Id = 0011:2233:4455:6677');
  t.equal(f({ type: 64, value: hex('01 00 00 0d') }), 'Tunnel-Type:1 = VLAN', 'RFC 2868 tag');
  t.equal(f({ type: 64, value: hex('00 00 00 0d') }), 'Tunnel-Type = VLAN', 'tag 0 means none');
  t.equal(f({ type: 64, value: hex('40 00 00 0d') }), 'Tunnel-Type = 0x4000000d', 'a tag above 0x1F is malformed');
  t.equal(f({ type: 81, value: Buffer.from('\u0001100') }), 'Tunnel-Private-Group-Id:1 = "100"');
  t.equal(f({ type: 81, value: Buffer.from('100') }), 'Tunnel-Private-Group-Id = "100"', 'text above 0x1F is not a tag');
  t.equal(f({ type: 69, value: Buffer.alloc(19) }), 'Tunnel-Password = <hidden, 19 octets>');
  t.equal(f(attr.vendorSpecific(311, 2, Buffer.from('E=691 R=0'))), 'MS-CHAP-Error = "E=691 R=0"', 'known vendor');
  t.equal(f(attr.vendorSpecific(311, 16, Buffer.alloc(34))), 'MS-MPPE-Send-Key = <hidden, 34 octets>');
  t.equal(f(attr.vendorSpecific(311, 200, Buffer.from([5]))), 'Microsoft-Attr-200 = 0x05');
  t.equal(f(attr.vendorSpecific(9, 1, Buffer.from('shell:priv-lvl=15'))), 'Cisco-AVPair = "shell:priv-lvl=15"', 'a vendor of vendors.ts');
  t.equal(f(attr.vendorSpecific(2636, 1, Buffer.from('read-only'))), `Vendor-2636-Attr-1 = 0x${Buffer.from('read-only').toString('hex')}`, 'a vendor without a dictionary');
  t.equal(f({ type: 26, value: hex('00 00 01 37 02') }), 'Vendor-Specific = 0x0000013702', 'malformed vendor data');
  t.equal(f({ type: 26, value: hex('01 00 01 37 02 03 41') }), 'Vendor-Specific = 0x01000137020341', 'vendor id high octet set');
  const two = { type: 26, value: hex('00 00 01 37 07 06 00 00 00 01 08 06 00 00 00 06') };
  t.equal(f(two), 'Vendor-Specific = 0x00000137070600000001080600000006', 'two sub-attributes stay one hex line');
  t.same(
    formatAttributes([two]).map((l) => `${l.name} = ${l.value}`),
    ['MS-MPPE-Encryption-Policy = Encryption-Allowed', 'MS-MPPE-Encryption-Types = RC4-40or128-bit-Allowed'],
  );

  const roundTrips: [string, string][] = [
    ['User-Name', '"alice"'],
    ['Reply-Message', '"line\\none \\"quoted\\" \\u{202e}"'],
    ['Service-Type', 'Administrative-User'],
    ['Session-Timeout', '3600'],
    ['Framed-IP-Address', '10.9.8.7'],
    ['NAS-IPv6-Address', '2001:db8::42'],
    ['Framed-IPv6-Prefix', '2001:db8:1::/48'],
    ['Framed-Interface-Id', '0011:2233:4455:6677'],
    ['Event-Timestamp', '2024-05-06T08:00:00Z'],
    ['Class', '0x00ff10'],
    ['Tunnel-Type:1', 'VLAN'],
    ['Tunnel-Medium-Type:1', 'IEEE-802'],
    ['Tunnel-Private-Group-Id:1', '"100"'],
    ['Management-Privilege-Level', '15'],
  ];
  for (const [name, value] of roundTrips) {
    t.same(formatAttribute(parseAttribute(name, value)), { name, value }, `${name} = ${value}`);
  }
  t.equal(parseAttribute('Reply-Message', 'plain words').value.toString(), 'plain words', 'unquoted text');
  t.equal(parseAttribute('Event-Timestamp', '1714982400').value.readUInt32BE(0), 1714982400);
  t.equal(parseAttribute('Tunnel-Private-Group-Id', '\u0001x').value.toString('hex'), '000178', 'tag 0 protects a leading control octet');
  for (const [name, value] of [
    ['No-Such-Attribute', '1'],
    ['User-Password', '"secret"'],
    ['Vendor-Specific', '0x00'],
    ['Message-Authenticator', '0x00000000000000000000000000000000'],
    ['User-Name:1', '"x"'],
    ['Tunnel-Type:32', 'VLAN'],
    ['Service-Type', 'Nope'],
    ['Service-Type', '-1'],
    ['Tunnel-Type', '16777216'],
    ['NAS-IP-Address', '1.2.3'],
    ['Framed-IPv6-Prefix', '2001:db8::/129'],
    ['Reply-Message', '"unterminated'],
    ['Reply-Message', '"bad \\q escape"'],
    ['Reply-Message', ''],
    ['Event-Timestamp', 'yesterday'],
  ] as const) {
    t.throws(() => parseAttribute(name, value), RadiusEncodeError, `${name} = ${value}`);
  }
});

void t.test('dictionary', async (t) => {
  const camel = (name: string): string =>
    name
      .split('-')
      .map((p) => (p[0] as string).toUpperCase() + p.slice(1).toLowerCase())
      .join('');
  const byNumber = new Map(Object.entries(AttributeType).map(([k, v]) => [v as number, k]));
  t.equal(byNumber.size, Object.keys(AttributeType).length, 'AttributeType numbers are unique');
  for (const def of STANDARD_ATTRIBUTES.values()) {
    t.equal(byNumber.get(def.type), camel(def.name), `AttributeType.${camel(def.name)} = ${def.type}`);
  }
  t.equal(STANDARD_ATTRIBUTES.size, byNumber.size, 'and nothing else');
  t.equal(new Set([...STANDARD_ATTRIBUTES.values()].map((d) => d.name)).size, STANDARD_ATTRIBUTES.size, 'names are unique');
  // Every attribute formats under its own name whatever four octets it holds.
  for (const def of STANDARD_ATTRIBUTES.values()) {
    const l = formatAttribute({ type: def.type, value: Buffer.from([1, 0, 0, 1]) });
    t.match(l.name, def.valueType === 'vsa' ? /^Vendor-/ : new RegExp(`^${def.name}(:\\d+)?$`), def.name);
  }
  t.equal(STANDARD_ATTRIBUTES.get(61)?.values?.get(19), 'Wireless-802.11');
  t.equal(STANDARD_ATTRIBUTES.get(40)?.values?.get(3), 'Interim-Update');
});

void t.test('error codes', async (t) => {
  t.equal(new RadiusDecodeError('m', 'too_short').code, 'GW_ERR_RADIUS_DECODE');
  t.equal(new RadiusEncodeError('m').code, 'GW_ERR_RADIUS_ENCODE');
  t.equal(new RadiusEncodeError('m').name, 'RadiusEncodeError');
});
