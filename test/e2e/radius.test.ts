import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Secret, TOTP } from 'otpauth';
import { AttributeType, Code, RadiusDecodeError, attr, decodePacket, encodeAccessRequest, verifyReply } from '../../src/radius/codec/index.js';
import { gatewayConfig, startGateway, type RunningGateway } from '../peers/gateway.js';
import { freePort } from '../peers/ports.js';
import { radclient, type PacketSpec } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { tempDir } from '../peers/temp.js';
import { sendUdp } from '../peers/udp-client.js';

/**
 * End to end: the real gateway process (bin/mfa-gateway.js serve), provisioned with its own CLI,
 * driven by FreeRADIUS's radclient as the NAS, and by raw UDP for what radclient will not send.
 */

const SEEDS: Record<string, string> = {
  alice: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXA',
  bob: 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLB',
  carol: 'MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LC',
  dave: 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJD',
  erin: 'ORSXG5BAORSXG5BAORSXG5BAORSXG5BE',
  frank: 'NBSWY3DPNBSWY3DPNBSWY3DPNBSWY3DF',
};
const PASSWORDS: Record<string, string> = {
  alice: 'Alice-Pass-4711',
  bob: 'Bob-Pass-0815x',
  carol: 'Carol-Pass-1234',
  dave: 'Dave-Pass-5678',
  erin: 'Erin-Pass-9012',
  frank: 'Frank-Pass-3456',
};

const usedCodes = new Set<string>();

function totp(user: string, offsetSteps = 0): string {
  const code = new TOTP({ secret: Secret.fromBase32(SEEDS[user] ?? '') }).generate({ timestamp: Date.now() + offsetSteps * 30_000 });
  usedCodes.add(code);
  return code;
}

/** Waits for the start of a fresh 30 s step when the current one is nearly over, so a code stays valid for the test. */
async function freshStep(): Promise<void> {
  const left = 30_000 - (Date.now() % 30_000);
  if (left < 5_000) await sleep(left + 100);
}

async function auditJson(gw: RunningGateway): Promise<Array<Record<string, unknown>>> {
  const out = await gw.cli(['audit', 'export', '--format', 'json']);
  if (out.code !== 0) throw new Error(`audit export failed: ${out.stderr}`);
  return JSON.parse(out.stdout) as Array<Record<string, unknown>>;
}

t.test('RADIUS end to end with radclient', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const dir = tempDir('mfa-e2e-radius-');
  t.teardown(() => dir.cleanup());
  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');
  const gw = await startGateway({
    dir: dir.path,
    configYaml: gatewayConfig({ radiusPort, acctPort, dataDir: `${dir.path}/data`, maxFailures: 3, lockMinutes: 15 }),
    t,
  });
  const secret = gw.secret();
  t.equal(secret.length, 32, 'a generated 32-character secret');

  for (const user of Object.keys(SEEDS)) {
    const add = await gw.cli(['users', 'add', user, '--password-stdin', '--email', `${user}@example.test`], `${PASSWORDS[user]}\n`);
    t.equal(add.code, 0, `users add ${user}: ${add.stderr}`);
    const tok = await gw.cli(['tokens', 'add-totp', user, '--secret', SEEDS[user] ?? '']);
    t.equal(tok.code, 0, `tokens add-totp ${user}: ${tok.stderr}`);
    t.match(tok.stdout, /^otpauth:\/\/totp\//, 'prints the otpauth URI');
  }

  const nas = (packets: PacketSpec[], extra: Partial<Parameters<typeof radclient>[0]> = {}) =>
    radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets, retries: 1, timeoutSec: 3, ...extra });
  const login = (user: string, password: string, more: PacketSpec = {}): PacketSpec => ({
    'User-Name': user,
    'User-Password': password,
    'NAS-Identifier': 'e2e-nas',
    'Calling-Station-Id': '192.0.2.44',
    'Message-Authenticator': '0x00',
    ...more,
  });

  await t.test('accept with password + inline TOTP', async (t) => {
    await freshStep();
    const r = await nas([login('alice', `${PASSWORDS.alice},${totp('alice')}`)]);
    t.equal(r.replies[0]?.code, 'Access-Accept', r.stdout + r.stderr);
    t.ok(r.replies[0]?.attributes['Message-Authenticator'], 'reply carries a Message-Authenticator');
  });

  await t.test('challenge round trip with State', async (t) => {
    await freshStep();
    const first = await nas([login('carol', PASSWORDS.carol ?? '')]);
    const challenge = first.replies[0];
    t.equal(challenge?.code, 'Access-Challenge', first.stdout);
    t.equal(challenge?.attributes['Reply-Message']?.[0], 'Enter your verification code');
    const state = challenge?.attributes.State?.[0];
    t.match(state, /^0x[0-9a-f]+$/, 'State present');
    const second = await nas([login('carol', totp('carol'), { State: state ?? '' })]);
    t.equal(second.replies[0]?.code, 'Access-Accept', second.stdout);
    const again = await nas([login('carol', totp('carol', 1), { State: state ?? '' })]);
    t.equal(again.replies[0]?.code, 'Access-Reject', 'a State is good for one answer');
  });

  await t.test('rejections: wrong code, replayed code, wrong password, unknown user, locked out', async (t) => {
    await freshStep();
    const code = totp('bob');
    const cases: Array<[PacketSpec, string]> = [
      [login('bob', `${PASSWORDS.bob},000000`), 'bad_code'],
      [login('bob', `${PASSWORDS.bob},${code}`), 'accepted'],
      [login('bob', `${PASSWORDS.bob},${code}`), 'code_replayed'],
      [login('bob', `not-the-password,${totp('bob', 1)}`), 'bad_password'],
      [login('nobody', `whatever,${code}`), 'user_unknown'],
      // dave: three failures lock him (max_failures 3), then even the right password and code are refused
      [login('dave', 'wrong-1'), 'bad_password'],
      [login('dave', 'wrong-2'), 'bad_password'],
      [login('dave', 'wrong-3'), 'bad_password'],
      [login('dave', `${PASSWORDS.dave},${totp('dave')}`), 'locked_out'],
    ];
    const before = (await auditJson(gw)).length;
    for (const [packet, reason] of cases) {
      const r = await nas([packet]);
      t.equal(r.replies[0]?.code, reason === 'accepted' ? 'Access-Accept' : 'Access-Reject', `${String(packet['User-Name'])}: ${reason}`);
    }
    const records = (await auditJson(gw)).slice(before);
    t.same(records.map((r) => r.reason), cases.map((c) => c[1]), 'the audit names each reason');
    t.equal(records[0]?.nasIdentifier, 'e2e-nas');
    t.equal(records[0]?.callingStationId, '192.0.2.44');
  });

  await t.test('no or wrong Message-Authenticator, unknown client: no answer at all', async (t) => {
    const withoutMa = login('alice', `${PASSWORDS.alice},${totp('alice')}`);
    delete withoutMa['Message-Authenticator'];
    const r = await nas([withoutMa], { timeoutSec: 1 });
    t.equal(r.replies.length, 0, 'no reply to a request without Message-Authenticator');
    t.equal(r.noReply, 1);

    const { packet } = encodeAccessRequest({
      identifier: 7,
      secret: Buffer.from(secret),
      attributes: [attr.text(AttributeType.UserName, 'alice')],
      password: Buffer.from(PASSWORDS.alice ?? ''),
    });
    const tampered = Buffer.from(packet);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0x01; // inside the signed attributes
    t.equal(await sendUdp('127.0.0.1', radiusPort, tampered, 1000), undefined, 'tampered packet: no answer');
    const { packet: wrongSecret } = encodeAccessRequest({
      identifier: 8,
      secret: Buffer.from('a-different-shared-secret'),
      attributes: [attr.text(AttributeType.UserName, 'alice')],
      password: Buffer.from(PASSWORDS.alice ?? ''),
    });
    t.equal(await sendUdp('127.0.0.1', radiusPort, wrongSecret, 1000), undefined, 'wrong secret: no answer');

    // The only client is 127.0.0.1; the same valid packet from 127.0.0.9 is from nobody.
    const stranger = createSocket('udp4');
    await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.9', resolve));
    const { packet: valid } = encodeAccessRequest({ identifier: 9, secret: Buffer.from(secret), attributes: [attr.text(AttributeType.UserName, 'alice')], password: Buffer.from('x') });
    const answer = await new Promise<Buffer | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1000);
      stranger.on('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      stranger.send(valid, radiusPort, '127.0.0.1');
    });
    stranger.close();
    t.equal(answer, undefined, 'unknown client: no answer');

    for (const junk of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(5000, 1), Buffer.concat([valid.subarray(0, 20), Buffer.from([1, 0])])]) {
      t.equal(await sendUdp('127.0.0.1', radiusPort, junk, 300), undefined, `junk of ${junk.length} bytes: no answer`);
    }
    t.ok(gw.process.exitCode === null, 'the gateway is still running');
  });

  await t.test('a retransmission gets the byte-identical reply and no second audit record', async (t) => {
    await freshStep();
    const before = (await auditJson(gw)).length;
    const { packet, authenticator } = encodeAccessRequest({
      identifier: 42,
      secret: Buffer.from(secret),
      attributes: [attr.text(AttributeType.UserName, 'erin'), attr.text(AttributeType.NasIdentifier, 'e2e-raw')],
      password: Buffer.from(`${PASSWORDS.erin},${totp('erin')}`),
    });
    // Three copies at once (the NAS retransmitting while the first is decided), then one later.
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const replies: Buffer[] = [];
    socket.on('message', (m) => replies.push(m));
    for (let i = 0; i < 3; i++) socket.send(packet, radiusPort, '127.0.0.1');
    await sleep(1500);
    socket.send(packet, radiusPort, '127.0.0.1');
    await sleep(500);
    socket.close();
    t.ok(replies.length >= 4, `${replies.length} replies for 4 copies`);
    const first = replies[0] ?? Buffer.alloc(0);
    t.ok(replies.every((r) => r.equals(first)), 'all replies byte-identical');
    const decoded = decodePacket(first);
    if (decoded instanceof RadiusDecodeError) throw decoded;
    t.equal(decoded.code, Code.AccessAccept);
    t.equal(decoded.attributes[0]?.type, AttributeType.MessageAuthenticator, 'Message-Authenticator is the first attribute');
    t.ok(verifyReply(decoded, authenticator, Buffer.from(secret), { requireMessageAuthenticator: true }), 'reply authenticators verify');
    const after = await auditJson(gw);
    t.equal(after.length - before, 1, 'one audit record for the four copies');
  });

  await t.test('Status-Server answered; accounting acknowledged and recorded', async (t) => {
    const status = await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'status', packets: [{ 'Message-Authenticator': '0x00' }], retries: 1 });
    t.equal(status.replies[0]?.code, 'Access-Accept', status.stdout + status.stderr);
    const acct = await radclient({
      host: '127.0.0.1',
      port: acctPort,
      secret,
      type: 'acct',
      packets: [{ 'User-Name': 'alice', 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 'sess-1', 'NAS-Identifier': 'e2e-nas' }],
      retries: 1,
    });
    t.equal(acct.replies[0]?.code, 'Accounting-Response', acct.stdout + acct.stderr);
  });

  await t.test('try: the NAS simulator, inline and through a challenge', async (t) => {
    await freshStep();
    const inline = await gw.cli(['try', '--server', `127.0.0.1:${radiusPort}`, '--secret-file', gw.secretFile ?? '', '--user', 'frank', '--password', `${PASSWORDS.frank},${totp('frank')}`]);
    t.equal(inline.code, 0, inline.stderr);
    t.match(inline.stdout, /Received Access-Accept id \d+ from 127\.0\.0\.1:\d+ in [\d.]+ ms/);
    t.match(inline.stdout, /Message-Authenticator = 0x[0-9a-f]{32}/);
    const challenged = await gw.cli(['try', '--server', `127.0.0.1:${radiusPort}`, '--secret-file', gw.secretFile ?? '', '--user', 'erin', '--password-stdin', '--code', totp('erin', 1)], `${PASSWORDS.erin ?? ''}\n`);
    t.equal(challenged.code, 0, challenged.stderr);
    t.match(challenged.stdout, /Received Access-Challenge[\s\S]*Reply-Message = "Enter your verification code"[\s\S]*Received Access-Accept/);
    const both = await gw.cli(['try', '--server', `127.0.0.1:${radiusPort}`, '--secret-file', gw.secretFile ?? '', '--user', 'alice']);
    t.not(both.code, 0);
    t.match(both.stderr, /^mfa-gateway: pass --password or --password-stdin \(one of them\)/);
    const rejected = await gw.cli(['try', '--server', `127.0.0.1:${radiusPort}`, '--secret-file', gw.secretFile ?? '', '--user', 'alice', '--password', 'wrong,123456']);
    t.equal(rejected.code, 1);
    t.match(rejected.stdout, /Received Access-Reject/);
  });

  await t.test('audit verify passes; no password, code or secret in any log', async (t) => {
    const verify = await gw.cli(['audit', 'verify']);
    t.equal(verify.code, 0, verify.stdout + verify.stderr);
    t.match(verify.stdout, /audit chain intact: \d+ records/);
    const logs = gw.allLogs();
    t.ok(logs.includes('"msg":"attempt"'), 'attempts are logged');
    for (const [user, pw] of Object.entries(PASSWORDS)) t.notOk(logs.includes(pw), `password of ${user} not logged`);
    // `tokens add-totp` prints the otpauth URI (with the seed) to stdout by design; the gateway never logs it.
    for (const seed of Object.values(SEEDS)) t.notOk(gw.logs().includes(seed), 'seed not in the gateway log');
    for (const code of usedCodes) t.notOk(new RegExp(`[",=]${code}"`).test(logs), `code ${code} not logged`);
    t.notOk(logs.includes(secret), 'shared secret not logged');
    const master = (await import('node:fs')).readFileSync(`${gw.dataDir}/master.key`, 'utf8').trim();
    t.notOk(logs.includes(master), 'master key not logged');
  });

  await t.test('SIGTERM: drains and exits 0', async (t) => {
    t.equal(await gw.stop('SIGTERM'), 0);
  });
});
