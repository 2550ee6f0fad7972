import t from 'tap';
import { keyHash, UserNameIndex } from '../../src/store/user-name-index.js';

void t.test('finds what was added, forgets what was removed', async (t) => {
  const index = new UserNameIndex();
  index.add('alice', 1);
  index.add('alice@corp.example', 1);
  index.add('bob', 2);
  index.add('bob', 2);
  t.equal(index.size, 3, 'the same key and row once');
  t.same(index.candidates('alice'), [1]);
  t.same(index.candidates('alice@corp.example'), [1]);
  t.same(index.candidates('carol'), []);
  index.add('bob', 7);
  t.same(index.candidates('bob').sort(), [2, 7], 'a key held by two rows (one stale) gives both to check');
  index.remove('bob', 2);
  t.same(index.candidates('bob'), [7]);
  index.remove('bob', 2);
  t.equal(index.size, 3);
  t.same(index.candidates('alice'), [1], 'a removed neighbour does not cut the probe chain');
});

void t.test('rows outside 1..2^32-2 are not indexed (the store is asked instead)', async (t) => {
  const index = new UserNameIndex();
  for (const row of [0, -1, 2 ** 32 - 1, 2 ** 40, 1.5, Number.NaN]) index.add('x', row);
  t.equal(index.size, 0);
  t.same(index.candidates('x'), []);
});

void t.test('grows, and reuses removed slots, without losing an entry', async (t) => {
  const index = new UserNameIndex();
  const start = index.bytes;
  const n = 200_000;
  for (let i = 1; i <= n; i++) index.add(`user${i}`, i);
  t.ok(index.bytes > start, `grew from ${start} to ${index.bytes} bytes`);
  t.ok(index.bytes / n <= 8 / 0.375, `${(index.bytes / n).toFixed(1)} bytes per key`);
  let missing = 0;
  for (let i = 1; i <= n; i++) if (!index.candidates(`user${i}`).includes(i)) missing++;
  t.equal(missing, 0, 'every key found after growing');
  // Churn: remove and add many times as many as the table holds; it must not fill up with tombstones.
  const bytes = index.bytes;
  for (let round = 0; round < 5; round++) {
    for (let i = 1; i <= n; i++) index.remove(`user${i}`, i);
    for (let i = 1; i <= n; i++) index.add(`user${i}`, i);
  }
  t.equal(index.size, n);
  t.equal(index.bytes, bytes, 'same size after churn');
  for (let i = 1; i <= n; i += 997) t.same(index.candidates(`user${i}`), [i]);
});

void t.test('the hash spreads similar names', async (t) => {
  const seen = new Set<number>();
  for (let i = 0; i < 100_000; i++) seen.add(keyHash(`u${String(i).padStart(7, '0')}`) & 0xffff);
  // Uniform hashing fills 65 536 × (1 − e^(−100 000/65 536)) ≈ 51 290 of them.
  t.ok(seen.size > 50_500, `${seen.size} of 65 536 low-16-bit buckets used by 100 000 names`);
  t.not(keyHash(''), 0);
});
