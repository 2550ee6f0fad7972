import t from 'tap';
import type { ResolvedClient } from '../../src/config/config.js';
import { ClientTable, canonicalAddress } from '../../src/radius/clients.js';

function client(name: string, addresses: string[]): ResolvedClient {
  return { name, addresses, secret: Buffer.from('x'.repeat(16)), policy: 'default', require_message_authenticator: true, inline_delimiter: ',', challenge: true, approval_timeout_seconds: 60 };
}

t.test('most specific block wins, unknown sources match nothing', async (t) => {
  const table = new ClientTable([
    client('site', ['127.16.0.0/16']),
    client('vpn1', ['127.16.4.20']),
    client('lab', ['127.16.4.0/24']),
    client('v6', ['fd00::/8', '::1']),
    client('mapped', ['::ffff:127.99.0.1']),
  ]);
  t.equal(table.match('127.16.4.20')?.name, 'vpn1');
  t.equal(table.match('127.16.4.21')?.name, 'lab');
  t.equal(table.match('127.16.9.1')?.name, 'site');
  t.equal(table.match('127.17.0.1'), undefined);
  t.equal(table.match('::ffff:127.16.4.20')?.name, 'vpn1', 'IPv4-mapped source matches the IPv4 client');
  t.equal(table.match('::1')?.name, 'v6');
  t.equal(table.match('fd12:3456::1')?.name, 'v6');
  t.equal(table.match('fe80::1'), undefined);
  t.equal(table.match('127.99.0.1')?.name, 'mapped');
  t.equal(table.match('not an address'), undefined);
});

t.test('a /0 block matches everything of its family only', async (t) => {
  const table = new ClientTable([client('any4', ['0.0.0.0/0'])]);
  t.equal(table.match('127.0.0.1')?.name, 'any4');
  t.equal(table.match('::1'), undefined);
});

t.test('canonical addresses', async (t) => {
  t.equal(canonicalAddress('::FFFF:127.0.0.1'), '127.0.0.1');
  t.equal(canonicalAddress('::1'), '::1');
});
