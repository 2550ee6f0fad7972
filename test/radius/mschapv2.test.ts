import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import t, { type Test } from 'tap';
import { InvalidInputError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import {
  AttributeType,
  Code,
  MicrosoftAttributeType as MS,
  RadiusDecodeError,
  RadiusEncodeError,
  VendorId,
  attr,
  decodePacket,
  decryptMppeKey,
  encodeAccessRequest,
  encodeReply,
  encryptMppeKey,
  getVendorAttributes,
  readInteger,
  readText,
  readVendorSpecific,
  verifyReply,
  type RadiusAttribute,
  type RadiusPacket,
} from '../../src/radius/codec/index.js';
import type { AuthAttempt } from '../../src/auth/attempt.js';
import { toAttempt, toReply } from '../../src/radius/front-end.js';
import { UpstreamFirstFactor } from '../../src/radius/upstream-first-factor.js';
import { RadiusUpstream, type UpstreamAnswer, type UpstreamServer } from '../../src/radius/upstream.js';
import { testConfig } from '../auth/fixtures.js';
import { startFreeRadius } from '../peers/freeradius.js';
import {
  asymmetricStartKey,
  challengeHash,
  generateAuthenticatorResponse,
  generateNtResponse,
  masterKey,
  md4,
  msChapV2Login,
  ntPasswordHash,
} from '../peers/mschapv2.js';
import { requirePeer } from '../peers/require-peer.js';

// MS-CHAPv2 through the gateway's RADIUS side: the test's own RFC 2759/3079 computations checked
// against the RFCs' vectors; the upstream client against a real FreeRADIUS 3.2 (rlm_mschap) and,
// for answers FreeRADIUS would not give, a few lines of UDP; the front end's translation both ways.

const SECRET = 'upstream-secret-0123456789';
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ms = (type: number, value: Buffer): RadiusAttribute => attr.vendorSpecific(VendorId.Microsoft, type, value);
const msValues = (attributes: readonly RadiusAttribute[], type: number): Buffer[] => getVendorAttributes({ attributes }, VendorId.Microsoft, type).map((a) => a.value);

function captureLog(): { log: Logger; text(): string } {
  const lines: string[] = [];
  return { log: createLogger({ level: 'debug' }, { write: (s: string) => void lines.push(s) }), text: () => lines.join('') };
}

function upstream(t: Test, servers: UpstreamServer[], log: Logger): RadiusUpstream {
  const u = new RadiusUpstream({ name: 'nps', servers, timeoutMs: 1000, tries: 2, log, sourceAddress: '127.0.0.1' });
  t.teardown(() => u.close());
  return u;
}

t.test('the NAS-side computations of test/peers/mschapv2.ts match RFC 1320, RFC 2759 §9.2 and RFC 3079 §3.5.3', async (t) => {
  // RFC 1320 appendix A.5.
  for (const [input, digest] of [
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ] as const) {
    t.equal(md4(Buffer.from(input)).toString('hex'), digest, `MD4(${JSON.stringify(input.slice(0, 16))}…)`);
  }
  const authenticatorChallenge = hex('5B5D7C7D7B3F2F3E3C2C602132262628');
  const peerChallenge = hex('21402324255E262A28295F2B3A337C7E');
  t.same(challengeHash(peerChallenge, authenticatorChallenge, 'User'), hex('D02E4386BCE91226'), 'ChallengeHash');
  t.same(ntPasswordHash('clientPass'), hex('44EBBA8D5312B8D611474411F56989AE'), 'NtPasswordHash');
  const ntResponse = generateNtResponse(authenticatorChallenge, peerChallenge, 'User', 'clientPass');
  t.same(ntResponse, hex('82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF'), 'NT-Response');
  t.equal(generateAuthenticatorResponse('clientPass', ntResponse, peerChallenge, authenticatorChallenge, 'User'), 'S=407A5589115FD0D6209F510FE9C04566932CDA56');
  const master = masterKey(md4(ntPasswordHash('clientPass')), ntResponse);
  t.same(master, hex('FDECE3717A8C838CB388E527AE3CDD31'), 'MasterKey');
  t.same(asymmetricStartKey(master, 16, true, true), hex('8B7CDC149B993A1BA118CB153F56DCCB'), "SendStartKey128 (the server's send key)");
  t.same(asymmetricStartKey(master, 16, true, true), asymmetricStartKey(master, 16, false, false), "the server's send key is the client's receive key");

  const login = msChapV2Login('User', 'clientPass', { ident: 7, challenge: authenticatorChallenge, peerChallenge });
  t.equal(login.response.length, 50);
  t.same(login.response.subarray(26), ntResponse);
  t.same(login.success, Buffer.concat([Buffer.of(7), Buffer.from('S=407A5589115FD0D6209F510FE9C04566932CDA56')]));
  t.same(login.sendKey, hex('8B7CDC149B993A1BA118CB153F56DCCB'));
});

t.test('upstream: MS-CHAPv2 against FreeRADIUS; its MS-CHAP2-Success and MPPE keys come back, the keys decrypted', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const fr = await startFreeRadius({
    t,
    replyMessageAuthenticator: true,
    clients: [{ address: '127.0.0.1', secret: SECRET, requireMessageAuthenticator: true }],
    users: [
      { name: 'msuser', cleartext: 'Ms-Pass-1234', reply: { 'Filter-Id': 'vpn-ms' } },
      { name: 'ntuser', ntHash: ntPasswordHash('Nt-Pass-5678').toString('hex') },
      // PAP only: accepted only if no MS-CHAP attribute arrived with the password.
      { name: 'papuser', cleartext: 'Pap-Pass-9012', absent: ['MS-CHAP-Challenge', 'MS-CHAP2-Response'] },
    ],
  });
  const logs = captureLog();
  const u = upstream(t, [{ host: fr.host, port: fr.port, secret: Buffer.from(SECRET) }], logs.log);
  const keysSeen: string[] = [];

  for (const [user, password] of [
    ['msuser', 'Ms-Pass-1234'],
    ['ntuser', 'Nt-Pass-5678'],
  ] as const) {
    const login = msChapV2Login(user, password);
    const answer = await u.forward({ username: user, msChapV2: { challenge: login.challenge, response: login.response }, attributes: [attr.text(AttributeType.NasIdentifier, 'vpn-1')] });
    t.equal(answer.code, 'accept', `${user}: accepted`);
    t.same(answer.mppeKeys, { sendKey: login.sendKey, recvKey: login.recvKey }, `${user}: MPPE keys decrypted to what RFC 3079 derives from the password`);
    t.same(msValues(answer.attributes, MS.MsChap2Success), [login.success], `${user}: MS-CHAP2-Success is the RFC 2759 authenticator response`);
    t.same(msValues(answer.attributes, MS.MsMppeEncryptionPolicy).map(readInteger), [2], 'MS-MPPE-Encryption-Policy passed on');
    t.same(msValues(answer.attributes, MS.MsMppeEncryptionTypes).map(readInteger), [4], 'MS-MPPE-Encryption-Types passed on');
    t.same([...msValues(answer.attributes, MS.MsMppeSendKey), ...msValues(answer.attributes, MS.MsMppeRecvKey)], [], 'the encrypted keys are not among the attributes');
    keysSeen.push(login.sendKey.toString('hex'), login.recvKey.toString('hex'));
  }
  t.equal(readText((await u.forward({ username: 'msuser', msChapV2: msChapV2Login('msuser', 'Ms-Pass-1234'), attributes: [] })).attributes.find((a) => a.type === AttributeType.FilterId)?.value ?? Buffer.alloc(0)), 'vpn-ms', 'other reply attributes still come back');

  const wrong = msChapV2Login('msuser', 'not-the-password', { ident: 0x42 });
  const rejected = await u.forward({ username: 'msuser', msChapV2: wrong, attributes: [] });
  t.equal(rejected.code, 'reject');
  t.equal(rejected.mppeKeys, undefined);
  const [error] = msValues(rejected.attributes, MS.MsChapError);
  t.equal(error?.[0], 0x42, "MS-CHAP-Error comes back, with the response's Ident");
  t.match(readText(error?.subarray(1) ?? Buffer.alloc(0)), /^E=691 R=\d C=[0-9A-Fa-f]{32} V=3/, 'E=691: authentication failure (RFC 2759 §6)');
  t.same(
    rejected.attributes.map((a) => a.type),
    [AttributeType.VendorSpecific],
    'nothing else in the reject',
  );

  // MS-CHAP attributes among the NAS's attributes are dropped: only `msChapV2` sends them.
  const sneaked = msChapV2Login('papuser', 'Pap-Pass-9012');
  const pap = await u.forward({ username: 'papuser', password: Buffer.from('Pap-Pass-9012'), attributes: [ms(MS.MsChapChallenge, sneaked.challenge), ms(MS.MsChap2Response, sneaked.response)] });
  t.equal(pap.code, 'accept', 'PAP, without the MS-CHAP attributes the caller put in `attributes`');

  const text = logs.text();
  t.notOk(keysSeen.some((k) => text.includes(k)), 'no MPPE key in the logs');
  t.notMatch(text, SECRET);
});

interface Fake {
  readonly server: UpstreamServer;
  readonly requests: RadiusPacket[];
}

/** A UDP "server" on 127.0.0.1 answering every request with `answer(request)` (encodeReply echoes our Proxy-State). */
async function startFake(t: Test, answer: (request: RadiusPacket) => Buffer | undefined): Promise<Fake> {
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const requests: RadiusPacket[] = [];
  socket.on('message', (msg, rinfo) => {
    const request = decodePacket(msg);
    if (request instanceof RadiusDecodeError) return;
    requests.push(request);
    const reply = answer(request);
    if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
  });
  return { server: { host: '127.0.0.1', port: socket.address().port, secret: Buffer.from(SECRET) }, requests };
}

/** A Vendor-Specific attribute holding several Microsoft sub-attributes. */
function msMany(...subs: Array<[number, Buffer]>): RadiusAttribute {
  const data = Buffer.concat(subs.map(([type, value]) => Buffer.concat([Buffer.of(type, 2 + value.length), value])));
  return { type: AttributeType.VendorSpecific, value: Buffer.concat([Buffer.from([0, 0, 1, 0x37]), data]) };
}

t.test('upstream: what goes up, and what of a Microsoft Vendor-Specific attribute comes back', async (t) => {
  const secret = Buffer.from(SECRET);
  const login = msChapV2Login('msuser', 'Ms-Pass-1234');
  const success = Buffer.concat([Buffer.of(1), Buffer.from('S='.padEnd(42, '0'))]);
  let mode: 'accept' | 'reject' = 'accept';
  const fake = await startFake(t, (request) => {
    if (mode === 'reject') {
      return encodeReply(
        request,
        Code.AccessReject,
        [
          attr.text(AttributeType.ReplyMessage, 'no'),
          attr.text(AttributeType.FilterId, 'leaked'),
          msMany([MS.MsChapError, Buffer.from('\x01E=648 R=0 V=3')], [10 /* MS-CHAP-Domain */, Buffer.from('CORP')]),
          attr.vendorSpecific(12356, 1, Buffer.from('fortinet-group')),
        ],
        secret,
      );
    }
    return encodeReply(
      request,
      Code.AccessAccept,
      [
        attr.text(AttributeType.FilterId, 'vpn'),
        // MS-CHAP2-Success and the send key in one Vendor-Specific attribute: the key is taken out, the rest rebuilt.
        msMany([MS.MsChap2Success, success], [MS.MsMppeSendKey, encryptMppeKey(login.sendKey, secret, request.authenticator, Buffer.from([0x80, 1]))]),
        ms(MS.MsMppeRecvKey, encryptMppeKey(login.recvKey, secret, request.authenticator, Buffer.from([0x80, 2]))),
        // MS-CHAPv1 keys, and a Microsoft attribute that does not follow the RFC 2865 §5.26 layout: dropped.
        ms(MS.MsChapMppeKeys, randomBytes(32)),
        { type: AttributeType.VendorSpecific, value: Buffer.from([0, 0, 1, 0x37, 16, 40, 1, 2, 3]) },
        ms(MS.MsMppeEncryptionPolicy, Buffer.from([0, 0, 0, 1])),
      ],
      secret,
    );
  });
  const logs = captureLog();
  const u = upstream(t, [fake.server], logs.log);

  const answer = await u.forward({ username: 'msuser', msChapV2: { challenge: login.challenge, response: login.response }, attributes: [attr.text(AttributeType.NasIdentifier, 'vpn-1')] });
  const request = fake.requests[0] as RadiusPacket;
  t.same(msValues(request.attributes, MS.MsChapChallenge), [login.challenge], 'MS-CHAP-Challenge went up unchanged');
  t.same(msValues(request.attributes, MS.MsChap2Response), [login.response], 'MS-CHAP2-Response went up unchanged');
  t.notOk(request.attributes.some((a) => a.type === AttributeType.UserPassword), 'no User-Password');

  t.equal(answer.code, 'accept');
  t.same(answer.mppeKeys, { sendKey: login.sendKey, recvKey: login.recvKey }, 'both keys, from whichever attribute held them');
  const vendor = answer.attributes.filter((a) => a.type === AttributeType.VendorSpecific).map((a) => readVendorSpecific(a.value)?.attributes?.map((s) => [s.type, s.value.toString('hex')]));
  t.same(
    vendor,
    [[[MS.MsChap2Success, success.toString('hex')]], [[MS.MsMppeEncryptionPolicy, '00000001']]],
    'MS-CHAP2-Success rebuilt on its own; MS-CHAP-MPPE-Keys and the unreadable Microsoft attribute dropped; the rest as it came',
  );
  t.equal(readText(answer.attributes.find((a) => a.type === AttributeType.FilterId)?.value ?? Buffer.alloc(0)), 'vpn');

  mode = 'reject';
  const rejected = await u.forward({ username: 'msuser', msChapV2: login, attributes: [] });
  t.same(
    rejected.attributes.map((a) => (a.type === AttributeType.VendorSpecific ? readVendorSpecific(a.value)?.attributes?.map((s) => s.type) : a.type)),
    [AttributeType.ReplyMessage, [MS.MsChapError]],
    'a reject keeps Reply-Message and MS-CHAP-Error, nothing else',
  );

  // An accept whose keys cannot be decrypted: they are dropped, and that is logged (without the key).
  mode = 'accept';
  const broken = await startFake(t, (request) =>
    encodeReply(request, Code.AccessAccept, [ms(MS.MsMppeSendKey, Buffer.alloc(17, 0x80)), ms(MS.MsChap2Success, success)], secret),
  );
  const u2 = upstream(t, [broken.server], logs.log);
  const noKeys: UpstreamAnswer = await u2.forward({ username: 'msuser', msChapV2: login, attributes: [] });
  t.equal(noKeys.code, 'accept');
  t.equal(noKeys.mppeKeys, undefined, 'no key rather than a wrong one');
  t.match(logs.text(), /undecryptable MS-MPPE key/);
  t.notMatch(logs.text(), login.sendKey.toString('hex'));
});

t.test('upstream: a request is a password or an MS-CHAPv2 response, well formed, or nothing is sent', async (t) => {
  const fake = await startFake(t, () => undefined);
  const u = upstream(t, [fake.server], captureLog().log);
  const login = msChapV2Login('msuser', 'x');
  await t.rejects(u.forward({ username: 'msuser', password: Buffer.from('x'), msChapV2: login, attributes: [] }), InvalidInputError, 'not both');
  await t.rejects(u.forward({ username: 'msuser', msChapV2: { challenge: login.challenge.subarray(0, 8), response: login.response }, attributes: [] }), RadiusEncodeError, '8-octet challenge');
  await t.rejects(u.forward({ username: 'msuser', msChapV2: { challenge: login.challenge, response: login.response.subarray(1) }, attributes: [] }), RadiusEncodeError, '49-octet response');
  t.equal(fake.requests.length, 0, 'nothing went out');
});

t.test('front end: an MS-CHAPv2 request becomes an attempt with its proof, and no password', async (t) => {
  const client = testConfig().clients[0];
  if (client === undefined) throw new Error('no client');
  const login = msChapV2Login('msuser', 'x');
  const origin = { address: '127.0.0.1', port: 40000, localAddress: '127.0.0.1' };
  const request = (attributes: RadiusAttribute[], password?: string): RadiusPacket => {
    const { packet } = encodeAccessRequest({ identifier: 1, secret: client.secret, attributes: [attr.text(AttributeType.UserName, 'msuser'), ...attributes], ...(password === undefined ? {} : { password: Buffer.from(password) }) });
    const decoded = decodePacket(packet);
    if (decoded instanceof RadiusDecodeError) throw decoded;
    return decoded;
  };
  const proofOf = (p: RadiusPacket) => toAttempt(p, client, origin, Date.now()).msChapV2;

  const attempt = toAttempt(request([ms(MS.MsChapChallenge, login.challenge), ms(MS.MsChap2Response, login.response)]), client, origin, Date.now());
  t.same(attempt.msChapV2, { challenge: login.challenge, response: login.response });
  t.equal(attempt.password, undefined);
  t.same(proofOf(request([msMany([MS.MsChapChallenge, login.challenge], [MS.MsChap2Response, login.response])])), { challenge: login.challenge, response: login.response }, 'both in one Vendor-Specific attribute');

  t.equal(proofOf(request([ms(MS.MsChapChallenge, login.challenge), ms(MS.MsChap2Response, login.response)], 'pw')), undefined, 'with a User-Password it is a PAP request');
  t.equal(proofOf(request([ms(MS.MsChapChallenge, login.challenge), ms(MS.MsChap2Response, login.response), attr.octets(AttributeType.State, Buffer.from('s'))])), undefined, 'with a State it answers a challenge');
  t.equal(proofOf(request([ms(MS.MsChap2Response, login.response)])), undefined, 'no challenge');
  t.equal(proofOf(request([ms(MS.MsChapChallenge, login.challenge.subarray(0, 8)), ms(MS.MsChap2Response, login.response)])), undefined, 'an MS-CHAPv1-sized challenge');
  t.equal(proofOf(request([ms(MS.MsChapChallenge, login.challenge), ms(MS.MsChap2Response, login.response.subarray(0, 49))])), undefined, 'a short response');
  t.equal(proofOf(request([ms(MS.MsChapChallenge, login.challenge), ms(MS.MsChapChallenge, login.challenge), ms(MS.MsChap2Response, login.response)])), undefined, 'two challenges');
});

t.test('front end: MPPE keys are encrypted for the request the reply answers, with new salts each time', async (t) => {
  const secret = Buffer.from('nas-secret-0123456789');
  const sendKey = randomBytes(16);
  const recvKey = randomBytes(16);
  const success = ms(MS.MsChap2Success, Buffer.from('\x01S=0123'));
  const { packet } = encodeAccessRequest({ identifier: 9, secret, attributes: [attr.text(AttributeType.UserName, 'msuser')], password: Buffer.from('123456') });
  const request = decodePacket(packet) as RadiusPacket;
  const keying = { secret, requestAuthenticator: request.authenticator };

  const reply = toReply({ kind: 'accept', reason: 'accepted', attributes: [success], mppeKeys: { sendKey, recvKey } }, keying);
  t.equal(reply.code, Code.AccessAccept);
  t.same(reply.attributes[0], success, "the first factor's attributes first");
  const [recv] = msValues(reply.attributes, MS.MsMppeRecvKey);
  const [send] = msValues(reply.attributes, MS.MsMppeSendKey);
  t.same(decryptMppeKey(send ?? Buffer.alloc(0), secret, request.authenticator), sendKey, 'MS-MPPE-Send-Key');
  t.same(decryptMppeKey(recv ?? Buffer.alloc(0), secret, request.authenticator), recvKey, 'MS-MPPE-Recv-Key');
  t.ok(((send?.[0] ?? 0) & 0x80) !== 0 && ((recv?.[0] ?? 0) & 0x80) !== 0, 'salts with the high bit set');
  t.notSame(send?.subarray(0, 2), recv?.subarray(0, 2), 'a salt per attribute');
  t.notOk(reply.attributes.some((a) => a.value.includes(sendKey) || a.value.includes(recvKey)), 'no key in the clear');

  const again = toReply({ kind: 'accept', reason: 'accepted', mppeKeys: { sendKey } }, keying);
  t.equal(again.attributes.length, 1, 'only the keys present');
  t.notSame(msValues(again.attributes, MS.MsMppeSendKey)[0]?.subarray(0, 2), send?.subarray(0, 2), 'each reply gets new salts');

  const encoded = encodeReply(request, reply.code, reply.attributes, secret);
  const decoded = decodePacket(encoded) as RadiusPacket;
  t.ok(verifyReply(decoded, request.authenticator, secret, { requireMessageAuthenticator: true }), 'a valid reply');

  const error = ms(MS.MsChapError, Buffer.from('\x01E=691 R=1 V=3'));
  t.same(toReply({ kind: 'reject', reason: 'upstream_rejected', message: 'no', attributes: [error] }, keying).attributes.map((a) => a.type), [AttributeType.ReplyMessage, AttributeType.VendorSpecific], 'a reject: Reply-Message, then MS-CHAP-Error');
});

t.test('first factor radius:<upstream>: the MS-CHAPv2 outcome, and the MS-CHAP error code as the reason', async (t) => {
  const secret = Buffer.from(SECRET);
  const login = msChapV2Login('msuser', 'Ms-Pass-1234', { ident: 5 });
  let error = '';
  const fake = await startFake(t, (request) =>
    error === ''
      ? encodeReply(
          request,
          Code.AccessAccept,
          [
            attr.text(AttributeType.ReplyMessage, 'upstream speaks'),
            ms(MS.MsChap2Success, login.success),
            ms(MS.MsMppeRecvKey, encryptMppeKey(login.recvKey, secret, request.authenticator, Buffer.from([0x81, 7]))),
            ms(MS.MsMppeSendKey, encryptMppeKey(login.sendKey, secret, request.authenticator, Buffer.from([0x82, 7]))),
          ],
          secret,
        )
      : encodeReply(request, Code.AccessReject, [ms(MS.MsChapError, Buffer.from(`\x05E=${error} R=0 V=3`))], secret),
  );
  const target = new UpstreamFirstFactor({ name: 'nps', servers: [{ address: '127.0.0.1', port: fake.server.port, secret }], timeout_ms: 1000, tries: 1, dead_time_seconds: 0, require_message_authenticator: true }, captureLog().log);
  t.teardown(() => target.close());
  const check = { attempt: { forward: [] } as unknown as AuthAttempt, login: 'msuser', proof: { challenge: login.challenge, response: login.response }, user: undefined };

  const accepted = await target.checkMsChapV2(check);
  t.same(accepted.kind === 'accept' ? [accepted.replyAttributes, accepted.mppeKeys] : accepted, [[ms(MS.MsChap2Success, login.success)], { recvKey: login.recvKey, sendKey: login.sendKey }], 'MS-CHAP2-Success for the NAS, keys in the clear; no Reply-Message');

  for (const [code, reason] of [
    ['691', 'upstream_rejected'],
    ['646', 'logon_restricted'],
    ['647', 'account_disabled'],
    ['648', 'password_expired'],
    ['709', 'upstream_rejected'],
  ] as const) {
    error = code;
    const rejected = await target.checkMsChapV2(check);
    t.match(rejected, { kind: 'reject', reason, detail: `(MS-CHAP error ${code})` }, `E=${code}: ${reason}`);
    t.same(rejected.kind === 'reject' ? rejected.replyAttributes : undefined, [ms(MS.MsChapError, Buffer.from(`\x05E=${code} R=0 V=3`))], 'MS-CHAP-Error for the NAS');
  }
});
