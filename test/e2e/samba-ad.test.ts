import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { AttributeType, Code, RadiusDecodeError, attr, decodePacket, encodeAccessRequest } from '../../src/radius/codec/index.js';
import { startGateway } from '../peers/gateway.js';
import { freePort } from '../peers/ports.js';
import { radclient, type PacketSpec } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { requireSambaAd, startSambaAd } from '../peers/samba-ad.js';
import { tempDir } from '../peers/temp.js';
import { TotpCodes, exportedAudit } from '../peers/totp-codes.js';
import { sendUdp } from '../peers/udp-client.js';

/**
 * End to end against a real Samba AD DC: the gateway syncs OU=Staff into its store (`sync run`),
 * users enrol TOTP, and radclient logs in with the AD password and the code — over LDAPS and over
 * StartTLS, with every name form; AD's refusals (52e, 533, 701, 773, 775) end in their reasons.
 */

const codes = new TotpCodes(4, 'ad-seed');

t.test('RADIUS logins against a Samba AD DC', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils') || !requirePeer(t, 'samba', 'samba-ad-dc')) return;
  if (!requireSambaAd(t)) return;
  const dir = tempDir('mfa-e2e-ad-');
  t.teardown(() => dir.cleanup());
  const dc = await startSambaAd({ t });
  await dc.seed();
  const dataDir = join(dir.path, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'ad-bind'), `${dc.adminPassword}\n`, { mode: 0o600 });

  const radiusPort = await freePort('udp');
  const directory = (url: string, ca: string, extra = ''): string => `
    flavour: ad
    urls: [${JSON.stringify(url)}]
    ca_file: ${JSON.stringify(ca)}
    bind_dn: ${JSON.stringify(dc.adminUpn)}
    bind_password: {file: ad-bind}
    base_dn: "OU=Staff,${dc.baseDn}"${extra}`;
  const client = (name: string, address: string, policy: string): string => `
  - {name: ${name}, addresses: [${address}], secret: {file: radius-secret, generate: true}, policy: ${policy}}`;
  const gw = await startGateway({
    dir: dir.path,
    t,
    configYaml: `data_dir: ${JSON.stringify(dataDir)}
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${await freePort('udp')}}]
clients:${client('vpn-ldaps', '127.0.0.1', 'ldaps')}${client('vpn-starttls', '127.0.0.2', 'starttls')}${client('vpn-untrusted', '127.0.0.3', 'untrusted')}
policies:
  ldaps: {first_factor: 'ldap:ad'}
  starttls: {first_factor: 'ldap:ad-starttls'}
  untrusted: {first_factor: 'ldap:ad-untrusted'}
directories:
  ad:${directory(dc.ldapsUrl, dc.caFile, `
    sync:
      enabled: false
      items:
        - {name: staff, ou: "OU=Staff,${dc.baseDn}", scope: sub}`)}
  ad-starttls:${directory(dc.ldapUrl, dc.caFile, '\n    start_tls: true')}
  ad-untrusted:${directory(dc.ldapsUrl, dc.untrustedCaFile)}
lockout: {max_failures: 0}
`,
  });
  const secret = gw.secret();

  const synced = await gw.cli(['sync', 'run', '--directory', 'ad']);
  t.equal(synced.code, 0, `sync run: ${synced.stderr}`);
  const list = await gw.cli(['users', 'list']);
  for (const name of ['user1', 'user2', 'disabled1', 'expired1', 'mustchange1', 'locked1']) t.match(list.stdout, name, `${name} synced from AD`);
  for (const user of ['user1', 'user2', 'expired1', 'mustchange1', 'locked1']) {
    await codes.enrol(gw, user);
  }

  const send = async (from: string, packet: PacketSpec) =>
    (await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: [{ 'Packet-Src-IP-Address': from, 'Message-Authenticator': '0x00', ...packet }], retries: 1, timeoutSec: 10 })).replies[0]?.code;
  const pw = dc.userPassword;

  t.equal(await send('127.0.0.1', { 'User-Name': 'user1', 'User-Password': `${pw},${await codes.next('user1')}` }), 'Access-Accept', 'user1 over LDAPS');
  t.equal(await send('127.0.0.1', { 'User-Name': 'user1@example.test', 'User-Password': `${pw},${await codes.next('user1')}` }), 'Access-Accept', 'user1@example.test');
  const { packet } = encodeAccessRequest({
    identifier: 9,
    secret: Buffer.from(secret),
    attributes: [attr.text(AttributeType.UserName, 'EXAMPLE\\user1')],
    password: Buffer.from(`${pw},${await codes.next('user1')}`),
  });
  const raw = await sendUdp('127.0.0.1', radiusPort, packet, 10_000);
  const decoded = raw === undefined ? undefined : decodePacket(raw);
  t.equal(decoded instanceof RadiusDecodeError ? 'malformed' : decoded?.code, Code.AccessAccept, 'EXAMPLE\\user1');
  t.equal(await send('127.0.0.2', { 'User-Name': 'user2', 'User-Password': `${pw},${await codes.next('user2')}` }), 'Access-Accept', 'user2 over StartTLS');
  t.equal(await send('127.0.0.3', { 'User-Name': 'user2', 'User-Password': `${pw},${await codes.next('user2')}` }), 'Access-Reject', 'a certificate the configured CA did not sign');

  t.equal(await send('127.0.0.1', { 'User-Name': 'user1', 'User-Password': `wrong-${pw},${await codes.next('user1')}` }), 'Access-Reject', 'wrong password');
  t.equal(await send('127.0.0.1', { 'User-Name': 'disabled1', 'User-Password': `${pw},123456` }), 'Access-Reject', 'disabled in AD');
  t.equal(await send('127.0.0.1', { 'User-Name': 'expired1', 'User-Password': `${pw},${await codes.next('expired1')}` }), 'Access-Reject', 'expired');
  t.equal(await send('127.0.0.1', { 'User-Name': 'mustchange1', 'User-Password': `${pw},${await codes.next('mustchange1')}` }), 'Access-Reject', 'must change');
  for (let i = 0; i < dc.lockoutThreshold; i++) await send('127.0.0.1', { 'User-Name': 'locked1', 'User-Password': `bad-${i},${await codes.next('locked1')}` });
  t.equal(await send('127.0.0.1', { 'User-Name': 'locked1', 'User-Password': `${pw},${await codes.next('locked1')}` }), 'Access-Reject', 'locked out in AD, even with the right password');

  const view = (await exportedAudit(gw)).map((r) => `${String(r.username)} ${String(r.firstFactor)} ${String(r.result)} ${String(r.reason)}`);
  for (const expected of [
    'user1 ldap:ad accept accepted',
    'user1@example.test ldap:ad accept accepted',
    'EXAMPLE\\user1 ldap:ad accept accepted',
    'user2 ldap:ad-starttls accept accepted',
    'user2 ldap:ad-untrusted reject first_factor_unavailable',
    'user1 ldap:ad reject bad_password',
    'disabled1 null reject account_disabled',
    'expired1 ldap:ad reject account_expired',
    'mustchange1 ldap:ad reject must_change_password',
    'locked1 ldap:ad reject locked_out',
  ]) {
    t.ok(view.includes(expected), expected);
  }
  t.notOk(gw.allLogs().includes(pw) || gw.allLogs().includes(dc.adminPassword), 'no AD password in the logs');
  t.equal(await gw.stop(), 0, 'SIGTERM: exit 0');
});
