import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { DataKeys } from '../../src/crypto/keys.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import type { OathAlgorithm } from '../../src/store/types.js';
import { checkOathCode, claimOathMatch, enrolOathToken, matchOathCode } from '../../src/verify/oath.js';

// RFC 6238 Appendix B: 8-digit codes, 30 s steps, the seed of each algorithm as ASCII digits.
const base32 = (ascii: string): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of Buffer.from(ascii, 'ascii')) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
};
const SEEDS: Record<OathAlgorithm, string> = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
};
const VECTORS: Array<[number, Record<OathAlgorithm, string>]> = [
  [59, { SHA1: '94287082', SHA256: '46119246', SHA512: '90693936' }],
  [1111111109, { SHA1: '07081804', SHA256: '68084774', SHA512: '25091201' }],
  [1111111111, { SHA1: '14050471', SHA256: '67062674', SHA512: '99943326' }],
  [1234567890, { SHA1: '89005924', SHA256: '91819424', SHA512: '93441116' }],
  [2000000000, { SHA1: '69279037', SHA256: '90698825', SHA512: '38618901' }],
  [20000000000, { SHA1: '65353130', SHA256: '77737706', SHA512: '47863826' }],
];

/** A store in a temp dir, removed after the test, and the data keys its tokens are sealed with. */
async function throwawayStore(t: Test): Promise<{ store: Store; keys: DataKeys }> {
  const dir = mkdtempSync(join(tmpdir(), 'mfa-oath-'));
  const store = await openSqliteStore({ path: join(dir, 'gateway.db') });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { store, keys: new DataKeys(Buffer.alloc(32, 7)) };
}

t.test('TOTP codes of RFC 6238 Appendix B are accepted once, for SHA-1, SHA-256 and SHA-512', async (t) => {
  const { store, keys } = await throwawayStore(t);
  const settings = { totpWindow: 1, hotpLookAhead: 0 };
  for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
    const user = await store.createUser({ username: `rfc6238-${algorithm}` });
    await enrolOathToken(store, keys, user, { issuer: 'test', secretBase32: base32(SEEDS[algorithm]), algorithm, digits: 8, period: 30 });
    const tokens = await store.listTokens(user.id);
    for (const [seconds, codes] of VECTORS) {
      const now = seconds * 1000;
      t.match(await checkOathCode(store, keys, tokens, codes[algorithm], now, settings), { ok: true, method: 'totp' }, `${algorithm} at ${seconds}`);
      t.match(await checkOathCode(store, keys, tokens, codes[algorithm], now, settings), { ok: false, reason: 'code_replayed' }, `${algorithm} at ${seconds}, again`);
    }
    // The SHA-1 code at T = 59 is not the code of the other algorithms at that time.
    if (algorithm !== 'SHA1') t.match(await checkOathCode(store, keys, tokens, VECTORS[0]![1].SHA1, 59_000, settings), { ok: false, reason: 'bad_code' });
  }
});

t.test('matchOathCode: the exhaustive comparison finds the same step as the early-exit scan, at every offset in and beyond the window', async (t) => {
  const { store, keys } = await throwawayStore(t);
  const user = await store.createUser({ username: 'window' });
  await enrolOathToken(store, keys, user, { issuer: 'test', secretBase32: base32(SEEDS.SHA1), digits: 8, period: 30 });
  const tokens = await store.listTokens(user.id);
  const settings = { totpWindow: 2, hotpLookAhead: 0 };
  // VECTORS[3]: T = 1234567890, step 41152263. The same code, looked at from steps around it.
  const [seconds, codes] = VECTORS[3]!;
  const step = Math.floor(seconds / 30);
  for (let offset = -3; offset <= 3; offset++) {
    const now = (step + offset) * 30_000 + 5_000;
    const expected = Math.abs(offset) <= 2 ? [step] : [];
    for (const exhaustive of [false, true]) {
      const found = matchOathCode(keys, tokens, codes.SHA1, now, settings, exhaustive).map((m) => m.at);
      t.same(found, expected, `seen from step ${offset >= 0 ? '+' : ''}${offset}, ${exhaustive ? 'exhaustive' : 'early exit'}`);
    }
  }
  t.same(matchOathCode(keys, tokens, '00000000', seconds * 1000, settings, true), [], 'a wrong code matches nothing');
  t.same(matchOathCode(keys, tokens, codes.SHA1.slice(2), seconds * 1000, settings, true), [], 'a code of another length matches nothing');
  // Nothing was claimed: the code is still good once.
  t.match(await claimOathMatch(store, matchOathCode(keys, tokens, codes.SHA1, seconds * 1000, settings, true), seconds * 1000), { ok: true, method: 'totp' });
  t.match(await claimOathMatch(store, matchOathCode(keys, tokens, codes.SHA1, seconds * 1000, settings, true), seconds * 1000), { ok: false, reason: 'code_replayed' });
});
