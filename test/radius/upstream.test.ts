import { createSocket, type Socket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { UpstreamUnavailable } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import {
  AttributeType,
  Code,
  RadiusDecodeError,
  attr,
  computeResponseAuthenticator,
  decodePacket,
  encodePacket,
  encodeReply,
  readInteger,
  readIpv4,
  readText,
  readVendorSpecific,
  unhidePassword,
  verifyRequestMessageAuthenticator,
  type RadiusAttribute,
  type RadiusPacket,
} from '../../src/radius/codec/index.js';
import { RadiusUpstream, type RadiusUpstreamOptions, type UpstreamAnswer, type UpstreamServer } from '../../src/radius/upstream.js';
import { startFreeRadius, type FreeRadius, type FreeRadiusOptions } from '../peers/freeradius.js';
import { freePort } from '../peers/ports.js';
import { requirePeer } from '../peers/require-peer.js';

// The upstream RADIUS client against the real FreeRADIUS 3.2 (accept, reject, challenge,
// failover, dead servers, 500 at once) and, for replies FreeRADIUS would never send (wrong
// secret, broken Message-Authenticator, no Proxy-State), a few lines of UDP on 127.0.0.1.

const SECRET = 'upstream-secret-0123456789';
const WRONG_SECRET = 'not-the-upstream-secret-42';
const ALICE_PASSWORD = 'Alice-Pass-1';
const CAROL_PASSWORD = 'Carol-Pass-2';
const CAROL_CODE = '314159';
const FORTINET = 12356;

interface CapturedLog {
  log: Logger;
  text(): string;
  lines(match: RegExp): string[];
}

function captureLog(): CapturedLog {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
  return { log, text: () => lines.join(''), lines: (match) => lines.filter((l) => match.test(l)) };
}

function serverOf(fr: FreeRadius, secret = SECRET): UpstreamServer {
  return { host: fr.host, port: fr.port, secret: Buffer.from(secret) };
}

/** A loopback UDP port nobody listens on: a server that is down. */
async function deadServer(): Promise<UpstreamServer> {
  return { host: '127.0.0.1', port: await freePort('udp'), secret: Buffer.from(SECRET) };
}

function upstream(t: Test, servers: UpstreamServer[], log: Logger, more: Partial<RadiusUpstreamOptions> = {}): RadiusUpstream {
  const u = new RadiusUpstream({ name: 'corp', servers, timeoutMs: 1000, tries: 3, log, sourceAddress: '127.0.0.1', ...more });
  t.teardown(() => u.close());
  return u;
}

function find(answer: UpstreamAnswer, type: number): Buffer | undefined {
  return answer.attributes.find((a) => a.type === type)?.value;
}

async function unavailable(p: Promise<unknown>): Promise<UpstreamUnavailable | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (err instanceof UpstreamUnavailable) return err;
    throw err;
  }
}

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await p;
  return { value, ms: performance.now() - started };
}

const NAS_ATTRIBUTES: RadiusAttribute[] = [
  attr.text(AttributeType.NasIdentifier, 'vpn-1'),
  attr.ipv4(AttributeType.NasIpAddress, '127.0.0.1'),
  attr.integer(AttributeType.NasPortType, 5), // Virtual
  attr.text(AttributeType.CallingStationId, '00-11-22-33-44-55'),
  attr.integer(AttributeType.ServiceType, 8), // Authenticate-Only
];

/** What a NAS's request also carries and must never go upstream. */
const NEVER_COPIED: RadiusAttribute[] = [
  attr.octets(AttributeType.UserPassword, Buffer.alloc(16, 7)),
  attr.octets(AttributeType.MessageAuthenticator, Buffer.alloc(16)),
  attr.octets(AttributeType.ProxyState, Buffer.from('nas-proxy-state')),
  attr.octets(AttributeType.State, Buffer.from('nas-state')),
  attr.octets(AttributeType.ChapPassword, Buffer.alloc(17, 1)),
  attr.octets(AttributeType.ChapChallenge, Buffer.alloc(16, 2)),
  attr.octets(AttributeType.EapMessage, Buffer.from([2, 1, 0, 5, 1])),
];

function baseFreeRadius(t: Test): FreeRadiusOptions {
  return {
    t,
    replyMessageAuthenticator: true,
    clients: [{ address: '127.0.0.1', secret: SECRET, requireMessageAuthenticator: true }],
    users: [
      {
        name: 'alice',
        cleartext: ALICE_PASSWORD,
        // Accepted only when the NAS attributes arrived and the credentials of the NAS's request did not.
        check: { 'NAS-Identifier': 'vpn-1', 'Calling-Station-Id': '00-11-22-33-44-55', 'NAS-Port-Type': 'Virtual' },
        absent: ['State', 'CHAP-Password', 'CHAP-Challenge', 'EAP-Message'],
        reply: {
          Class: '0x636c6173732d61',
          'Filter-Id': 'vpn-users',
          'Framed-IP-Address': '10.20.30.40',
          'Session-Timeout': '3600',
          'Fortinet-Group-Name': 'vpn-admins',
          'Reply-Message': 'Welcome, alice',
        },
      },
      {
        name: 'carol',
        cleartext: CAROL_PASSWORD,
        challenge: { prompt: 'Enter the code from your token', response: CAROL_CODE },
        reply: { 'Filter-Id': 'after-challenge', 'Session-Timeout': '600' },
      },
    ],
  };
}

void t.test('accept: reply attributes come back, NAS attributes go up, credentials never', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const fr = await startFreeRadius(baseFreeRadius(t));
  const logs = captureLog();
  const u = upstream(t, [serverOf(fr)], logs.log);

  const answer = await u.forward({ username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: [...NAS_ATTRIBUTES, ...NEVER_COPIED] });
  t.equal(answer.code, 'accept');
  t.equal(answer.server, `127.0.0.1:${fr.port}`);
  t.ok(answer.roundTripMs > 0 && answer.roundTripMs < 1000, 'round trip measured');
  t.equal(answer.replyMessage, 'Welcome, alice');
  t.same(find(answer, AttributeType.Class), Buffer.from('class-a'), 'Class');
  t.equal(readText(find(answer, AttributeType.FilterId) ?? Buffer.alloc(0)), 'vpn-users', 'Filter-Id');
  t.equal(readIpv4(find(answer, AttributeType.FramedIpAddress) ?? Buffer.alloc(0)), '10.20.30.40', 'Framed-IP-Address');
  t.equal(readInteger(find(answer, AttributeType.SessionTimeout) ?? Buffer.alloc(0)), 3600, 'Session-Timeout');
  const vsa = readVendorSpecific(find(answer, AttributeType.VendorSpecific) ?? Buffer.alloc(0));
  t.equal(vsa?.vendorId, FORTINET, 'Vendor-Specific from Fortinet');
  t.same(vsa?.attributes?.map((a) => [a.type, a.value.toString()]), [[1, 'vpn-admins']], 'Fortinet-Group-Name');
  t.notOk(find(answer, AttributeType.MessageAuthenticator), 'no Message-Authenticator passed back');
  t.notOk(find(answer, AttributeType.ProxyState), 'no Proxy-State passed back');

  const wrongNas = await u.forward({
    username: 'alice',
    password: Buffer.from(ALICE_PASSWORD),
    attributes: [attr.text(AttributeType.NasIdentifier, 'vpn-2'), ...NAS_ATTRIBUTES.slice(1)],
  });
  t.equal(wrongNas.code, 'reject', 'the NAS attributes are what FreeRADIUS checked');

  t.same(u.counters.ignored, { wrong_source: 0, malformed: 0, unknown_identifier: 0, unexpected_code: 0, bad_authenticator: 0, missing_proxy_state: 0 });
  t.equal(u.counters.retransmissions, 0);
  t.notMatch(logs.text(), ALICE_PASSWORD, 'password never logged');
  t.notMatch(logs.text(), SECRET, 'secret never logged');
});

void t.test('reject: only Reply-Message comes back', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const fr = await startFreeRadius(baseFreeRadius(t));
  const u = upstream(t, [serverOf(fr)], captureLog().log);

  const bad = await u.forward({ username: 'alice', password: Buffer.from('wrong'), attributes: NAS_ATTRIBUTES });
  t.equal(bad.code, 'reject');
  t.equal(bad.server, `127.0.0.1:${fr.port}`);
  // FreeRADIUS 3.2 puts alice's users-file reply items into the reject too: they must not reach a NAS.
  t.same(
    bad.attributes.filter((a) => a.type !== AttributeType.ReplyMessage),
    [],
    'no Class, Filter-Id, Vendor-Specific … in a reject (RFC 2865 §5.44)',
  );
  const nobody = await u.forward({ username: 'nobody', password: Buffer.from('x'), attributes: [] });
  t.equal(nobody.code, 'reject', 'unknown user');
  t.equal(u.counters.rejects, 2);
});

void t.test('challenge: passed back with its State, answered with the State, then accept', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const fr = await startFreeRadius(baseFreeRadius(t));
  const u = upstream(t, [serverOf(fr)], captureLog().log);
  const expectedState = Buffer.from((fr.challengeStates.get('carol') ?? '').slice(2), 'hex');

  const challenge = await u.forward({ username: 'carol', password: Buffer.from(CAROL_PASSWORD), attributes: NAS_ATTRIBUTES });
  t.equal(challenge.code, 'challenge');
  t.same(challenge.state, expectedState, 'State of the upstream challenge');
  t.equal(challenge.replyMessage, 'Enter the code from your token');
  t.notOk(find(challenge, AttributeType.State), 'State is returned as `state`, not among the attributes');
  t.ok(find(challenge, AttributeType.ReplyMessage), 'Reply-Message among the attributes');

  const state = challenge.state ?? Buffer.alloc(0);
  const accept = await u.forward({ username: 'carol', password: Buffer.from(CAROL_CODE), state, server: challenge.server, attributes: NAS_ATTRIBUTES });
  t.equal(accept.code, 'accept');
  t.equal(readText(find(accept, AttributeType.FilterId) ?? Buffer.alloc(0)), 'after-challenge');
  t.equal(readInteger(find(accept, AttributeType.SessionTimeout) ?? Buffer.alloc(0)), 600);

  const wrongCode = await u.forward({ username: 'carol', password: Buffer.from('000000'), state, server: challenge.server, attributes: [] });
  t.equal(wrongCode.code, 'reject', 'wrong response');
  const wrongState = await u.forward({ username: 'carol', password: Buffer.from(CAROL_CODE), state: Buffer.from('forged'), attributes: [] });
  t.equal(wrongState.code, 'reject', 'wrong State');
  t.same([u.counters.challenges, u.counters.accepts, u.counters.rejects], [1, 1, 2]);
});

void t.test('a challenge answer goes to the server that challenged, and only there', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  // Each instance challenges carol with its own random State.
  const [a, b] = await Promise.all([startFreeRadius(baseFreeRadius(t)), startFreeRadius(baseFreeRadius(t))]);
  const u = upstream(t, [serverOf(a), serverOf(b)], captureLog().log, { timeoutMs: 200, tries: 2 });
  const labelB = `127.0.0.1:${b.port}`;

  const fromB = await u.forward({ username: 'carol', password: Buffer.from(CAROL_PASSWORD), server: labelB, attributes: [] });
  t.equal(fromB.server, labelB, 'pinned to the second server although the first is alive');
  const accept = await u.forward({ username: 'carol', password: Buffer.from(CAROL_CODE), state: fromB.state ?? Buffer.alloc(0), server: fromB.server, attributes: [] });
  t.equal(accept.code, 'accept', 'answered where the State was issued');
  t.equal(accept.server, labelB);

  await b.stop();
  const pinned = await timed(unavailable(u.forward({ username: 'carol', password: Buffer.from(CAROL_CODE), state: fromB.state ?? Buffer.alloc(0), server: labelB, attributes: [] })));
  t.type(pinned.value, UpstreamUnavailable, 'its server gone: unavailable, not a reject from a server that never saw the State');
  t.ok(pinned.ms < 200 * 2 + 300, `within timeoutMs × tries of the one server (${Math.round(pinned.ms)} ms)`);
  t.equal(u.counters.failovers, 0, 'no failover for a pinned request');
});

void t.test('failover: the first server is down, the second answers; the dead one is skipped and logged once', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const fr = await startFreeRadius(baseFreeRadius(t));
  const dead = await deadServer();
  const logs = captureLog();
  const u = upstream(t, [dead, serverOf(fr)], logs.log, { timeoutMs: 300, tries: 2, deadTimeMs: 60_000 });
  const request = { username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: NAS_ATTRIBUTES };

  const first = await timed(u.forward(request));
  t.equal(first.value.code, 'accept');
  t.equal(first.value.server, `127.0.0.1:${fr.port}`);
  t.ok(first.ms >= 590, `waited out timeoutMs × tries of the dead server first (${Math.round(first.ms)} ms)`);
  t.ok(first.ms < 300 * 2 * 2, 'within timeoutMs × tries × servers');
  t.same([u.counters.sent, u.counters.retransmissions, u.counters.serverTimeouts, u.counters.failovers], [3, 1, 1, 1]);
  t.match(u.status(), [{ server: `127.0.0.1:${dead.port}`, alive: false }, { alive: true, sockets: 1 }]);

  const sentBefore = u.counters.sent;
  const again = await Promise.all([1, 2, 3].map(() => timed(u.forward(request))));
  for (const r of again) {
    t.equal(r.value.server, `127.0.0.1:${fr.port}`);
    t.ok(r.ms < 300, `dead server skipped (${Math.round(r.ms)} ms)`);
  }
  t.equal(u.counters.sent - sentBefore, 3, 'nothing more sent to the dead server');
  t.equal(logs.lines(/marked dead/).length, 1, 'one log line for the outage');
  t.match(logs.lines(/marked dead/)[0], `127.0.0.1:${dead.port}`);
  t.notMatch(logs.text(), ALICE_PASSWORD);
  t.notMatch(logs.text(), SECRET);
});

void t.test('a dead server is tried again after deadTimeMs and a success marks it alive', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const [a, b] = await Promise.all([startFreeRadius(baseFreeRadius(t)), startFreeRadius(baseFreeRadius(t))]);
  const logs = captureLog();
  const u = upstream(t, [serverOf(a), serverOf(b)], logs.log, { timeoutMs: 200, tries: 2, deadTimeMs: 1500 });
  const request = { username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: NAS_ATTRIBUTES };
  const labelA = `127.0.0.1:${a.port}`;
  const labelB = `127.0.0.1:${b.port}`;

  t.equal((await u.forward(request)).server, labelA, 'the first server while it answers');
  await a.stop();
  t.equal((await u.forward(request)).server, labelB, 'failover when it stops');
  t.equal(u.status()[0]?.alive, false);
  const skipped = await timed(u.forward(request));
  t.equal(skipped.value.server, labelB);
  t.ok(skipped.ms < 200, 'skipped while dead');

  const a2 = await startFreeRadius({ ...baseFreeRadius(t), port: a.port });
  t.equal(a2.port, a.port, 'the first server is back on its port');
  t.equal(u.status()[0]?.alive, false, 'still marked dead: nothing told us it is back');
  await sleep((u.status()[0]?.deadForMs ?? 0) + 50);
  t.equal(u.status()[0]?.alive, true, 'tried again once deadTimeMs is over');
  t.equal((await u.forward(request)).server, labelA, 'and it answers');
  t.equal(logs.lines(/marked dead/).length, 1);
  t.equal(logs.lines(/answering again/).length, 1, 'the end of the outage is logged once');
});

void t.test('a late answer from a server already failed over from still counts', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  // FreeRADIUS holds every Access-Reject back for reject_delay (1 s): longer than this server's 2 × 300 ms.
  const slow = await startFreeRadius({ ...baseFreeRadius(t), rejectDelay: 1 });
  const dead = await deadServer();
  const logs = captureLog();
  const u = upstream(t, [serverOf(slow), dead], logs.log, { timeoutMs: 300, tries: 2 });

  const late = await timed(u.forward({ username: 'alice', password: Buffer.from('wrong'), attributes: NAS_ATTRIBUTES }));
  t.equal(late.value.code, 'reject', 'the slow server’s answer, not UpstreamUnavailable');
  t.equal(late.value.server, `127.0.0.1:${slow.port}`);
  t.ok(late.ms >= 900 && late.ms < 300 * 2 * 2, `answered while the second server was being tried (${Math.round(late.ms)} ms)`);
  t.equal(u.counters.failovers, 1);
  t.match(u.status(), [{ alive: true }, { alive: true }], 'the late answer revived the first server; the second was not out of tries yet');
  t.equal(logs.lines(/answering again/).length, 1);
});

void t.test('all servers down: UpstreamUnavailable within timeoutMs × tries × servers, and then tried anyway', async (t) => {
  const servers = [await deadServer(), await deadServer()];
  const logs = captureLog();
  const u = upstream(t, servers, logs.log, { timeoutMs: 200, tries: 2 });
  const request = { username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: NAS_ATTRIBUTES };

  const first = await timed(unavailable(u.forward(request)));
  t.type(first.value, UpstreamUnavailable);
  t.equal(first.value?.code, 'GW_ERR_UPSTREAM_UNAVAILABLE');
  t.ok(first.ms >= 790 && first.ms < 200 * 2 * 2 + 250, `${Math.round(first.ms)} ms for 2 servers × 2 tries × 200 ms`);
  t.match(first.value?.message, `127.0.0.1:${servers[0]?.port}`);
  t.match(first.value?.message, `127.0.0.1:${servers[1]?.port}`);
  t.notMatch(first.value?.message ?? '', SECRET);
  t.same([u.counters.sent, u.counters.retransmissions, u.counters.serverTimeouts, u.counters.unavailable], [4, 2, 2, 1]);
  t.match(u.status(), [{ alive: false }, { alive: false }]);

  const second = await timed(unavailable(u.forward(request)));
  t.type(second.value, UpstreamUnavailable);
  t.equal(u.counters.sent, 8, 'all marked dead: every server is tried anyway');
  t.ok(second.ms < 200 * 2 * 2 + 250);
  t.equal(logs.lines(/marked dead/).length, 2, 'one line per server');

  const closing = u.forward(request);
  await sleep(50);
  const closedAt = performance.now();
  await u.close();
  t.type(await unavailable(closing), UpstreamUnavailable, 'close() ends the forwards in flight');
  t.ok(performance.now() - closedAt < 100, 'at once');
  t.type(await unavailable(u.forward(request)), UpstreamUnavailable, 'and refuses new ones');
});

interface Fake {
  readonly server: UpstreamServer;
  readonly received: Buffer[];
}

/** A UDP "server" on 127.0.0.1 that hands every request to `answer`, with a second socket to send from a wrong port. */
async function startFake(t: Test, answer: (request: RadiusPacket, send: (buf: Buffer) => void, sendFromElsewhere: (buf: Buffer) => void) => void): Promise<Fake> {
  const bind = async (): Promise<Socket> => {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
    return s;
  };
  const [main, other] = [await bind(), await bind()];
  const received: Buffer[] = [];
  main.on('message', (msg, rinfo) => {
    received.push(msg);
    const request = decodePacket(msg);
    if (request instanceof RadiusDecodeError) return;
    answer(
      request,
      (buf) => main.send(buf, rinfo.port, rinfo.address),
      (buf) => other.send(buf, rinfo.port, rinfo.address),
    );
  });
  return { server: { host: '127.0.0.1', port: main.address().port, secret: Buffer.from(SECRET) }, received };
}

const secret = Buffer.from(SECRET);

/** Every way a reply can look almost right, in the order sent. */
function forgeries(request: RadiusPacket): Buffer[] {
  const valid = encodeReply(request, Code.AccessAccept, [], secret);
  const wrongSecret = encodeReply(request, Code.AccessAccept, [], Buffer.from(WRONG_SECRET));
  // A correct Response Authenticator and no Message-Authenticator (what FreeRADIUS 3.2.1 sends by default).
  const proxyStates = request.attributes.filter((a) => a.type === AttributeType.ProxyState);
  const noMac = encodePacket({ code: Code.AccessAccept, identifier: request.identifier, authenticator: request.authenticator, attributes: proxyStates });
  computeResponseAuthenticator(noMac, request.authenticator, secret).copy(noMac, 4);
  // A broken Message-Authenticator under a Response Authenticator recomputed over it.
  const badMac = Buffer.from(valid);
  badMac[22] = (badMac[22] as number) ^ 0xff;
  computeResponseAuthenticator(badMac, request.authenticator, secret).copy(badMac, 4);
  // Everything right except that our Proxy-State did not come back.
  const noProxyState = encodeReply({ ...request, attributes: request.attributes.filter((a) => a.type !== AttributeType.ProxyState) }, Code.AccessAccept, [], secret);
  return [wrongSecret, noMac, badMac, noProxyState];
}

void t.test('replies that do not verify are ignored and the request keeps waiting', async (t) => {
  let seen: RadiusPacket | undefined;
  const fake = await startFake(t, (request, send, sendFromElsewhere) => {
    seen ??= request;
    for (const forged of forgeries(request)) send(forged);
    sendFromElsewhere(encodeReply(request, Code.AccessAccept, [], secret)); // right bytes, wrong port
    setTimeout(() => send(encodeReply(request, Code.AccessReject, [attr.text(AttributeType.ReplyMessage, 'no')], secret)), 100);
  });
  const logs = captureLog();
  const u = upstream(t, [fake.server], logs.log, { timeoutMs: 1000, tries: 2 });
  const answer = await u.forward({ username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: [...NAS_ATTRIBUTES, ...NEVER_COPIED] });
  t.equal(answer.code, 'reject', 'the one valid reply, sent last, is the answer');
  t.equal(answer.replyMessage, 'no');
  t.same(u.counters.ignored, { wrong_source: 1, malformed: 0, unknown_identifier: 0, unexpected_code: 0, bad_authenticator: 3, missing_proxy_state: 1 });
  const reasons = logs.lines(/invalid reply/).map((l) => (JSON.parse(l) as { reason: string }).reason);
  t.same(reasons.sort(), ['bad_authenticator', 'bad_authenticator', 'bad_authenticator', 'missing_proxy_state', 'wrong_source'], 'each logged with its reason');
  t.notMatch(logs.text(), SECRET);

  // What went up, as the server saw it.
  const request = seen as RadiusPacket;
  t.equal(request.code, Code.AccessRequest);
  t.equal(request.attributes[0]?.type, AttributeType.MessageAuthenticator, 'Message-Authenticator first');
  t.equal(verifyRequestMessageAuthenticator(request, secret), 'valid');
  t.equal(request.attributes[1]?.type, AttributeType.UserName);
  t.equal(request.attributes[1]?.value.toString(), 'alice');
  const hidden = request.attributes.filter((a) => a.type === AttributeType.UserPassword);
  t.equal(hidden.length, 1, 'one User-Password: ours, not the NAS’s');
  t.equal(unhidePassword(hidden[0]?.value ?? Buffer.alloc(0), secret, request.authenticator)?.toString(), ALICE_PASSWORD, 'password hidden with the upstream secret');
  const proxyStates = request.attributes.filter((a) => a.type === AttributeType.ProxyState);
  t.equal(proxyStates.length, 1, 'one Proxy-State: ours, not the NAS’s');
  t.equal(proxyStates[0]?.value.length, 16);
  t.equal(request.attributes.at(-1)?.type, AttributeType.ProxyState, 'appended last');
  for (const type of [AttributeType.State, AttributeType.ChapPassword, AttributeType.ChapChallenge, AttributeType.EapMessage]) {
    t.notOk(request.attributes.some((a) => a.type === type), `attribute ${type} not copied`);
  }
  t.equal(request.attributes.filter((a) => a.type === AttributeType.MessageAuthenticator).length, 1);
  t.same(
    request.attributes.filter((a) => NAS_ATTRIBUTES.some((n) => n.type === a.type)).map((a) => [a.type, a.value.toString('hex')]),
    NAS_ATTRIBUTES.map((a) => [a.type, a.value.toString('hex')]),
    'NAS attributes copied in order',
  );
});

void t.test('only invalid replies: retransmitted unchanged, then UpstreamUnavailable', async (t) => {
  const fake = await startFake(t, (request, send) => {
    for (const forged of forgeries(request)) send(forged);
  });
  const u = upstream(t, [fake.server], captureLog().log, { timeoutMs: 150, tries: 3 });
  const outcome = await timed(unavailable(u.forward({ username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: [] })));
  t.type(outcome.value, UpstreamUnavailable);
  t.ok(outcome.ms < 150 * 3 + 200, `${Math.round(outcome.ms)} ms`);
  t.equal(fake.received.length, 3, 'three tries');
  t.ok(fake.received.every((b) => b.equals(fake.received[0] as Buffer)), 'retransmissions are byte-identical (same identifier and authenticator)');
  t.equal(u.counters.ignored.bad_authenticator, 9);
  t.equal(u.counters.ignored.missing_proxy_state, 3);
});

void t.test('500 concurrent forwards are all answered, each with its own answer', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const n = 500;
  const name = (i: number): string => `user${String(i).padStart(3, '0')}`;
  const fr = await startFreeRadius({
    t,
    replyMessageAuthenticator: true,
    receiveBufferBytes: 4 << 20,
    threads: { start: 8, max: 32 },
    clients: [{ address: '127.0.0.1', secret: SECRET, requireMessageAuthenticator: true }],
    users: Array.from({ length: n }, (_, i) => ({ name: name(i), cleartext: `pw-${i}`, reply: { 'Filter-Id': `filter-${i}` } })),
  });

  const run = async (u: RadiusUpstream): Promise<void> => {
    // Every other user gets a wrong password: a reply matched to the wrong request shows up as a wrong code or Filter-Id.
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) => u.forward({ username: name(i), password: Buffer.from(i % 2 === 0 ? `pw-${i}` : 'wrong'), attributes: NAS_ATTRIBUTES })),
    );
    const wrong = answers.flatMap((a, i) => {
      const expected = i % 2 === 0 ? 'accept' : 'reject';
      const filter = find(a, AttributeType.FilterId)?.toString();
      const ok = a.code === expected && (expected === 'reject' ? filter === undefined : filter === `filter-${i}`);
      return ok ? [] : [`${name(i)}: ${a.code} ${filter}`];
    });
    t.same(wrong, [], `${n} answers, each to its own request`);
    t.equal(u.counters.ignored.bad_authenticator + u.counters.ignored.missing_proxy_state, 0, 'no reply matched to another request');
  };

  const spread = upstream(t, [serverOf(fr)], captureLog().log, { timeoutMs: 3000, tries: 3 });
  await run(spread);
  t.equal(spread.status()[0]?.sockets, 2, 'a second socket (identifier space) opened beyond 256 in flight');
  t.equal(spread.status()[0]?.inFlight, 0, 'every identifier released');

  const queued = upstream(t, [serverOf(fr)], captureLog().log, { timeoutMs: 3000, tries: 3, maxSocketsPerServer: 1 });
  await run(queued);
  t.equal(queued.status()[0]?.sockets, 1, 'one socket: the rest queued for identifiers');
  t.match(queued.status()[0], { inFlight: 0, queued: 0 });
});

void t.test('a forward queued for an identifier of the next server leaves that queue when a late answer settles it', async (t) => {
  // Timeline (ms): 0 the forward goes to `late`, which answers at 1350; 700 the second server's
  // 256 identifiers are taken by forwards pinned to it (it never answers; they give up at 1700);
  // 1000 the forward fails over to it and queues; 1350 the late answer settles the forward.
  const started = performance.now();
  const late = await startFake(t, (request, send) => {
    if (late.received.length > 1) return; // the retransmission
    const answer = encodeReply(request, Code.AccessAccept, [attr.text(AttributeType.ReplyMessage, 'late but valid')], secret);
    setTimeout(() => send(answer), 1350 - (performance.now() - started));
  });
  const silent = await startFake(t, () => undefined);
  const u = upstream(t, [late.server, silent.server], captureLog().log, { timeoutMs: 500, tries: 2, maxSocketsPerServer: 1 });

  const forward = timed(u.forward({ username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: NAS_ATTRIBUTES }));
  await sleep(700);
  const label = `127.0.0.1:${silent.server.port}`;
  const pinned = Array.from({ length: 256 }, () => unavailable(u.forward({ username: 'bob', password: Buffer.from('x'), attributes: NAS_ATTRIBUTES, server: label })));
  await sleep(450);
  t.match(u.status()[1], { server: label, inFlight: 256, queued: 1 }, 'failed over, waiting for an identifier of the second server');

  const { value, ms } = await forward;
  t.equal(value.code, 'accept');
  t.equal(value.server, `127.0.0.1:${late.server.port}`, 'the first server’s late answer');
  t.ok(ms < 1650, `answered at ${Math.round(ms)} ms, before any identifier came free`);
  t.match(u.status()[1], { inFlight: 256, queued: 0 }, 'its place in the queue given up at once');
  t.equal((await Promise.all(pinned)).filter((e) => e === undefined).length, 0, 'the pinned forwards time out');
  t.match(u.status()[1], { inFlight: 0, queued: 0 });
  t.equal(silent.received.length, 256 * 2, 'the settled forward never sent to the second server');
});

void t.test('options are checked', async (t) => {
  const log = captureLog().log;
  const server = { host: '127.0.0.1', port: 1812, secret: Buffer.from(SECRET) };
  const base = { name: 'corp', servers: [server], timeoutMs: 100, tries: 1, log };
  t.throws(() => new RadiusUpstream({ ...base, servers: [] }), /no servers/);
  t.throws(() => new RadiusUpstream({ ...base, timeoutMs: 0 }), /timeoutMs/);
  t.throws(() => new RadiusUpstream({ ...base, tries: 0 }), /tries/);
  t.throws(() => new RadiusUpstream({ ...base, servers: [{ ...server, secret: Buffer.alloc(0) }] }), /empty secret/);

  const u = new RadiusUpstream(base);
  await t.rejects(u.forward({ username: 'alice', password: Buffer.alloc(129, 0x61), attributes: [] }), { code: 'GW_ERR_RADIUS_ENCODE' });
  await t.rejects(u.forward({ username: '', password: Buffer.from('x'), attributes: [] }), { code: 'GW_ERR_RADIUS_ENCODE' });
  t.equal(u.counters.sent, 0, 'refused before anything was sent');
  t.same(u.status()[0]?.sockets, 0);
  await u.close();
});

void t.test('an upstream that sends no Message-Authenticator (FreeRADIUS 3.2.1 as Debian ships it): ignored unless the upstream is configured not to require one', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius')) return;
  const fr = await startFreeRadius({ ...baseFreeRadius(t), replyMessageAuthenticator: false });
  const strict = upstream(t, [serverOf(fr)], captureLog().log, { timeoutMs: 300, tries: 1 });
  const refused = await unavailable(strict.forward({ username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: NAS_ATTRIBUTES }));
  t.ok(refused, 'required by default: the replies are ignored, the upstream counts as unavailable');
  t.equal(strict.counters.ignored.bad_authenticator, 1, 'counted as a reply without a valid Message-Authenticator');

  const logs = captureLog();
  const lenient = upstream(t, [serverOf(fr)], logs.log, { requireMessageAuthenticator: false });
  t.equal(logs.lines(/Blast-RADIUS/).length, 1, 'the opt-out is warned about');
  const answer = await lenient.forward({ username: 'alice', password: Buffer.from(ALICE_PASSWORD), attributes: NAS_ATTRIBUTES });
  t.equal(answer.code, 'accept', 'accepted with require_message_authenticator false');
  t.equal((await lenient.forward({ username: 'alice', password: Buffer.from('wrong'), attributes: NAS_ATTRIBUTES })).code, 'reject');
});
