import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { AttributeType, Code, RadiusDecodeError, attr, decodePacket, encodeAccessRequest } from '../../src/radius/codec/index.js';
import { startFreeRadius } from '../peers/freeradius.js';
import { sendUdp } from '../peers/udp-client.js';
import { startGateway } from '../peers/gateway.js';
import { linesWithDuplicateKeys } from '../peers/log-lines.js';
import { freePort } from '../peers/ports.js';
import { radclient, type PacketSpec } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { startSlapd } from '../peers/slapd.js';
import { tempDir } from '../peers/temp.js';
import { TotpCodes, exportedAudit } from '../peers/totp-codes.js';

/**
 * End to end: the gateway process with first factors outside it — an OpenLDAP `slapd` over LDAPS
 * and over StartTLS, one whose certificate the configured CA did not sign, and a FreeRADIUS 3.2
 * upstream (with an Access-Challenge of its own) — driven by radclient as four NAS clients on
 * four loopback source addresses.
 */

const USERS = ['user1', 'user2', 'user3', 'fruser', 'frchallenge'];
/** Several TOTP tokens per user: the test logs each in more often than once per 30 s step. */
const codes = new TotpCodes(6);

t.test('first factors against slapd and FreeRADIUS', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils') || !requirePeer(t, 'slapd', 'slapd') || !requirePeer(t, 'freeradius', 'freeradius')) return;
  const dir = tempDir('mfa-e2e-ff-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');

  const slapd = await startSlapd({ t });
  const frSecret = 'upstream-secret-0123456789';
  const fr = await startFreeRadius({
    t,
    clients: [{ address: '127.0.0.1', secret: frSecret, requireMessageAuthenticator: true }],
    replyMessageAuthenticator: true,
    users: [
      { name: 'fruser', cleartext: 'Fr-Pass-1234', reply: { Class: '0x76706e2d67726f7570', 'Filter-Id': 'vpn-staff', 'Session-Timeout': '3600', 'Reply-Message': 'upstream says hi' } },
      { name: 'frchallenge', cleartext: 'Fr-Pass-5678', challenge: { prompt: 'Enter your upstream PIN', response: 'pin-2468' }, reply: { 'Filter-Id': 'vpn-challenged' } },
    ],
  });

  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');
  const directory = (url: string, ca: string, extra = ''): string => `
    flavour: ldap
    urls: [${JSON.stringify(url)}]
    ca_file: ${JSON.stringify(ca)}
    bind_dn: ${JSON.stringify(slapd.adminDn)}
    bind_password: {file: corp-bind}
    base_dn: ${JSON.stringify(slapd.baseDn)}
    timeout_ms: 3000${extra}`;
  const client = (name: string, address: string, policy: string): string => `
  - name: ${name}
    addresses: [${address}]
    secret: {file: radius-secret, generate: true}
    policy: ${policy}`;
  const configYaml = `data_dir: ${JSON.stringify(dataDir)}
keys:
  master_key: {file: master.key, generate: true}
log:
  level: info
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${acctPort}}]
clients:${client('nas-ldaps', '127.0.0.1', 'ldaps')}${client('nas-starttls', '127.0.0.2', 'starttls')}${client('nas-untrusted', '127.0.0.3', 'untrusted')}${client('nas-upstream', '127.0.0.4', 'upstream')}
policies:
  ldaps: {first_factor: 'ldap:corp'}
  starttls: {first_factor: 'ldap:corp-starttls'}
  untrusted: {first_factor: 'ldap:corp-untrusted'}
  upstream: {first_factor: 'radius:fr'}
directories:
  corp:${directory(slapd.ldapsUrl, slapd.caFile)}
  corp-starttls:${directory(slapd.url, slapd.caFile, '\n    start_tls: true')}
  corp-untrusted:${directory(slapd.ldapsUrl, slapd.untrustedCaFile)}
upstreams:
  fr:
    servers:
      - {address: 127.0.0.1, port: ${await freePort('udp')}, secret: {file: fr-secret}}
      - {address: 127.0.0.1, port: ${fr.port}, secret: {file: fr-secret}}
    timeout_ms: 500
    tries: 1
lockout:
  max_failures: 0
`;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'corp-bind'), `${slapd.adminPassword}\n`, { mode: 0o600 });
  writeFileSync(join(dataDir, 'fr-secret'), `${frSecret}\n`, { mode: 0o600 });
  const gw = await startGateway({ dir: dir.path, configYaml, t });
  const secret = gw.secret();

  for (const user of USERS) {
    const add = await gw.cli(['users', 'add', user, '--no-password']);
    t.equal(add.code, 0, `users add ${user}: ${add.stderr}`);
    await codes.enrol(gw, user);
  }

  const send = async (from: string, packet: PacketSpec) => {
    const r = await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: [{ 'Packet-Src-IP-Address': from, 'Message-Authenticator': '0x00', ...packet }], retries: 1, timeoutSec: 8 });
    return r.replies[0];
  };

  await t.test('LDAPS: password + inline TOTP, every name form; wrong and empty passwords', async (t) => {
    for (const name of ['user1', 'user1@example.test', 'USER1']) {
      const r = await send('127.0.0.1', { 'User-Name': name, 'User-Password': `Passw0rd-1,${await codes.next('user1')}` });
      t.equal(r?.code, 'Access-Accept', `accepted as ${name}`);
    }
    // radclient cannot send a backslash verbatim: the DOMAIN\user form goes out through the codec.
    const { packet } = encodeAccessRequest({
      identifier: 7,
      secret: Buffer.from(secret),
      attributes: [attr.text(AttributeType.UserName, 'EXAMPLE\\user1')],
      password: Buffer.from(`Passw0rd-1,${await codes.next('user1')}`),
    });
    const raw = await sendUdp('127.0.0.1', radiusPort, packet, 8000);
    const decoded = raw === undefined ? undefined : decodePacket(raw);
    t.equal(decoded instanceof RadiusDecodeError ? 'malformed' : decoded?.code, Code.AccessAccept, 'accepted as EXAMPLE\\user1');
    t.equal((await send('127.0.0.1', { 'User-Name': 'user1', 'User-Password': `wrong-password,${await codes.next('user1')}` }))?.code, 'Access-Reject', 'wrong password');
    t.equal((await send('127.0.0.1', { 'User-Name': 'user2', 'User-Password': 'Passw0rd-2,000000' }))?.code, 'Access-Reject', 'right password, wrong code');

    const bindsBefore = (slapd.logs().match(/ BIND dn="uid=user3,/g) ?? []).length;
    t.equal((await send('127.0.0.1', { 'User-Name': 'user3', 'User-Password': `,${await codes.next('user3')}` }))?.code, 'Access-Reject', 'empty password');
    await sleep(200);
    t.equal((slapd.logs().match(/ BIND dn="uid=user3,/g) ?? []).length, bindsBefore, 'the empty password never reached slapd');
    t.equal((await send('127.0.0.1', { 'User-Name': 'user3', 'User-Password': `Passw0rd-3,${await codes.next('user3')}` }))?.code, 'Access-Accept', 'user3 with the password');
    t.match(slapd.logs(), / BIND dn="uid=user3,/, 'and that one did');
  });

  await t.test('StartTLS works; a certificate the configured CA did not sign is refused', async (t) => {
    t.equal((await send('127.0.0.2', { 'User-Name': 'user2', 'User-Password': `Passw0rd-2,${await codes.next('user2')}` }))?.code, 'Access-Accept', 'StartTLS');
    t.equal((await send('127.0.0.3', { 'User-Name': 'user2', 'User-Password': `Passw0rd-2,${await codes.next('user2')}` }))?.code, 'Access-Reject', 'untrusted certificate');
  });

  await t.test('upstream RADIUS: first server down, the second answers; reply attributes passed back', async (t) => {
    const ok = await send('127.0.0.4', { 'User-Name': 'fruser', 'User-Password': `Fr-Pass-1234,${await codes.next('fruser')}`, 'NAS-Identifier': 'vpn-7' });
    t.equal(ok?.code, 'Access-Accept');
    t.same(ok?.attributes.Class, ['0x76706e2d67726f7570'], 'Class from the upstream');
    t.same(ok?.attributes['Filter-Id'], ['vpn-staff'], 'Filter-Id from the upstream');
    t.same(ok?.attributes['Session-Timeout'], ['3600'], 'Session-Timeout from the upstream');
    t.notOk(ok?.attributes['Reply-Message'], "the upstream's Reply-Message is not passed on");
    t.equal((await send('127.0.0.4', { 'User-Name': 'fruser', 'User-Password': `wrong,${await codes.next('fruser')}` }))?.code, 'Access-Reject', 'upstream reject');
  });

  await t.test("the upstream's Access-Challenge is passed through, then the gateway's own", async (t) => {
    const first = await send('127.0.0.4', { 'User-Name': 'frchallenge', 'User-Password': 'Fr-Pass-5678' });
    t.equal(first?.code, 'Access-Challenge');
    t.same(first?.attributes['Reply-Message'], ['Enter your upstream PIN'], "the upstream's prompt");
    const state1 = first?.attributes.State?.[0] ?? '';
    t.not(state1.toLowerCase(), fr.challengeStates.get('frchallenge')?.toLowerCase(), "the gateway's own State, not the upstream's");
    const second = await send('127.0.0.4', { 'User-Name': 'frchallenge', 'User-Password': 'pin-2468', State: state1 });
    t.equal(second?.code, 'Access-Challenge', 'then the gateway asks for the code');
    const state2 = second?.attributes.State?.[0] ?? '';
    const done = await send('127.0.0.4', { 'User-Name': 'frchallenge', 'User-Password': await codes.next('frchallenge'), State: state2 });
    t.equal(done?.code, 'Access-Accept');
    t.same(done?.attributes['Filter-Id'], ['vpn-challenged'], "the upstream's accept attributes ride on the final accept");
  });

  await t.test('the audit names the first factor and the reason of each attempt', async (t) => {
    const records = await exportedAudit(gw);
    const view = records.map((r) => `${String(r.username)} ${String(r.firstFactor)} ${String(r.result)} ${String(r.reason)}`);
    t.ok(view.includes('user1 ldap:corp reject bad_password'), 'wrong LDAP password');
    t.ok(view.includes('user2 ldap:corp reject bad_code'), 'right password, wrong code');
    t.ok(view.includes('user3 ldap:corp reject bad_password'), 'empty password');
    t.ok(view.includes('user2 ldap:corp-starttls accept accepted'), 'StartTLS');
    t.ok(view.includes('user2 ldap:corp-untrusted reject first_factor_unavailable'), 'untrusted CA: the directory could not be used');
    t.ok(view.includes('fruser radius:fr reject upstream_rejected'), 'upstream reject');
    t.ok(view.includes('frchallenge radius:fr challenge challenge_first_factor'), "upstream's challenge");
    t.ok(view.includes('frchallenge radius:fr accept accepted'), 'and the accept after both challenges');
    t.notOk(gw.allLogs().includes('Passw0rd-') || gw.allLogs().includes('Fr-Pass-') || gw.allLogs().includes('pin-2468') || gw.allLogs().includes(slapd.adminPassword) || gw.allLogs().includes(frSecret), 'no password or secret in the logs');
    t.same(linesWithDuplicateKeys(gw.logs()), [], 'every log line is JSON without a key twice (store, directories, upstream)');
  });

  t.equal(await gw.stop(), 0, 'SIGTERM: exit 0');
  await fr.stop();
  await slapd.stop();
});
