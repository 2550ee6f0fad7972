import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { MAX_MPPE_KEY_LENGTH, RadiusEncodeError, attr, decryptMppeKey, encryptMppeKey, newMppeSalts } from '../../src/radius/codec/index.js';

// RFC 2548 §2.4.2/§2.4.3 MS-MPPE-Send-Key / -Recv-Key hiding. FreeRADIUS's side of it (what it
// encrypts, and how radclient decrypts what the gateway encrypts) is checked end to end in
// test/radius/mschapv2.test.ts and test/e2e/mschapv2.test.ts.

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// A published vector: OpenBSD libradius's regression test 25 (regress/lib/libradius/test25.c),
// shared secret "hogehogefugafuga", salt 0x8036.
const VECTOR = {
  secret: Buffer.from('hogehogefugafuga'),
  authenticator: hex('678ae6ed696e1bd10ae2fea105d46a56'),
  value: hex('8036 f4abbe2117fb3e4a7874dce91c5b0449 8ec7720f168688562dbc88e21cab6271'),
  key: hex('fc6ea418373d8e90c136fae3735e37d1'),
};

const SECRET = Buffer.from('nas-secret-0123456789');

t.test('a published vector: decrypts to its key, and the same salt encrypts to the same octets', async (t) => {
  t.same(decryptMppeKey(VECTOR.value, VECTOR.secret, VECTOR.authenticator), VECTOR.key);
  t.same(encryptMppeKey(VECTOR.key, VECTOR.secret, VECTOR.authenticator, VECTOR.value.subarray(0, 2)), VECTOR.value);
});

t.test('round trip for every key length, with random secrets and authenticators', async (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: MAX_MPPE_KEY_LENGTH }),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (key, secret, authenticator) => {
        const [salt] = newMppeSalts(1);
        const value = encryptMppeKey(Buffer.from(key), Buffer.from(secret), Buffer.from(authenticator), salt as Buffer);
        // Salt + Key-Length octet + key, padded to whole 16-octet blocks.
        if (value.length !== 2 + Math.ceil((1 + key.length) / 16) * 16) return false;
        if (!value.subarray(0, 2).equals(salt as Buffer)) return false;
        return decryptMppeKey(value, Buffer.from(secret), Buffer.from(authenticator))?.equals(Buffer.from(key)) === true;
      },
    ),
    { seed: 0x2548, numRuns: 500 },
  );
  // The longest key still fits a Vendor-Specific sub-attribute.
  const longest = encryptMppeKey(randomBytes(MAX_MPPE_KEY_LENGTH), SECRET, randomBytes(16), newMppeSalts(1)[0] as Buffer);
  t.equal(MAX_MPPE_KEY_LENGTH, 239);
  t.equal(longest.length, 242);
  t.doesNotThrow(() => attr.vendorSpecific(311, 16, longest));
});

t.test('bound to the secret and the Request Authenticator: neither can be swapped', async (t) => {
  const key = randomBytes(16);
  const authenticator = randomBytes(16);
  const value = encryptMppeKey(key, SECRET, authenticator, newMppeSalts(1)[0] as Buffer);
  t.notOk(decryptMppeKey(value, Buffer.from('another-secret-0123456'), authenticator)?.equals(key), 'another secret');
  t.notOk(decryptMppeKey(value, SECRET, randomBytes(16))?.equals(key), 'another authenticator');
  const otherSalt = Buffer.from(value);
  otherSalt[1] = (otherSalt[1] as number) ^ 1;
  t.notOk(decryptMppeKey(otherSalt, SECRET, authenticator)?.equals(key), 'the salt is keyed in too');
  const [a, b] = newMppeSalts(2) as [Buffer, Buffer];
  t.notSame(encryptMppeKey(key, SECRET, authenticator, a), encryptMppeKey(key, SECRET, authenticator, b), 'another salt, other octets');
});

t.test('values that cannot be an encrypted key', async (t) => {
  const authenticator = randomBytes(16);
  for (const [what, value] of [
    ['empty', Buffer.alloc(0)],
    ['salt only', Buffer.from([0x80, 1])],
    ['salt and 15 octets', Buffer.alloc(17, 0x80)],
    ['salt and 17 octets', Buffer.alloc(19, 0x80)],
  ] as const) {
    t.equal(decryptMppeKey(value, SECRET, authenticator), undefined, what);
  }
  // A Key-Length of 0 or longer than the block holds: what a wrong secret usually produces.
  const lengthOctet = (n: number): Buffer => {
    const salt = Buffer.from([0x81, 0x02]);
    const value = encryptMppeKey(Buffer.alloc(15, 7), SECRET, authenticator, salt);
    // Flip the encrypted Key-Length octet so that it decrypts to n.
    value[2] = (value[2] as number) ^ 15 ^ n;
    return value;
  };
  t.equal(decryptMppeKey(lengthOctet(0), SECRET, authenticator), undefined, 'Key-Length 0');
  t.equal(decryptMppeKey(lengthOctet(16), SECRET, authenticator), undefined, 'Key-Length past the end');
  t.same(decryptMppeKey(lengthOctet(15), SECRET, authenticator), Buffer.alloc(15, 7), 'Key-Length 15 of 15');
  t.equal(decryptMppeKey(VECTOR.value, Buffer.alloc(0), VECTOR.authenticator), undefined, 'empty secret');
  t.equal(decryptMppeKey(VECTOR.value, VECTOR.secret, Buffer.alloc(15)), undefined, 'short authenticator');
});

t.test('encryptMppeKey refuses what would not be a valid attribute', async (t) => {
  const authenticator = randomBytes(16);
  const salt = Buffer.from([0x80, 0x01]);
  t.throws(() => encryptMppeKey(Buffer.alloc(0), SECRET, authenticator, salt), RadiusEncodeError, 'empty key');
  t.throws(() => encryptMppeKey(Buffer.alloc(MAX_MPPE_KEY_LENGTH + 1), SECRET, authenticator, salt), RadiusEncodeError, 'key too long');
  t.throws(() => encryptMppeKey(Buffer.alloc(16), Buffer.alloc(0), authenticator, salt), RadiusEncodeError, 'empty secret');
  t.throws(() => encryptMppeKey(Buffer.alloc(16), SECRET, Buffer.alloc(15), salt), RadiusEncodeError, 'short authenticator');
  t.throws(() => encryptMppeKey(Buffer.alloc(16), SECRET, authenticator, Buffer.from([0x7f, 0xff])), RadiusEncodeError, 'salt without the high bit');
  t.throws(() => encryptMppeKey(Buffer.alloc(16), SECRET, authenticator, Buffer.from([0x80])), RadiusEncodeError, 'one-octet salt');
});

t.test('salts: the high bit set, unique within a packet, random across packets', async (t) => {
  const many = newMppeSalts(2000);
  t.equal(many.length, 2000);
  t.ok(
    many.every((s) => s.length === 2 && ((s[0] as number) & 0x80) !== 0),
    'two octets, most significant bit set',
  );
  t.equal(new Set(many.map((s) => s.toString('hex'))).size, 2000, 'no two alike');
  const pairs = Array.from({ length: 50 }, () => newMppeSalts(2).map((s) => s.toString('hex')).join());
  t.ok(new Set(pairs).size > 45, 'new salts for every reply');
  t.same(newMppeSalts(0), []);
});
