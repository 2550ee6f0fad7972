import t from 'tap';
import { randomOctets } from '../../src/crypto/random.js';

void t.test('each draw has the length asked for', async (t) => {
  for (const n of [0, 1, 12, 16, 64, 65, 4096, 10_000]) t.equal(randomOctets(n).length, n, `${n} octets`);
});

void t.test('draws never repeat, across many refills of the block', async (t) => {
  // 16 octets × 20 000 draws spans about 78 refills of the 4 KiB block.
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) seen.add(randomOctets(16).toString('hex'));
  t.equal(seen.size, 20_000, 'no 16-octet draw came out twice');
});

void t.test('a draw is its own copy: later draws and refills leave it unchanged', async (t) => {
  const kept = randomOctets(16);
  const copy = Buffer.from(kept);
  for (let i = 0; i < 1000; i++) randomOctets(16); // several refills of the block
  t.same(kept, copy, 'unchanged after 16 000 more octets');
  const a = randomOctets(16);
  const b = randomOctets(16);
  a.fill(0);
  t.not(b.toString('hex'), '0'.repeat(32), 'writing into one draw does not reach the next');
});

void t.test('the octets look uniform (a block that was never filled would not)', async (t) => {
  // 64 000 octets: each of 256 values expected 250 times; a zeroed or stale block would put them all in one bin.
  const counts = new Array<number>(256).fill(0);
  for (let i = 0; i < 4000; i++) for (const o of randomOctets(16)) counts[o]!++;
  const chiSquare = counts.reduce((sum, c) => sum + (c - 250) ** 2 / 250, 0);
  // 255 degrees of freedom: the 99.99th percentile is about 360.
  t.ok(chiSquare < 360, `chi-square ${chiSquare.toFixed(0)} over 256 values`);
});

void t.test('a length that is not a whole non-negative number is refused', async (t) => {
  for (const n of [-1, 1.5, Number.NaN]) t.throws(() => randomOctets(n), RangeError, String(n));
});
