import t from 'tap';
import { HOTP, Secret } from 'otpauth';
import { UpstreamUnavailable, StoreError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import type { Store } from '../../src/store/store.js';
import { auditRecords, flowHarness, SEED } from './fixtures.js';

const PW = 'Correct-Horse-9';

t.test('password + inline TOTP: accept, one audit record with who and how', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  const { user } = await h.addUser('alice', { password: PW, upn: 'alice@example.test' });
  const d = await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${h.code(SEED)}` }));
  t.match(d, { kind: 'accept', reason: 'accepted' });
  const [rec, ...rest] = await auditRecords(h.store);
  t.equal(rest.length, 0);
  t.match(rec, { result: 'accept', reason: 'accepted', method: 'totp', firstFactor: 'local', username: 'alice', userId: user.id });
  t.match(rec, { firstName: 'First', lastName: 'Last', email: 'alice@example.test', gatewayName: 'gw-test', clientName: 'vpn', clientIp: '127.0.0.1', nasIdentifier: 'nas-1', callingStationId: '198.51.100.7' });
  t.ok((rec as unknown as { timings: { total: number } }).timings.total >= 0);
});

t.test('rejections carry their reason', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  await h.addUser('bob', { password: PW, upn: 'bob@example.test' });
  await h.addUser('carol', { password: PW });
  await h.addUser('dave', { password: PW, totp: false });
  const { user: eve } = await h.addUser('eve', { password: PW });
  await h.store.updateUser(eve.id, { enabled: false });
  const { user: mallory } = await h.addUser('mallory', { password: PW });
  await h.store.updateUser(mallory.id, { blocked: true });
  const code = h.code(SEED);
  const cases: Array<[string, string | undefined, string, string]> = [
    ['bob', `wrong,${code}`, 'bad_password', 'wrong password'],
    ['bob', `${PW},000000`, 'bad_code', 'wrong code'],
    ['bob', `,${code}`, 'bad_password', 'empty password never succeeds'],
    ['bob', undefined, 'bad_password', 'no password at all'],
    ['nobody', `${PW},${code}`, 'user_unknown', 'unknown user'],
    ['dave', `${PW},${code}`, 'not_enrolled', 'no token, policy rejects unenrolled'],
    ['eve', `${PW},${code}`, 'user_disabled', 'disabled'],
    ['mallory', `${PW},${code}`, 'user_blocked', 'blocked'],
    ['carol', `${PW},push`, 'method_not_allowed', 'push is not a method of this policy'],
  ];
  for (const [username, password, reason, what] of cases) {
    const d = await h.flow.run(h.attempt({ username, password }));
    t.match(d, { kind: 'reject', reason }, what);
  }
  const records = await auditRecords(h.store);
  t.same(records.map((r) => r.reason), cases.map((c) => c[2]), 'one audit record per attempt, reason verbatim');
});

t.test('a used code is refused as code_replayed, also an earlier one', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  const now = h.code(SEED);
  const before = h.code(SEED, h.now - 30_000);
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${now}` })), { kind: 'accept' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${now}` })), { kind: 'reject', reason: 'code_replayed' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${before}` })), { kind: 'reject', reason: 'code_replayed' }, 'earlier step than the last used');
  h.now += 30_000;
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${h.code(SEED)}` })), { kind: 'accept' }, 'next step works');
});

t.test('two attempts with the same code at once: exactly one wins', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  const code = h.code(SEED);
  const results = await Promise.all(Array.from({ length: 10 }, () => h.flow.run(h.attempt({ username: 'alice', password: `${PW},${code}` }))));
  t.equal(results.filter((d) => d.kind === 'accept').length, 1);
  t.equal(results.filter((d) => d.kind === 'reject' && d.reason === 'code_replayed').length, 9);
});

t.test('name forms: DOMAIN\\user, UPN, case', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  await h.addUser('Alice', { password: PW, upn: 'alice@corp.example.test' });
  for (const name of ['alice', 'ALICE', 'CORP\\alice', 'alice@corp.example.test', 'Alice@Corp.Example.Test']) {
    h.now += 30_000;
    t.match(await h.flow.run(h.attempt({ username: name, password: `${PW},${h.code(SEED)}` })), { kind: 'accept' }, name);
  }
});

t.test('challenge round trip: State sealed, single use, bound to client and user, expires', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  await h.addUser('bob', { password: PW });
  const first = await h.flow.run(h.attempt({ username: 'alice', password: PW }));
  if (first.kind !== 'challenge') throw new Error(`expected a challenge, got ${first.kind}`);
  t.equal(first.prompt, 'Enter your verification code');
  const answer = (fields: { username?: string; response: string; client?: string }) =>
    h.flow.run(
      h.attempt({
        username: fields.username ?? 'alice',
        state: first.state,
        response: fields.response,
        client: { name: fields.client ?? 'vpn', ip: '127.0.0.1' },
      }),
    );
  t.match(await answer({ username: 'bob', response: h.code(SEED) }), { kind: 'reject', reason: 'challenge_invalid' }, 'another user');
  t.match(await answer({ client: 'rdgw', response: h.code(SEED) }), { kind: 'reject', reason: 'challenge_invalid' }, 'another client');
  t.match(await answer({ response: h.code(SEED) }), { kind: 'accept', reason: 'accepted' });
  h.now += 30_000;
  t.match(await answer({ response: h.code(SEED) }), { kind: 'reject', reason: 'challenge_replayed' }, 'State used once');

  const second = await h.flow.run(h.attempt({ username: 'alice', password: PW }));
  if (second.kind !== 'challenge') throw new Error('expected a challenge');
  t.match(await h.flow.run(h.attempt({ username: 'alice', state: second.state, response: '000000' })), { kind: 'reject', reason: 'bad_code' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', state: second.state, response: h.code(SEED) })), { kind: 'reject', reason: 'challenge_replayed' }, 'a wrong answer used it up');

  const third = await h.flow.run(h.attempt({ username: 'alice', password: PW }));
  if (third.kind !== 'challenge') throw new Error('expected a challenge');
  h.now += 121_000;
  t.match(await h.flow.run(h.attempt({ username: 'alice', state: third.state, response: h.code(SEED) })), { kind: 'reject', reason: 'challenge_expired' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', state: Buffer.from('forged state value'), response: '123456' })), { kind: 'reject', reason: 'challenge_invalid' });

  const records = await auditRecords(h.store);
  t.same(records.filter((r) => r.result === 'challenge').map((r) => r.reason), ['challenge_code', 'challenge_code', 'challenge_code']);
});

t.test('a wrong password gets no challenge', async (t) => {
  const h = await flowHarness();
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: 'wrong' })), { kind: 'reject', reason: 'bad_password' });
});

t.test('client without challenge support needs the inline code', async (t) => {
  const h = await flowHarness({ policies: { default: {}, nps: { first_factor: 'local' } } });
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'code_missing' });
});

t.test('first factor none: the NAS checked the password; a bare code is enough', async (t) => {
  const h = await flowHarness({ policies: { default: {}, nps: { first_factor: 'none', unknown_users: 'pass' } } });
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { totp: true });
  const rdgw = { name: 'rdgw', ip: '127.0.0.2' };
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: h.code(SEED), client: rdgw })), { kind: 'accept' });
  h.now += 30_000;
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `whatever,${h.code(SEED)}`, client: rdgw })), { kind: 'accept' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: 'anything', client: rdgw })), { kind: 'reject', reason: 'code_missing' });
  t.match(await h.flow.run(h.attempt({ username: 'stranger', password: 'x', client: rdgw })), { kind: 'accept', reason: 'accepted_unknown_user' });
  const recs = await auditRecords(h.store);
  t.equal(recs[0]?.firstFactor, 'none');
});

t.test('unenrolled: allow is audited as such', async (t) => {
  const h = await flowHarness({ policies: { default: { unenrolled: 'allow' }, nps: {} } });
  t.teardown(() => h.cleanup());
  await h.addUser('dave', { password: PW, totp: false });
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: PW })), { kind: 'accept', reason: 'accepted_unenrolled' });
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: 'wrong' })), { kind: 'reject', reason: 'bad_password' }, 'first factor still checked');
});

t.test('lockout after N failures, for M minutes, success resets', async (t) => {
  const h = await flowHarness({ lockout: { max_failures: 3, lock_minutes: 10 } });
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  await h.addUser('bob', { password: PW });
  for (let i = 0; i < 2; i++) t.match(await h.flow.run(h.attempt({ username: 'bob', password: `${PW},000000` })), { reason: 'bad_code' });
  t.match(await h.flow.run(h.attempt({ username: 'bob', password: `${PW},${h.code(SEED)}` })), { kind: 'accept' });
  h.now += 30_000;
  t.match(await h.flow.run(h.attempt({ username: 'bob', password: 'wrong' })), { reason: 'bad_password' }, 'count started again after the success');

  t.match(await h.flow.run(h.attempt({ username: 'alice', password: 'wrong1' })), { reason: 'bad_password' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},000000` })), { reason: 'bad_code' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: 'wrong3' })), { reason: 'bad_password' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${h.code(SEED)}` })), { kind: 'reject', reason: 'locked_out' }, 'right password and code while locked');
  h.now += 9 * 60_000;
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${h.code(SEED)}` })), { reason: 'locked_out' });
  h.now += 61_000;
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${h.code(SEED)}` })), { kind: 'accept' }, 'lock expired');
});

t.test('HOTP: counter advances, a used counter is refused, look-ahead resyncs', async (t) => {
  const h = await flowHarness({ policies: { default: { methods: ['hotp'] }, nps: {} } });
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW, hotp: true });
  const hotp = new HOTP({ secret: Secret.fromBase32(SEED) });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${hotp.generate({ counter: 0 })}` })), { kind: 'accept' });
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${hotp.generate({ counter: 0 })}` })), { kind: 'reject' }, 'counter 0 used');
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${hotp.generate({ counter: 5 })}` })), { kind: 'accept' }, 'within look-ahead');
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${hotp.generate({ counter: 3 })}` })), { kind: 'reject' }, 'behind the counter');
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},${hotp.generate({ counter: 30 })}` })), { kind: 'reject', reason: 'bad_code' }, 'beyond look-ahead');
});

function failing(store: Store, method: keyof Store, error: Error): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === method) return () => Promise.reject(error);
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

t.test('faults: fail mode applies only to the second factor', async (t) => {
  const down = new UpstreamUnavailable('second-factor service down');
  for (const [mode, expected] of [
    ['secure', { kind: 'reject', reason: 'provider_unavailable' }],
    ['safe', { kind: 'accept', reason: 'accepted_fail_open' }],
  ] as const) {
    const h = await flowHarness({ policies: { default: { fail_mode: mode }, nps: {} } }, (s) => failing(s, 'listTokens', down));
    await h.addUser('alice', { password: PW });
    t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},123456` })), expected, mode);
    t.match(await h.flow.run(h.attempt({ username: 'alice', password: `wrong,123456` })), { kind: 'reject', reason: 'bad_password' }, `${mode}: first factor still checked`);
    await h.cleanup();
  }
  const h = await flowHarness({ policies: { default: { fail_mode: 'safe' }, nps: {} } }, (s) => failing(s, 'findUser', new UpstreamUnavailable('down')));
  t.teardown(() => h.cleanup());
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: PW })), { kind: 'reject', reason: 'first_factor_unavailable' }, 'fault before the first factor never accepts');
});

t.test('fault lines: at most 10 a minute per error code, then one line with the count left out', async (t) => {
  const lines: Array<{ msg: string; attemptId?: string; errorCode?: string; kind?: string; suppressed?: number }> = [];
  const log = createLogger({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) });
  const down = new UpstreamUnavailable('second-factor service down');
  const h = await flowHarness({ policies: { default: {}, nps: {} } }, (s) => failing(s, 'listTokens', down), undefined, undefined, log);
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  const ids: string[] = [];
  for (let i = 0; i < 13; i++) {
    const attempt = h.attempt({ username: 'alice', password: `${PW},123456` });
    ids.push(attempt.id);
    t.match(await h.flow.run(attempt), { kind: 'reject', reason: 'provider_unavailable' });
  }
  const faults = () => lines.filter((l) => l.msg === 'fault during attempt');
  t.same(
    faults().map((l) => l.attemptId),
    ids.slice(0, 10),
    'the first ten attempts each have their fault line',
  );
  t.ok(faults().every((l) => l.errorCode === 'GW_ERR_UPSTREAM_UNAVAILABLE'));
  t.equal(lines.filter((l) => l.msg === 'attempt').length, 13, 'every attempt still has its own attempt line');
  t.equal((await auditRecords(h.store)).length, 13, 'and its audit record');
  h.now += 60_000;
  const later = h.attempt({ username: 'alice', password: `${PW},123456` });
  await h.flow.run(later);
  t.match(
    lines.find((l) => l.suppressed !== undefined),
    { msg: 'fault during attempt (suppressed lines in the last minute)', kind: 'GW_ERR_UPSTREAM_UNAVAILABLE', suppressed: 3 },
    'a minute later: how many were left out, and of which code',
  );
  t.equal(faults().at(-1)?.attemptId, later.id, 'then lines again');
});

t.test('no decision without its audit record', async (t) => {
  const h = await flowHarness({}, (s) => failing(s, 'appendAudit', new StoreError('disk full')));
  t.teardown(() => h.cleanup());
  await h.addUser('alice', { password: PW });
  await t.rejects(h.flow.run(h.attempt({ username: 'alice', password: `${PW},${h.code(SEED)}` })), StoreError);
});
