import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { checkConfig, loadConfig } from '../../src/config/load.js';
import { REPLY_ATTRIBUTES_BUDGET } from '../../src/config/reply-attributes-schema.js';
import { ConfigError } from '../../src/errors.js';
import { formatAttributes } from '../../src/radius/codec/index.js';

// `directories.<name>.reply_attributes`: checked and encoded when the configuration loads, every
// problem named by its key path.

const HEX_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

async function configFile(t: Test, replyAttributes: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mfa-gw-reply-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'data'), { mode: 0o700 });
  await writeFile(join(dir, 'data', 'master.key'), `${HEX_KEY}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'data', 'nas'), 'abcdefghijklmnop0123\n', { mode: 0o600 });
  await writeFile(join(dir, 'data', 'bind'), 'service-password\n', { mode: 0o600 });
  const file = join(dir, 'gateway.yaml');
  await writeFile(
    file,
    `data_dir: data
keys:
  master_key: {file: master.key}
clients:
  - {name: nas, addresses: [127.0.0.1], secret: {file: nas}, policy: vpn}
policies:
  vpn: {first_factor: 'ldap:corp'}
directories:
  corp:
    flavour: ad
    urls: [ldaps://127.0.0.1:636]
    bind_dn: svc@example.test
    bind_password: {file: bind}
    base_dn: DC=example,DC=test
${replyAttributes}`,
  );
  return file;
}

async function issues(t: Test, file: string): Promise<string[]> {
  const lines = await checkConfig(file);
  await t.rejects(loadConfig(file, { generateSecrets: false }), ConfigError, 'loadConfig refuses it too');
  return lines.map((l) => l.replace(/ \(line \d+\)$/, ''));
}

t.test('a valid list is encoded at load, in order, values in their wire form', async (t) => {
  const file = await configFile(
    t,
    `    reply_attributes:
      - group: VPN-Admins
        attributes:
          Fortinet-Group-Name: vpn-admins
          Tunnel-Type: VLAN
          Tunnel-Medium-Type: IEEE-802
          Tunnel-Private-Group-Id: 10
          Cisco-AVPair: ["shell:priv-lvl=15", "ip:inacl#1=permit ip any any"]
          "Tunnel-Type:1": VLAN
      - group: CN=VPN-Users,CN=Users,DC=example,DC=test
        attributes:
          PaloAlto-User-Group: gp-users
          Class: "0x76706e"
          Session-Timeout: 28800
          Framed-IP-Address: 10.8.0.2
          Filter-Id: vpn-staff
          ASA-Group-Policy: GP-Staff
      - group: Quarantine
        attributes: {}
`,
  );
  const { config } = await loadConfig(file, { generateSecrets: false });
  const corp = config.directories.corp;
  const encoded = corp?.encoded_reply_attributes ?? [];
  t.same(
    encoded.map((m) => [m.group, formatAttributes(m.attributes).map((l) => `${l.name} = ${l.value}`)]),
    [
      [
        'VPN-Admins',
        [
          'Fortinet-Group-Name = "vpn-admins"',
          'Tunnel-Type = VLAN',
          'Tunnel-Medium-Type = IEEE-802',
          'Tunnel-Private-Group-Id = "10"',
          'Cisco-AVPair = "shell:priv-lvl=15"',
          'Cisco-AVPair = "ip:inacl#1=permit ip any any"',
          'Tunnel-Type:1 = VLAN',
        ],
      ],
      [
        'CN=VPN-Users,CN=Users,DC=example,DC=test',
        ['PaloAlto-User-Group = "gp-users"', 'Class = 0x76706e', 'Session-Timeout = 28800', 'Framed-IP-Address = 10.8.0.2', 'Filter-Id = "vpn-staff"', 'ASA-Group-Policy = "GP-Staff"'],
      ],
      ['Quarantine', []],
    ],
    'every entry, in the configured order; a list value gives repeated attributes',
  );
  const first = encoded[0]?.attributes[0];
  t.ok(first !== undefined && Buffer.isBuffer(first.value), 'values are Buffers (usable on the hot path as they are)');
  t.equal(first?.value.toString('hex'), '00003044010c76706e2d61646d696e73', 'Fortinet-Group-Name as a Vendor-Specific value');
  t.ok(Object.isFrozen(encoded), 'frozen with the rest of the configuration');
  t.same(await checkConfig(file), [], 'check-config agrees');
});

t.test('without reply_attributes nothing is encoded', async (t) => {
  const { config } = await loadConfig(await configFile(t, ''), { generateSecrets: false });
  t.equal(config.directories.corp?.encoded_reply_attributes, undefined);
});

t.test('every problem is named by its key path, all in one run', async (t) => {
  const file = await configFile(
    t,
    `    reply_attributes:
      - group: VPN-Admins
        attributes:
          Fortinet-Group-Name: vpn-admins
      - group: vpn-admins
        attributes:
          Fortinet-Group-Name: [ok, "", true]
      - group: VPN-Users
        attributes:
          Fortinet-Group-Nme: vpn-users
          Tunnel-Type: VXLAN
          Session-Timeout: soon
          Framed-IP-Address: 10.8.0.300
          Class: 0x41
          State: "0x00"
          Calling-Station-Id: x
          MS-MPPE-Send-Key: "0x00"
          "Filter-Id:1": x
          Cisco-AVPair: []
          Reply-Message: {text: x}
      - group: CN=VPN-Users,CN=Users,DC=example,DC=test
        attributes: {}
      - group: cn=vpn-users, cn=users, dc=EXAMPLE, dc=test
        attributes: {}
`,
  );
  const p = 'directories.corp.reply_attributes';
  t.same(
    (await issues(t, file)).sort(),
    [
      `${p}[1].group: names the same group as reply_attributes[0]; the first matching entry wins, so this one would never apply`,
      // The first bad value of a list is reported (`true` would be the next).
      `${p}[1].attributes.Fortinet-Group-Name[1]: must not be empty`,
      `${p}[2].attributes.Fortinet-Group-Nme: unknown attribute (did you mean 'Fortinet-Group-Name'?)`,
      `${p}[2].attributes.Tunnel-Type: "VXLAN" is not a number or a known value name`,
      `${p}[2].attributes.Session-Timeout: "soon" is not a number or a known value name`,
      `${p}[2].attributes.Framed-IP-Address: "10.8.0.300" is not an IPv4 address`,
      `${p}[2].attributes.Class: write Class as a quoted string ('0x…' or text), not a number`,
      `${p}[2].attributes.State: State is written by the gateway for each request`,
      `${p}[2].attributes.Calling-Station-Id: Calling-Station-Id is sent by the NAS, never in an Access-Accept (RFC 2865 §5.44)`,
      `${p}[2].attributes.MS-MPPE-Send-Key: MS-MPPE-Send-Key cannot be given as text; it is built by the codec`,
      `${p}[2].attributes["Filter-Id:1"]: a tag (1..31) is only allowed on tagged attributes (RFC 2868)`,
      `${p}[2].attributes.Cisco-AVPair: must have at least 1 value`,
      `${p}[2].attributes.Reply-Message: must be a string or a number (or a list of them)`,
      `${p}[4].group: names the same group as reply_attributes[3]; the first matching entry wins, so this one would never apply`,
    ].sort(),
  );
});

t.test('malformed entries', async (t) => {
  const file = await configFile(
    t,
    `    reply_attributes:
      - group: "CN=x,,DC=test"
        attributes: {}
      - group: ""
        attributes: {}
      - group: Nobody
        attributes: {Filter-Id: x}
        extra: 1
      - group: Missing-Attributes
      - group: Typo
        attributes: {Filter-Idd: x}
`,
  );
  const p = 'directories.corp.reply_attributes';
  t.same(
    (await issues(t, file)).sort(),
    [
      `${p}[0].group: is not a valid DN`,
      `${p}[1].group: must not be empty`,
      `${p}[2].extra: unknown key`,
      `${p}[3].attributes: is required`,
      `${p}[4].attributes.Filter-Idd: unknown attribute (did you mean 'Filter-Id'?)`,
    ].sort(),
  );
});

t.test('a list that would not fit in a reply is refused', async (t) => {
  const many = Array.from({ length: 16 }, (_, i) => `"${String(i).padStart(2, '0')}${'x'.repeat(240)}"`).join(', ');
  const file = await configFile(t, `    reply_attributes:\n      - group: Big\n        attributes:\n          Cisco-AVPair: [${many}]\n`);
  t.same(await issues(t, file), [`directories.corp.reply_attributes[0].attributes: ${16 * 250} octets of attributes; at most ${REPLY_ATTRIBUTES_BUDGET} fit in a reply`]);
});

t.test('an empty list is refused (leave the key out instead)', async (t) => {
  const file = await configFile(t, '    reply_attributes: []\n');
  t.same(await issues(t, file), ['directories.corp.reply_attributes: must have at least 1 entry']);
});
