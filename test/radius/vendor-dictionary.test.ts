import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EXTRA_VENDORS } from '../../src/radius/codec/dictionary/vendors.js';
import { STANDARD_ATTRIBUTES_BY_NAME, VENDORS, VENDOR_ATTRIBUTES_BY_NAME } from '../../src/radius/codec/dictionary/standard.js';
import { attributeDefinition } from '../../src/radius/codec/attributes.js';
import { AttributeType, Code, RadiusDecodeError, RadiusEncodeError, decodePacket, formatAttribute, parseAttribute, readVendorSpecific } from '../../src/radius/codec/index.js';
import { trackChild } from '../peers/process-reaper.js';
import { radclientTarget } from '../peers/radclient.js';
import { binaryOrThrow, requirePeer } from '../peers/require-peer.js';
import { tempDir } from '../peers/temp.js';

// Vendor dictionaries (Fortinet, Palo Alto, Cisco, Cisco ASA, Microsoft) and the VLAN attributes:
// encodings byte for byte, checked three ways: against octets written out by hand from
// RFC 2865 §5.26 / RFC 2868 §3, against the FreeRADIUS dictionaries installed with radclient
// (numbers and types), and against what radclient itself puts on the wire for the same text.

const hex = (s: string): string => s.replace(/\s+/g, '');
/** The attribute as it goes on the wire: type, length, value. */
const wire = (name: string, value: string): string => {
  const a = parseAttribute(name, value);
  return Buffer.concat([Buffer.of(a.type, a.value.length + 2), a.value]).toString('hex');
};

/** Name, value as an admin writes it, the whole attribute in hex. */
const KNOWN: ReadonlyArray<readonly [string, string, string]> = [
  // Vendor-Specific (26), length, vendor id (4 octets), vendor type, vendor length, value.
  ['Fortinet-Group-Name', 'vpn-admins', '1a 12 00003044 01 0c 76706e2d61646d696e73'],
  ['Fortinet-Access-Profile', 'super_admin', '1a 13 00003044 06 0d 73757065725f61646d696e'],
  ['Fortinet-Vdom-Name', 'root', '1a 0c 00003044 03 06 726f6f74'],
  ['Fortinet-Client-IP-Address', '10.8.0.2', '1a 0c 00003044 02 06 0a080002'],
  ['PaloAlto-Admin-Role', 'superuser', '1a 11 00006375 01 0b 7375706572757365 72'],
  ['PaloAlto-Admin-Access-Domain', 'dom1', '1a 0c 00006375 02 06 646f6d31'],
  ['PaloAlto-User-Group', 'gp-users', '1a 10 00006375 05 0a 67702d7573657273'],
  ['Cisco-AVPair', 'shell:priv-lvl=15', '1a 19 00000009 01 13 7368656c6c3a707269762d6c766c3d3135'],
  ['Cisco-Account-Info', 'S10.0.0.1', '1a 11 00000009 fa 0b 5331302e302e302e31'],
  ['ASA-Group-Policy', 'GP-Staff', '1a 10 00000c04 19 0a 47502d5374616666'],
  ['ASA-Privilege-Level', '15', '1a 0c 00000c04 dc 06 0000000f'],
  ['MS-Primary-DNS-Server', '10.0.0.53', '1a 0c 00000137 1c 06 0a000035'],
  // RFC 2868 §3.1 / RFC 3580 §3.31: integers carry a tag octet (0: none) and 3 octets of value.
  ['Tunnel-Type', 'VLAN', '40 06 00 00000d'],
  ['Tunnel-Medium-Type', 'IEEE-802', '41 06 00 000006'],
  ['Tunnel-Type:1', 'VLAN', '40 06 01 00000d'],
  // RFC 2868 §3.6: text starts with a tag octet only when one is given (or the text starts below 0x20).
  ['Tunnel-Private-Group-Id', '42', '51 04 3432'],
  ['Tunnel-Private-Group-Id:1', '42', '51 05 01 3432'],
  ['Filter-Id', 'vpn-staff', '0b 0b 76706e2d7374616666'],
  ['Class', '0x76706e', '19 05 76706e'],
  ['Class', 'OU=GP-Staff;', '19 0e 4f553d47502d53746166663b'],
  ['Framed-IP-Address', '10.8.0.2', '08 06 0a080002'],
  ['Session-Timeout', '28800', '1b 06 00007080'],
];

t.test('encodings byte for byte', async (t) => {
  for (const [name, value, expected] of KNOWN) t.equal(wire(name, value), hex(expected), `${name} = ${value}`);
});

t.test('format(parse(x)) = x, radclient-style', async (t) => {
  for (const [name, value] of KNOWN) {
    const printed = formatAttribute(parseAttribute(name, value));
    const again = parseAttribute(printed.name, printed.value);
    t.same(again, parseAttribute(name, value), `${name} = ${value} prints as ${printed.name} = ${printed.value}`);
  }
  t.same(formatAttribute(parseAttribute('Fortinet-Group-Name', 'vpn-admins')), { name: 'Fortinet-Group-Name', value: '"vpn-admins"' });
  t.same(formatAttribute(parseAttribute('ASA-Privilege-Level', '15')), { name: 'ASA-Privilege-Level', value: '15' });
});

t.test('what parseAttribute refuses for vendor attributes', async (t) => {
  for (const [name, value, why] of [
    ['Fortinet-Group-Nam', 'x', 'unknown name'],
    ['Fortinet-Group-Name:1', 'x', 'a tag on an untagged attribute'],
    ['Fortinet-Group-Name', '', 'an empty value'],
    ['Fortinet-Group-Name', 'x'.repeat(248), 'longer than a Vendor-Specific attribute holds (247)'],
    ['Fortinet-Client-IP-Address', '10.0.0.256', 'not an address'],
    ['ASA-Privilege-Level', 'high', 'not a number'],
    ['MS-MPPE-Send-Key', '0x00', 'a key (sensitive)'],
    ['MS-CHAP2-Response', '0x00', 'a password proof (sensitive)'],
  ] as const) {
    t.throws(() => parseAttribute(name, value), RadiusEncodeError, `${name} = ${JSON.stringify(value.slice(0, 20))}: ${why}`);
  }
  t.equal(parseAttribute('Fortinet-Group-Name', 'x'.repeat(247)).value.length, 253, '247 octets fit');
});

t.test('the dictionary: names unique, vendors named', async (t) => {
  t.same([...VENDORS.keys()].sort((a, b) => a - b), [9, 311, 3076, 12356, 25461]);
  for (const [name, { vendor, attribute }] of VENDOR_ATTRIBUTES_BY_NAME) {
    t.notOk(STANDARD_ATTRIBUTES_BY_NAME.has(name), `${name} is no standard name`);
    t.equal(VENDORS.get(vendor.id)?.attributes.get(attribute.type)?.name, name, `${name} = ${vendor.name} ${attribute.type}`);
  }
});

/** `ATTRIBUTE Name Number type` lines of a FreeRADIUS dictionary file, by name. */
function freeradiusDictionary(file: string): Map<string, { number: number; type: string }> {
  const out = new Map<string, { number: number; type: string }>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^ATTRIBUTE\s+(\S+)\s+(\d+)\s+(\S+)/.exec(line);
    // octets[50]: a fixed length FreeRADIUS checks; the type is octets.
    if (m) out.set(m[1] as string, { number: Number(m[2]), type: (m[3] as string).replace(/\[\d+\]$/, '') });
  }
  return out;
}

const FREERADIUS_FILES: Record<number, string> = { 9: 'dictionary.cisco', 311: 'dictionary.microsoft', 3076: 'dictionary.cisco.asa', 12356: 'dictionary.fortinet', 25461: 'dictionary.paloalto' };
const TYPE_OF: Record<string, string> = { text: 'string', octets: 'octets', integer: 'integer', ipaddr: 'ipaddr', date: 'date' };

t.test('every vendor row matches the FreeRADIUS dictionary installed with radclient', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const dir = '/usr/share/freeradius';
  if (!existsSync(`${dir}/dictionary.fortinet`)) {
    t.fail(`${dir} has no vendor dictionaries (Debian package freeradius-common)`);
    return;
  }
  for (const vendor of [...EXTRA_VENDORS, { id: 311, name: 'Microsoft' }]) {
    const theirs = freeradiusDictionary(`${dir}/${FREERADIUS_FILES[vendor.id] ?? '-'}`);
    const vendorLine = readFileSync(`${dir}/${FREERADIUS_FILES[vendor.id] ?? '-'}`, 'utf8').match(/^VENDOR\s+(\S+)\s+(\d+)/m);
    t.same([vendorLine?.[1], Number(vendorLine?.[2])], [vendor.name, vendor.id], `VENDOR ${vendor.name} ${vendor.id}`);
    for (const def of VENDORS.get(vendor.id)?.attributes.values() ?? []) {
      const entry = theirs.get(def.name);
      t.same(entry, { number: def.type, type: TYPE_OF[def.valueType] ?? def.valueType }, `${def.name} ${def.type} ${def.valueType}`);
    }
  }
});

/**
 * The first packet radclient sends for `lines` (`Name = value`, as in its -f files: tags as
 * `Name:1`, which the radclient() helper does not write), as received on a loopback UDP socket.
 */
async function radclientSends(lines: readonly string[]): Promise<Buffer> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const received = new Promise<Buffer>((resolve) => socket.once('message', (m) => resolve(m)));
  const dir = tempDir('radclient-oracle');
  try {
    writeFileSync(join(dir.path, 'packet'), `User-Name = "oracle"\n${lines.join('\n')}\n`, { mode: 0o600 });
    writeFileSync(join(dir.path, 'secret'), 'oracle-secret-0123\n', { mode: 0o600 });
    const target = radclientTarget('127.0.0.1', socket.address().port);
    const child = spawn(binaryOrThrow('radclient', 'freeradius-utils'), ['-f', join(dir.path, 'packet'), '-S', join(dir.path, 'secret'), '-r', '1', '-t', '1', target, 'auth'], { stdio: 'ignore' });
    trackChild(child, 'radclient', dir.path);
    const exited = new Promise((resolve) => child.once('close', resolve));
    const packet = await received;
    await exited;
    return packet;
  } finally {
    socket.close();
    dir.cleanup();
  }
}

t.test('radclient (FreeRADIUS 3.2) puts the same octets on the wire', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils')) return;
  // One packet with every KNOWN attribute, written the way radclient reads them.
  const lines = KNOWN.map(([name, value]) => {
    const type = attributeDefinition(name)?.valueType;
    const quoted = type === 'text' || (type === 'octets' && !value.startsWith('0x'));
    return `${name} = ${quoted ? JSON.stringify(value) : value}`;
  });
  const packet = decodePacket(await radclientSends(lines));
  if (packet instanceof RadiusDecodeError) {
    t.fail(`radclient's packet does not decode: ${packet.message}`);
    return;
  }
  t.equal(packet.code, Code.AccessRequest);
  const theirs = packet.attributes.filter((a) => a.type !== AttributeType.UserName).map((a) => Buffer.concat([Buffer.of(a.type, a.value.length + 2), a.value]).toString('hex'));
  const ours = KNOWN.map(([name, value]) => wire(name, value));
  t.same(theirs, ours, 'every attribute, octet for octet, in order');
  const vsa = packet.attributes.find((a) => a.type === AttributeType.VendorSpecific);
  t.equal(vsa === undefined ? undefined : readVendorSpecific(vsa.value)?.vendorId, 12356, 'one Vendor-Specific attribute per vendor attribute (RFC 2865 §5.26 layout)');
});
