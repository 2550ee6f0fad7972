import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import t from 'tap';
import { startFreeRadius } from './freeradius.js';
import { trackedChildren } from './process-reaper.js';
import { radclient } from './radclient.js';
import { requirePeer } from './require-peer.js';
import { sendUdp } from './udp-client.js';

// The harness itself against the real FreeRADIUS 3.2: if these fail, no end-to-end test that
// uses FreeRADIUS as upstream or anchor can be trusted.

const SECRET = 'harness-secret-0123456789';
// `openssl passwd -6 -salt saltsalt secret`
const BOB_CRYPT = '$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1';
const ALICE_PASSWORD = `p%q'r"s {x} é`;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** An Access-Request built by hand (RFC 2865 §5.2 hiding), without a Message-Authenticator. */
function bareAccessRequest(secret: string, user: string, password: string): Buffer {
  const authenticator = randomBytes(16);
  const padded = Buffer.alloc(Math.max(16, Math.ceil(Buffer.byteLength(password) / 16) * 16));
  padded.write(password);
  const hidden = Buffer.alloc(padded.length);
  let previous = authenticator;
  for (let i = 0; i < padded.length; i += 16) {
    const pad = createHash('md5').update(secret).update(previous).digest();
    for (let j = 0; j < 16; j++) hidden[i + j] = (padded[i + j] ?? 0) ^ (pad[j] ?? 0);
    previous = hidden.subarray(i, i + 16);
  }
  const name = Buffer.from(user);
  const attributes = Buffer.concat([Buffer.from([1, name.length + 2]), name, Buffer.from([2, hidden.length + 2]), hidden]);
  const header = Buffer.from([1, 42, 0, 0]);
  header.writeUInt16BE(20 + attributes.length, 2);
  return Buffer.concat([header, authenticator, attributes]);
}

void t.test('FreeRADIUS from a generated raddb answers PAP from its users file', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius') || !requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const fr = await startFreeRadius({
    t,
    users: [
      { name: 'alice', cleartext: ALICE_PASSWORD, reply: { 'Reply-Message': 'Hello, %{User-Name}', 'Session-Timeout': '3600' } },
      { name: 'bob', crypt: BOB_CRYPT },
    ],
    clients: [{ address: '127.0.0.1', secret: SECRET }],
  });
  t.ok(isRunning(fr.pid), 'FreeRADIUS runs');
  t.not(fr.port, fr.acctPort);
  const target = { host: fr.host, port: fr.port, secret: SECRET } as const;

  const ok = await radclient({
    ...target,
    type: 'auth',
    packets: [
      { 'User-Name': 'alice', 'User-Password': ALICE_PASSWORD, 'Message-Authenticator': '0x00' },
      { 'User-Name': 'bob', 'User-Password': 'secret' },
    ],
  });
  t.equal(ok.exitCode, 0, 'radclient exits 0 when every reply is an Accept');
  t.equal(ok.replies.length, 2);
  const [alice, bob] = ok.replies;
  t.match(alice, { code: 'Access-Accept', request: 0 });
  t.same(alice?.attributes, { 'Reply-Message': ['Hello, %{User-Name}'], 'Session-Timeout': ['3600'] }, 'reply attributes parsed, no xlat');
  t.match(bob, { code: 'Access-Accept', request: 1 }, 'Crypt-Password (SHA-512 crypt)');

  const bad = await radclient({
    ...target,
    type: 'auth',
    parallel: 3,
    packets: [
      { 'User-Name': 'alice', 'User-Password': 'wrong' },
      { 'User-Name': 'nobody', 'User-Password': 'x' },
      { 'User-Name': 'bob', 'User-Password': 'secret' },
    ],
  });
  t.equal(bad.exitCode, 1, 'radclient exits 1 on a reject');
  const byRequest = new Map(bad.replies.map((r) => [r.request, r.code]));
  t.same([byRequest.get(0), byRequest.get(1), byRequest.get(2)], ['Access-Reject', 'Access-Reject', 'Access-Accept']);

  const status = await radclient({ ...target, type: 'status', packets: [] });
  t.equal(status.replies[0]?.code, 'Access-Accept', 'Status-Server answered');

  const acct = await radclient({
    host: fr.host,
    port: fr.acctPort,
    secret: SECRET,
    type: 'acct',
    packets: [{ 'User-Name': 'alice', 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 's1' }],
  });
  t.equal(acct.replies[0]?.code, 'Accounting-Response', 'accounting port answers');

  const wrongSecret = await radclient({ ...target, secret: 'not-the-secret', type: 'auth', retries: 1, timeoutSec: 1, packets: [{ 'User-Name': 'alice', 'User-Password': ALICE_PASSWORD, 'Message-Authenticator': '0x00' }] });
  t.same(wrongSecret.replies, [], 'a wrong secret gets no answer (bad Message-Authenticator)');
  t.equal(wrongSecret.noReply, 1);

  const pid = fr.pid;
  await fr.stop();
  t.notOk(isRunning(pid), 'stop() leaves no process');
  t.notOk(existsSync(`/proc/${pid}`));
  await fr.stop(); // idempotent
  t.match(fr.logs(), /Ready to process requests/);
});

void t.test('per-client Message-Authenticator requirement, Status-Server off', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius') || !requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const fr = await startFreeRadius({
    t,
    statusServer: false,
    users: [{ name: 'carol', cleartext: 'carol-pw' }],
    clients: [{ address: '127.0.0.0/8', secret: SECRET, requireMessageAuthenticator: true }],
  });
  t.equal(await sendUdp(fr.host, fr.port, bareAccessRequest(SECRET, 'carol', 'carol-pw'), 500), undefined, 'no Message-Authenticator: dropped');

  const withMa = await radclient({ host: fr.host, port: fr.port, secret: SECRET, type: 'auth', packets: [{ 'User-Name': 'carol', 'User-Password': 'carol-pw', 'Message-Authenticator': '0x00' }] });
  t.equal(withMa.replies[0]?.code, 'Access-Accept', 'with Message-Authenticator: answered');

  const status = await radclient({ host: fr.host, port: fr.port, secret: SECRET, type: 'status', packets: [], retries: 1, timeoutSec: 1 });
  t.same(status.replies, [], 'Status-Server ignored when disabled');
  await fr.stop();
});

void t.test('two instances side by side; nothing left behind', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius') || !requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const clients = [{ address: '127.0.0.1', secret: SECRET }];
  const [a, b] = await Promise.all([
    startFreeRadius({ t, users: [{ name: 'u', cleartext: 'a' }], clients }),
    startFreeRadius({ t, users: [{ name: 'u', cleartext: 'b' }], clients }),
  ]);
  t.not(a.port, b.port);
  const asB = await radclient({ host: b.host, port: b.port, secret: SECRET, type: 'auth', packets: [{ 'User-Name': 'u', 'User-Password': 'b' }] });
  t.equal(asB.replies[0]?.code, 'Access-Accept');
  await Promise.all([a.stop(), b.stop()]);
  t.same(trackedChildren(), [], 'no tracked child process is still running');
});
