import { randomBytes } from 'node:crypto';
import t from 'tap';
import { newNonce, openState, sealState, MAX_STATE_LENGTH } from '../../src/auth/sealed-state.js';
import { DataKeys } from '../../src/crypto/keys.js';
import { DEFAULT_COST, hashPassword, verifyPassword } from '../../src/crypto/password-hash.js';
import { seal, unseal } from '../../src/crypto/seal.js';
import { SealError } from '../../src/errors.js';

const fast = { log2N: 10, r: 8, p: 1 };

t.test('scrypt hashes: verify, refuse wrong, malformed never throws', async (t) => {
  const hash = await hashPassword('correct horse', fast);
  t.match(hash, /^scrypt\$10\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  t.ok(await verifyPassword('correct horse', hash));
  t.notOk(await verifyPassword('correct horsE', hash));
  t.notOk(await verifyPassword('', hash));
  t.not(await hashPassword('correct horse', fast), hash, 'salted: two hashes of one password differ');
  for (const bad of ['', 'scrypt', 'scrypt$99$8$1$AAAA$AAAA', 'bcrypt$10$8$1$c2FsdHNhbHQ=$AAAA', hash.slice(0, -4), hash.replace('$8$', '$x$')]) {
    t.notOk(await verifyPassword('correct horse', bad), `malformed: ${bad.slice(0, 20)}`);
  }
  t.equal(DEFAULT_COST.log2N, 15, 'default cost stays at N=2^15');
  t.ok(await verifyPassword('ünïcode', await hashPassword('u\u0308nïcode'.normalize('NFD'), fast)), 'NFC-normalised');
});

t.test('seal binds key and context', async (t) => {
  const keys = new DataKeys(randomBytes(32));
  const other = new DataKeys(randomBytes(32));
  const sealed = seal(keys.get('oath-secret'), Buffer.from('JBSWY3DPEHPK3PXP'), 'oath-secret:u1');
  t.equal(unseal(keys.get('oath-secret'), sealed, 'oath-secret:u1').toString(), 'JBSWY3DPEHPK3PXP');
  t.throws(() => unseal(keys.get('oath-secret'), sealed, 'oath-secret:u2'), SealError, 'another user');
  t.throws(() => unseal(keys.get('challenge-state'), sealed, 'oath-secret:u1'), SealError, 'another purpose');
  t.throws(() => unseal(other.get('oath-secret'), sealed, 'oath-secret:u1'), SealError, 'another master key');
  for (let i = 0; i < sealed.length; i++) {
    const bad = Buffer.from(sealed);
    bad[i] = (bad[i] ?? 0) ^ 0x01;
    t.throws(() => unseal(keys.get('oath-secret'), bad, 'oath-secret:u1'), SealError);
  }
  t.throws(() => unseal(keys.get('oath-secret'), sealed.subarray(0, 20), 'oath-secret:u1'), SealError, 'truncated');
  t.not(seal(keys.get('oath-secret'), Buffer.from('x'), 'c').toString('hex'), seal(keys.get('oath-secret'), Buffer.from('x'), 'c').toString('hex'), 'random IV');
  t.throws(() => new DataKeys(randomBytes(16)));
});

t.test('challenge State: round trip, fits the attribute, tamper-evident', async (t) => {
  const keys = new DataKeys(randomBytes(32));
  const state = {
    nonce: newNonce(),
    attemptId: crypto.randomUUID(),
    userId: crypto.randomUUID(),
    clientName: 'vpn-frankfurt-01',
    firstFactor: 'local',
    expiresAt: Date.now() + 120_000,
    stage: 'second' as const,
    step: 'push' as const,
  };
  const sealed = sealState(keys, state);
  t.ok(sealed.length <= MAX_STATE_LENGTH, `${sealed.length} bytes`);
  t.same(openState(keys, sealed), state);
  const first = { ...state, firstFactor: 'radius:nps-cluster-west', userId: '', stage: 'first' as const, step: 'code' as const };
  t.same(openState(keys, sealState(keys, first)), first, 'a first-factor challenge keeps its stage');
  t.equal(openState(new DataKeys(randomBytes(32)), sealed), undefined, 'another key');
  const bad = Buffer.from(sealed);
  bad[5] = (bad[5] ?? 0) ^ 0xff;
  t.equal(openState(keys, bad), undefined, 'tampered');
  t.equal(openState(keys, Buffer.alloc(0)), undefined, 'empty');
  t.throws(() => sealState(keys, { ...state, userId: 'x'.repeat(300) }), SealError, 'too long for a State attribute');
});
