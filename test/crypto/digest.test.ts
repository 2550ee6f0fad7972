import { createHash, createHmac, randomBytes } from 'node:crypto';
import t from 'tap';
import { digest, hmac, type DigestAlgorithm } from '../../src/crypto/digest.js';

const fill = (octet: number, n: number): Buffer => Buffer.alloc(n, octet);
const seq25 = Buffer.from(Array.from({ length: 25 }, (_, i) => i + 1));
const text = (s: string): Buffer => Buffer.from(s, 'ascii');

// RFC 2202 §2 (HMAC-MD5) and §3 (HMAC-SHA-1), RFC 4231 §4 (HMAC-SHA-256 and -512; case 5 is truncated, left out).
const vectors: Array<[DigestAlgorithm, Buffer, Buffer, string]> = [
  ['md5', fill(0x0b, 16), text('Hi There'), '9294727a3638bb1c13f48ef8158bfc9d'],
  ['md5', text('Jefe'), text('what do ya want for nothing?'), '750c783e6ab0b503eaa86e310a5db738'],
  ['md5', fill(0xaa, 16), fill(0xdd, 50), '56be34521d144c88dbb8c733f0e8b3f6'],
  ['md5', seq25, fill(0xcd, 50), '697eaf0aca3a3aea3a75164746ffaa79'],
  ['md5', fill(0x0c, 16), text('Test With Truncation'), '56461ef2342edc00f9bab995690efd4c'],
  ['md5', fill(0xaa, 80), text('Test Using Larger Than Block-Size Key - Hash Key First'), '6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd'],
  ['md5', fill(0xaa, 80), text('Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data'), '6f630fad67cda0ee1fb1f562db3aa53e'],
  ['sha1', fill(0x0b, 20), text('Hi There'), 'b617318655057264e28bc0b6fb378c8ef146be00'],
  ['sha1', text('Jefe'), text('what do ya want for nothing?'), 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79'],
  ['sha1', fill(0xaa, 20), fill(0xdd, 50), '125d7342b9ac11cd91a39af48aa17b4f63f175d3'],
  ['sha1', seq25, fill(0xcd, 50), '4c9007f4026250c6bc8414f9bf50c86c2d7235da'],
  ['sha1', fill(0x0c, 20), text('Test With Truncation'), '4c1a03424b55e07fe7f27be1d58bb9324a9a5a04'],
  ['sha1', fill(0xaa, 80), text('Test Using Larger Than Block-Size Key - Hash Key First'), 'aa4ae5e15272d00e95705637ce8a3b55ed402112'],
  ['sha1', fill(0xaa, 80), text('Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data'), 'e8e99d0f45237d786d6bbaa7965c7808bbff1a91'],
  ['sha256', fill(0x0b, 20), text('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
  ['sha256', text('Jefe'), text('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  ['sha256', fill(0xaa, 20), fill(0xdd, 50), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
  ['sha256', seq25, fill(0xcd, 50), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
  ['sha256', fill(0xaa, 131), text('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  [
    'sha256',
    fill(0xaa, 131),
    text('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
    '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  ],
  ['sha512', fill(0x0b, 20), text('Hi There'), '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854'],
  ['sha512', text('Jefe'), text('what do ya want for nothing?'), '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737'],
  ['sha512', fill(0xaa, 20), fill(0xdd, 50), 'fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb'],
  ['sha512', seq25, fill(0xcd, 50), 'b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd'],
  ['sha512', fill(0xaa, 131), text('Test Using Larger Than Block-Size Key - Hash Key First'), '80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598'],
  [
    'sha512',
    fill(0xaa, 131),
    text('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
    'e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58',
  ],
];

t.test('HMAC: the RFC 2202 and RFC 4231 test cases', async (t) => {
  for (const [algorithm, key, data, expected] of vectors) {
    t.equal(hmac(algorithm, key, [data]).toString('hex'), expected, `${algorithm}, ${key.length}-octet key, ${data.length}-octet data`);
    // The same message split into parts gives the same MAC.
    const cut = Math.floor(data.length / 3);
    t.equal(hmac(algorithm, key, [data.subarray(0, cut), Buffer.alloc(0), data.subarray(cut)]).toString('hex'), expected);
  }
});

t.test('HMAC and digests agree with createHmac/createHash on random keys and messages', async (t) => {
  let checked = 0;
  for (const algorithm of ['md5', 'sha1', 'sha256', 'sha512'] as const) {
    // Key lengths around the 64- and 128-octet blocks (0, shorter, equal, one more, much longer)
    // and messages from empty to beyond Node's 4 KiB pool slices.
    for (const keyLength of [0, 1, 16, 63, 64, 65, 127, 128, 129, 200]) {
      for (const size of [0, 1, 20, 55, 64, 100, 4095, 4096, 5000]) {
        const key = randomBytes(keyLength);
        const message = randomBytes(size);
        const parts = [message.subarray(0, size >> 2), message.subarray(size >> 2)];
        const mac = hmac(algorithm, key, parts);
        const expected = createHmac(algorithm, key).update(message).digest();
        if (!mac.equals(expected)) t.fail(`${algorithm} HMAC, key ${keyLength}, message ${size}`);
        if (!digest(algorithm, parts).equals(createHash(algorithm).update(message).digest())) t.fail(`${algorithm} digest, ${size}`);
        if (!digest(algorithm, [message]).equals(createHash(algorithm).update(message).digest())) t.fail(`${algorithm} digest of one part, ${size}`);
        checked++;
      }
    }
  }
  t.equal(checked, 4 * 10 * 9, 'every combination compared');
});

t.test('HMAC leaves its key and input untouched', async (t) => {
  const key = randomBytes(100);
  const keyCopy = Buffer.from(key);
  const part = randomBytes(30);
  const partCopy = Buffer.from(part);
  const first = hmac('sha256', key, [part]);
  t.same(key, keyCopy, 'a long key is hashed into a new buffer, not in place');
  t.same(part, partCopy);
  t.same(hmac('sha256', key, [part]), first, 'same key, same message, same MAC');
  t.notSame(hmac('sha256', key, [randomBytes(30)]), first);
});
