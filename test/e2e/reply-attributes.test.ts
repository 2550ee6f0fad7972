import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Secret, TOTP } from 'otpauth';
import t from 'tap';
import { startGateway, type RunningGateway } from '../peers/gateway.js';
import { freePort } from '../peers/ports.js';
import { radclient, type PacketSpec, type RadclientReply } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { startSlapd } from '../peers/slapd.js';
import { tempDir } from '../peers/temp.js';

/**
 * End to end: reply attributes by directory group. The gateway process with first factor
 * `ldap:` against a real slapd (VPN-Users = user1, user2, user3 and the nested group VPN-Admins
 * = user4; user5 in no group), radclient as the NAS decoding what it receives by name with
 * FreeRADIUS's own dictionaries. Two NAS clients on two loopback addresses, two directories over
 * the same slapd: `corp` maps VPN-Admins before VPN-Users, `corp-users` only VPN-Users.
 */

const USERS = ['user1', 'user4', 'user5'];
const TOKENS_PER_USER = 4;
const seedOf = (user: string, i: number): string => Secret.fromUTF8(`${user}-reply-seed-${i}-0123456789`).base32;
const used = new Set<string>();

/** A code of one of the user's tokens not used yet in this 30 s step (waits for the next step when all are). */
async function code(user: string): Promise<string> {
  for (;;) {
    const now = Date.now();
    const step = Math.floor(now / 30_000);
    if (30_000 - (now % 30_000) > 4_000) {
      for (let i = 0; i < TOKENS_PER_USER; i++) {
        const key = `${user}/${i}/${step}`;
        if (used.has(key)) continue;
        used.add(key);
        return new TOTP({ secret: Secret.fromBase32(seedOf(user, i)) }).generate({ timestamp: now });
      }
    }
    await sleep(30_000 - (now % 30_000) + 100);
  }
}

/** What the NAS must not get for a user in no mapped group (nor on a challenge or reject). */
const MAPPED = ['Fortinet-Group-Name', 'Tunnel-Type', 'Tunnel-Medium-Type', 'Tunnel-Private-Group-Id', 'PaloAlto-User-Group', 'Cisco-AVPair', 'ASA-Group-Policy', 'Class', 'Filter-Id', 'Session-Timeout'];

/**
 * The reply's mapped attributes by name. radclient prints a received tagged attribute whose tag
 * octet is 0 or absent as `Name:0` (FreeRADIUS's "no tag"): `Tunnel-Private-Group-Id:0 = "42"`
 * is the text 42 with no tag, which is what was sent. Other tags would keep their suffix.
 */
function mapped(reply: RadclientReply | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(reply?.attributes ?? {})) {
    const bare = name.replace(/:0$/, '');
    if (MAPPED.includes(bare)) out[bare] = values;
  }
  return out;
}

function mappedIn(reply: RadclientReply | undefined): string[] {
  return Object.keys(mapped(reply));
}

async function audit(gw: RunningGateway): Promise<Array<Record<string, unknown>>> {
  const out = await gw.cli(['audit', 'export', '--format', 'json']);
  if (out.code !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout) as Array<Record<string, unknown>>;
}

t.test('reply attributes from directory groups reach the NAS', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils') || !requirePeer(t, 'slapd', 'slapd')) return;
  const dir = tempDir('mfa-e2e-reply-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');
  const slapd = await startSlapd({ t });

  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');
  const directory = (replyAttributes: string): string => `
    flavour: ldap
    urls: [${JSON.stringify(slapd.ldapsUrl)}]
    ca_file: ${JSON.stringify(slapd.caFile)}
    bind_dn: ${JSON.stringify(slapd.adminDn)}
    bind_password: {file: corp-bind}
    base_dn: ${JSON.stringify(slapd.baseDn)}
    timeout_ms: 3000
    reply_attributes:${replyAttributes}`;
  const configYaml = `data_dir: ${JSON.stringify(dataDir)}
keys:
  master_key: {file: master.key, generate: true}
log:
  level: info
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${acctPort}}]
clients:
  - {name: nas-corp, addresses: [127.0.0.1], secret: {file: radius-secret, generate: true}, policy: corp}
  - {name: nas-users, addresses: [127.0.0.2], secret: {file: radius-secret, generate: true}, policy: users}
policies:
  corp: {first_factor: 'ldap:corp'}
  users: {first_factor: 'ldap:corp-users'}
directories:
  corp:${directory(`
      - group: VPN-Admins
        attributes:
          Fortinet-Group-Name: vpn-admins
          Tunnel-Type: VLAN
          Tunnel-Medium-Type: IEEE-802
          Tunnel-Private-Group-Id: 10
          PaloAlto-User-Group: gp-admins
          Cisco-AVPair: ["shell:priv-lvl=15", "ip:inacl#1=permit ip any any"]
          Session-Timeout: 28800
      - group: ${JSON.stringify(slapd.groupDn('VPN-Users'))}
        attributes:
          Fortinet-Group-Name: vpn-users
          Tunnel-Type: VLAN
          Tunnel-Medium-Type: IEEE-802
          Tunnel-Private-Group-Id: 42
          PaloAlto-User-Group: gp-users
          ASA-Group-Policy: GP-Staff
          Class: "0x76706e2d7573657273"
          Filter-Id: vpn-staff`)}
  corp-users:${directory(`
      - group: vpn-users
        attributes:
          Fortinet-Group-Name: vpn-users
          Tunnel-Private-Group-Id: 42`)}
lockout:
  max_failures: 0
`;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'corp-bind'), `${slapd.adminPassword}\n`, { mode: 0o600 });
  const gw = await startGateway({ dir: dir.path, configYaml, t });
  const secret = gw.secret();

  for (const user of USERS) {
    const add = await gw.cli(['users', 'add', user, '--no-password']);
    t.equal(add.code, 0, `users add ${user}: ${add.stderr}`);
    for (let i = 0; i < TOKENS_PER_USER; i++) {
      const token = await gw.cli(['tokens', 'add-totp', user, '--secret', seedOf(user, i), '--label', `token-${i}`, '--no-qr']);
      t.equal(token.code, 0, `tokens add-totp ${user} #${i}: ${token.stderr}`);
    }
  }

  const send = async (from: string, packet: PacketSpec): Promise<RadclientReply | undefined> => {
    const r = await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: [{ 'Packet-Src-IP-Address': from, 'Message-Authenticator': '0x00', ...packet }], retries: 1, timeoutSec: 8 });
    return r.replies[0];
  };
  const password = (user: string): string => `Passw0rd-${user.slice(-1)}`;

  const vpnUsers = {
    'Fortinet-Group-Name': ['vpn-users'],
    'Tunnel-Type': ['VLAN'],
    'Tunnel-Medium-Type': ['IEEE-802'],
    'Tunnel-Private-Group-Id': ['42'],
    'PaloAlto-User-Group': ['gp-users'],
    'ASA-Group-Policy': ['GP-Staff'],
    Class: ['0x76706e2d7573657273'],
    'Filter-Id': ['vpn-staff'],
  };
  const vpnAdmins = {
    'Fortinet-Group-Name': ['vpn-admins'],
    'Tunnel-Type': ['VLAN'],
    'Tunnel-Medium-Type': ['IEEE-802'],
    'Tunnel-Private-Group-Id': ['10'],
    'PaloAlto-User-Group': ['gp-admins'],
    'Cisco-AVPair': ['shell:priv-lvl=15', 'ip:inacl#1=permit ip any any'],
    'Session-Timeout': ['28800'],
  };

  await t.test('direct member (inline code): the VPN-Users entry, as radclient decodes it', async (t) => {
    const r = await send('127.0.0.1', { 'User-Name': 'user1', 'User-Password': `${password('user1')},${await code('user1')}` });
    t.equal(r?.code, 'Access-Accept');
    t.same(mapped(r), vpnUsers, 'all of it, and nothing of the VPN-Admins entry');
    t.same(r?.attributes['Tunnel-Private-Group-Id:0'], ['42'], 'radclient: Tunnel-Private-Group-Id:0 = "42" (no tag)');
  });

  await t.test("user4 is in VPN-Admins and (nested) VPN-Users: the earlier VPN-Admins entry wins, across the gateway's challenge", async (t) => {
    const asked = await send('127.0.0.1', { 'User-Name': 'user4', 'User-Password': password('user4') });
    t.equal(asked?.code, 'Access-Challenge');
    t.same(mappedIn(asked), [], 'nothing on the challenge');
    const done = await send('127.0.0.1', { 'User-Name': 'user4', 'User-Password': await code('user4'), State: asked?.attributes.State?.[0] ?? '' });
    t.equal(done?.code, 'Access-Accept');
    t.same(mapped(done), vpnAdmins, 'all of it, and nothing of the VPN-Users entry');
  });

  await t.test('nested member: user4 gets the VPN-Users entry where that is the only one', async (t) => {
    const r = await send('127.0.0.2', { 'User-Name': 'user4', 'User-Password': `${password('user4')},${await code('user4')}` });
    t.equal(r?.code, 'Access-Accept');
    t.same(mapped(r), { 'Fortinet-Group-Name': ['vpn-users'], 'Tunnel-Private-Group-Id': ['42'] }, 'through VPN-Admins ∈ VPN-Users');
  });

  await t.test('a user in no mapped group is accepted with none of them; a reject carries none', async (t) => {
    for (const from of ['127.0.0.1', '127.0.0.2']) {
      const r = await send(from, { 'User-Name': 'user5', 'User-Password': `${password('user5')},${await code('user5')}` });
      t.equal(r?.code, 'Access-Accept', `from ${from}`);
      t.same(mappedIn(r), [], 'no group attributes');
    }
    const wrong = await send('127.0.0.1', { 'User-Name': 'user1', 'User-Password': `wrong,${await code('user1')}` });
    t.equal(wrong?.code, 'Access-Reject');
    t.same(mappedIn(wrong), [], 'nothing on a reject');
  });

  await t.test('audited, and nothing secret in the logs', async (t) => {
    const view = (await audit(gw)).map((r) => `${String(r.username)} ${String(r.firstFactor)} ${String(r.result)} ${String(r.reason)}`);
    t.ok(view.includes('user1 ldap:corp accept accepted'));
    t.ok(view.includes('user4 ldap:corp accept accepted'));
    t.ok(view.includes('user4 ldap:corp-users accept accepted'));
    t.ok(view.includes('user5 ldap:corp-users accept accepted'));
    t.notOk(gw.allLogs().includes('Passw0rd-') || gw.allLogs().includes(slapd.adminPassword), 'no password in the logs');
  });

  t.equal(await gw.stop(), 0, 'SIGTERM: exit 0');
  await slapd.stop();
});
