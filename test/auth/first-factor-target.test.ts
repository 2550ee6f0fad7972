import t from 'tap';
import type { MsChapV2Proof } from '../../src/auth/attempt.js';
import type { FirstFactorTarget, FirstFactorTargets, MsChapV2Check, PasswordCheck, PasswordOutcome } from '../../src/auth/first-factor-target.js';
import { MS_CHAP_V2_UNSUPPORTED_MESSAGE } from '../../src/auth/steps/first-factor.js';
import { MS_CHAP_V2_NO_CODE_MESSAGE } from '../../src/auth/steps/second-factor.js';
import { UpstreamUnavailable } from '../../src/errors.js';
import { AttributeType, attr } from '../../src/radius/codec/index.js';
import { SEED, auditRecords, flowHarness } from './fixtures.js';

/** A directory-like target answering from a table, recording what it was asked. */
class TableTarget implements FirstFactorTarget {
  readonly seen: PasswordCheck[] = [];
  down = false;
  constructor(
    readonly name: string,
    private readonly answers: Record<string, PasswordOutcome>,
  ) {}
  async check(req: PasswordCheck): Promise<PasswordOutcome> {
    this.seen.push(req);
    if (this.down) throw new UpstreamUnavailable('no directory server answered');
    return this.answers[`${req.login}/${req.password}`] ?? { kind: 'reject', reason: 'bad_password', detail: 'data 52e' };
  }
  async close(): Promise<void> {}
}

/** The first-factor targets of a flow that knows just this one. */
const only = (target: FirstFactorTarget): FirstFactorTargets => ({ get: (name) => (name === target.name ? target : undefined) });

const directory = { flavour: 'ad', urls: ['ldaps://127.0.0.1:1'], bind_dn: 'svc', bind_password: { env: 'UNUSED' }, base_dn: 'DC=example,DC=test' };
const CLASS = attr.octets(AttributeType.Class, Buffer.from('vpn-group'));

async function harness(failMode: 'secure' | 'safe' = 'secure') {
  const target = new TableTarget('ldap:corp', {
    'alice/right': { kind: 'accept', replyAttributes: [CLASS] },
    'bob/right': { kind: 'reject', reason: 'must_change_password', detail: 'data 773' },
  });
  const h = await flowHarness(
    { lockout: { max_failures: 0 }, directories: { corp: directory }, policies: { default: { first_factor: 'ldap:corp', fail_mode: failMode }, nps: { first_factor: 'none' } } },
    undefined,
    only(target),
  );
  return { h, target };
}

t.test('ldap: first factor: the target decides the password, the flow the second factor', async (t) => {
  const { h, target } = await harness();
  t.teardown(() => h.cleanup());
  await h.addUser('alice');
  await h.addUser('bob');

  const ok = await h.flow.run(h.attempt({ username: 'alice', password: `right,${h.code(SEED)}` }));
  t.match(ok, { kind: 'accept', reason: 'accepted' });
  t.same(ok.kind === 'accept' ? ok.attributes : undefined, [CLASS], "the target's reply attributes ride on the accept");
  t.equal(target.seen.at(-1)?.password, 'right', 'the inline code was split off before the directory saw the password');
  t.equal(target.seen.at(-1)?.login, 'alice');

  h.now += 30_000;
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `wrong,${h.code(SEED)}` })), { kind: 'reject', reason: 'bad_password' });
  t.match(await h.flow.run(h.attempt({ username: 'bob', password: `right,${h.code(SEED)}` })), { kind: 'reject', reason: 'must_change_password' }, "the directory's reason is the decision's");
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: 'right,000000' })), { kind: 'reject', reason: 'bad_code' }, 'a right password still needs the second factor');

  const before = target.seen.length;
  for (const password of ['', ',123456', '\0', '\0\0,123456']) {
    t.match(await h.flow.run(h.attempt({ username: 'alice', password })), { kind: 'reject', reason: 'bad_password' }, `empty password ${JSON.stringify(password)} rejected`);
  }
  t.equal(target.seen.length, before, 'an empty password never reaches the directory');

  const records = await auditRecords(h.store);
  t.same(
    records.map((r) => [r.username, r.result, r.reason, r.firstFactor]),
    [
      ['alice', 'accept', 'accepted', 'ldap:corp'],
      ['alice', 'reject', 'bad_password', 'ldap:corp'],
      ['bob', 'reject', 'must_change_password', 'ldap:corp'],
      ['alice', 'reject', 'bad_code', 'ldap:corp'],
      ['alice', 'reject', 'bad_password', 'ldap:corp'],
      ['alice', 'reject', 'bad_password', 'ldap:corp'],
      ['alice', 'reject', 'bad_password', 'ldap:corp'],
      ['alice', 'reject', 'bad_password', 'ldap:corp'],
    ],
    'one audit record per attempt, with the first factor named',
  );
});

t.test('a directory that does not answer rejects, even with fail_mode safe', async (t) => {
  for (const mode of ['secure', 'safe'] as const) {
    const { h, target } = await harness(mode);
    await h.addUser('alice');
    target.down = true;
    t.match(await h.flow.run(h.attempt({ username: 'alice', password: `right,${h.code(SEED)}` })), { kind: 'reject', reason: 'first_factor_unavailable' }, mode);
    await h.cleanup();
  }
});

t.test("a first factor's own challenge is passed on, answered once, then the second factor follows", async (t) => {
  const continuation = Buffer.from('upstream-state-0123');
  const target = new TableTarget('radius:nps', {
    'carol/right': { kind: 'challenge', prompt: 'Enter your PIN', continuation },
    'carol/pin-1234': { kind: 'accept' },
  });
  const h = await flowHarness(
    {
      upstreams: { nps: { servers: [{ address: '127.0.0.1', secret: { env: 'UNUSED' } }] } },
      policies: { default: { first_factor: 'radius:nps' }, nps: { first_factor: 'none' } },
    },
    undefined,
    only(target),
  );
  t.teardown(() => h.cleanup());
  await h.addUser('carol');

  const asked = await h.flow.run(h.attempt({ username: 'carol', password: 'right' }));
  t.match(asked, { kind: 'challenge', reason: 'challenge_first_factor', prompt: 'Enter your PIN' });
  const state = asked.kind === 'challenge' ? asked.state : Buffer.alloc(0);
  t.notOk(state.includes(continuation), "the upstream's State does not travel in the gateway's own State");

  const answered = await h.flow.run(h.attempt({ username: 'carol', state, response: 'pin-1234' }));
  t.same(target.seen.at(-1)?.continuation, continuation, "the answer goes back with the upstream's continuation");
  t.match(answered, { kind: 'challenge', reason: 'challenge_code' }, 'then the gateway asks for the second factor');
  t.match(await h.flow.run(h.attempt({ username: 'carol', state, response: 'pin-1234' })), { kind: 'reject', reason: 'challenge_replayed' }, 'answered once');
  const codeState = answered.kind === 'challenge' ? answered.state : Buffer.alloc(0);
  t.match(await h.flow.run(h.attempt({ username: 'carol', state: codeState, response: h.code(SEED) })), { kind: 'accept', reason: 'accepted' });

  const again = await h.flow.run(h.attempt({ username: 'carol', password: 'right' }));
  const wrong = await h.flow.run(h.attempt({ username: 'carol', state: again.kind === 'challenge' ? again.state : Buffer.alloc(0), response: 'pin-0000' }));
  t.match(wrong, { kind: 'reject', reason: 'bad_password' }, "the upstream's reject of the answer is the decision");
  const forged = await h.flow.run(h.attempt({ username: 'mallory', state: again.kind === 'challenge' ? again.state : Buffer.alloc(0), response: 'pin-1234' }));
  t.match(forged, { kind: 'reject', reason: 'challenge_invalid' }, "another user cannot answer carol's challenge");
});

t.test('unknown_users: pass with a directory: the first factor alone, still checked', async (t) => {
  const target = new TableTarget('ldap:corp', { 'dave/right': { kind: 'accept' } });
  const h = await flowHarness(
    { directories: { corp: directory }, policies: { default: { first_factor: 'ldap:corp', unknown_users: 'pass' }, nps: { first_factor: 'none' } } },
    undefined,
    only(target),
  );
  t.teardown(() => h.cleanup());
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: 'right' })), { kind: 'accept', reason: 'accepted_unknown_user' });
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: 'wrong' })), { kind: 'reject', reason: 'bad_password' });
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: '' })), { kind: 'reject', reason: 'bad_password' });
});

/** An upstream-like target that also checks MS-CHAPv2 proofs (by their response octets), recording what it was asked. */
class MsChapTarget extends TableTarget {
  readonly proofs: MsChapV2Check[] = [];
  constructor(
    name: string,
    private readonly proofAnswers: ReadonlyMap<string, PasswordOutcome>,
  ) {
    super(name, {});
  }
  async checkMsChapV2(req: MsChapV2Check): Promise<PasswordOutcome> {
    this.proofs.push(req);
    return this.proofAnswers.get(req.proof.response.toString('hex')) ?? { kind: 'reject', reason: 'upstream_rejected' };
  }
}

const proof = (fill: number): MsChapV2Proof => ({ challenge: Buffer.alloc(16, 1), response: Buffer.alloc(50, fill) });
const MS_SUCCESS = attr.vendorSpecific(311, 26, Buffer.from('\x01S=407A5589115FD0D6209F510FE9C04566932CDA56'));
const MS_ERROR = attr.vendorSpecific(311, 2, Buffer.from('\x01E=691 R=1 C=00000000000000000000000000000000 V=3'));
const KEYS = { sendKey: Buffer.alloc(16, 0xa5), recvKey: Buffer.alloc(16, 0x5a) };

async function msChapHarness(firstFactor: 'radius:nps' | 'ldap:corp' | 'local') {
  const target =
    firstFactor === 'ldap:corp'
      ? new TableTarget('ldap:corp', {})
      : new MsChapTarget('radius:nps', new Map([
          [proof(2).response.toString('hex'), { kind: 'accept', replyAttributes: [MS_SUCCESS], mppeKeys: KEYS }],
          [proof(3).response.toString('hex'), { kind: 'reject', reason: 'upstream_rejected', replyAttributes: [MS_ERROR] }],
        ]));
  const client = (name: string, ip: string, policy: string, challenge = true) => ({ name, addresses: [ip], secret: { env: 'UNUSED' }, policy, challenge });
  const h = await flowHarness(
    {
      lockout: { max_failures: 0 },
      directories: { corp: directory },
      upstreams: { nps: { servers: [{ address: '127.0.0.1', secret: { env: 'UNUSED' } }] } },
      clients: [client('vpn', '127.0.0.1', 'default'), client('vpn-nochallenge', '127.0.0.2', 'default', false), client('vpn-allow', '127.0.0.3', 'allow'), client('rdgw', '127.0.0.4', 'nps', false)],
      policies: { default: { first_factor: firstFactor }, allow: { first_factor: firstFactor, unenrolled: 'allow' }, nps: { first_factor: 'none' } },
    },
    undefined,
    only(target),
  );
  return { h, target };
}

t.test('MS-CHAPv2 with a radius: first factor: the target checks the proof, the code comes through the challenge, the keys ride on the final accept', async (t) => {
  const { h, target } = await msChapHarness('radius:nps');
  t.teardown(() => h.cleanup());
  if (!(target instanceof MsChapTarget)) throw new Error('MsChapTarget expected');
  await h.addUser('alice');
  await h.addUser('ursula', { totp: false });

  const asked = await h.flow.run(h.attempt({ username: 'alice', msChapV2: proof(2) }));
  t.match(asked, { kind: 'challenge', reason: 'challenge_code' }, 'no code can ride along with MS-CHAPv2: the gateway asks for it');
  t.same(target.proofs.at(-1)?.proof, proof(2), 'the proof went to the target as it came');
  t.equal(target.proofs.at(-1)?.login, 'alice');
  t.equal(target.seen.length, 0, 'no password check');
  t.notOk('mppeKeys' in asked || 'attributes' in asked, 'the challenge carries neither keys nor MS-CHAP2-Success');
  const state = asked.kind === 'challenge' ? asked.state : Buffer.alloc(0);
  t.notOk(state.includes(KEYS.sendKey.subarray(0, 4)) || state.includes(KEYS.recvKey.subarray(0, 4)), 'the keys are not in the sealed State the NAS holds');

  const done = await h.flow.run(h.attempt({ username: 'alice', state, response: h.code(SEED) }));
  t.match(done, { kind: 'accept', reason: 'accepted' });
  t.same(done.kind === 'accept' ? done.attributes : undefined, [MS_SUCCESS], 'MS-CHAP2-Success on the accept that answers the challenge');
  t.same(done.kind === 'accept' ? done.mppeKeys : undefined, KEYS, 'and the MPPE keys, in the clear for the front end to encrypt');
  t.match(await h.flow.run(h.attempt({ username: 'alice', state, response: h.code(SEED) })), { kind: 'reject', reason: 'challenge_replayed' }, 'answered once');

  const wrong = await h.flow.run(h.attempt({ username: 'alice', msChapV2: proof(3) }));
  t.match(wrong, { kind: 'reject', reason: 'upstream_rejected' });
  t.same(wrong.kind === 'reject' ? wrong.attributes : undefined, [MS_ERROR], "the upstream's MS-CHAP-Error goes back with the reject");

  const noChallenge = await h.flow.run(h.attempt({ username: 'alice', msChapV2: proof(2), client: { name: 'vpn-nochallenge', ip: '127.0.0.2' } }));
  t.match(noChallenge, { kind: 'reject', reason: 'code_missing', message: MS_CHAP_V2_NO_CODE_MESSAGE }, 'a client without challenges cannot get a code with MS-CHAPv2');
  t.notOk('mppeKeys' in noChallenge, 'and no keys with a reject');

  const unenrolled = await h.flow.run(h.attempt({ username: 'ursula', msChapV2: proof(2), client: { name: 'vpn-allow', ip: '127.0.0.3' } }));
  t.match(unenrolled, { kind: 'accept', reason: 'accepted_unenrolled' }, 'unenrolled: allow accepts on the upstream alone');
  t.same(unenrolled.kind === 'accept' ? [unenrolled.attributes, unenrolled.mppeKeys] : undefined, [[MS_SUCCESS], KEYS], 'with MS-CHAP2-Success and the keys');

  const records = await auditRecords(h.store);
  t.same(
    records.map((r) => [r.username, r.result, r.reason, r.firstFactor]),
    [
      ['alice', 'challenge', 'challenge_code', 'radius:nps'],
      ['alice', 'accept', 'accepted', 'radius:nps'],
      ['alice', 'reject', 'challenge_replayed', 'radius:nps'],
      ['alice', 'reject', 'upstream_rejected', 'radius:nps'],
      ['alice', 'reject', 'code_missing', 'radius:nps'],
      ['ursula', 'accept', 'accepted_unenrolled', 'radius:nps'],
    ],
  );
});

t.test('MS-CHAPv2 with a first factor that cannot check it: rejected as first_factor_unsupported, before anything is asked', async (t) => {
  for (const kind of ['ldap:corp', 'local'] as const) {
    const { h, target } = await msChapHarness(kind);
    await h.addUser('alice', { password: 'right' });
    for (const username of ['alice', 'nobody']) {
      const d = await h.flow.run(h.attempt({ username, msChapV2: proof(2) }));
      t.match(d, { kind: 'reject', reason: 'first_factor_unsupported', message: MS_CHAP_V2_UNSUPPORTED_MESSAGE }, `${kind}, ${username}`);
    }
    t.equal(target.seen.length, 0, `${kind}: the target was never asked`);
    t.same(
      (await auditRecords(h.store)).map((r) => [r.username, r.reason, r.firstFactor]),
      [
        ['alice', 'first_factor_unsupported', kind],
        ['nobody', 'first_factor_unsupported', kind],
      ],
      `${kind}: audited with the first factor named`,
    );
    // PAP through the same policy is unaffected.
    if (kind === 'local') t.match(await h.flow.run(h.attempt({ username: 'alice', password: `right,${h.code(SEED)}` })), { kind: 'accept' }, 'PAP still works');
    await h.cleanup();
  }
});

t.test("MS-CHAPv2 with first factor none: the NAS checked it, the gateway's second factor as always", async (t) => {
  const { h } = await msChapHarness('radius:nps');
  t.teardown(() => h.cleanup());
  await h.addUser('alice');
  t.match(await h.flow.run(h.attempt({ username: 'alice', msChapV2: proof(2), client: { name: 'rdgw', ip: '127.0.0.4' } })), { kind: 'reject', reason: 'code_missing', message: MS_CHAP_V2_NO_CODE_MESSAGE });
});

t.test("fail_mode safe after the first factor still hands the NAS the first factor's reply attributes", async (t) => {
  const target = new TableTarget('ldap:corp', { 'alice/right': { kind: 'accept', replyAttributes: [CLASS] } });
  const h = await flowHarness(
    { directories: { corp: directory }, policies: { default: { first_factor: 'ldap:corp', fail_mode: 'safe' }, nps: { first_factor: 'none' } } },
    (store) =>
      new Proxy(store, {
        get(target_, prop, receiver) {
          if (prop === 'listTokens') return () => Promise.reject(new UpstreamUnavailable('second-factor service down'));
          const value: unknown = Reflect.get(target_, prop, receiver);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target_) : value;
        },
      }),
    only(target),
  );
  t.teardown(() => h.cleanup());
  await h.addUser('alice');
  const decision = await h.flow.run(h.attempt({ username: 'alice', password: 'right,123456' }));
  t.match(decision, { kind: 'accept', reason: 'accepted_fail_open' });
  t.same(decision.kind === 'accept' ? decision.attributes : undefined, [CLASS]);
});

t.test('an inline code is matched while the directory checks the password, and claimed only once the password is right', async (t) => {
  /** A directory that answers when the test says so. */
  const pending: Array<(outcome: PasswordOutcome) => void> = [];
  const gated: FirstFactorTarget = { name: 'ldap:corp', check: () => new Promise((resolve) => pending.push(resolve)), close: async () => {} };
  const calls: string[] = [];
  let tokensFail = false;
  const h = await flowHarness(
    { lockout: { max_failures: 0 }, directories: { corp: directory }, policies: { default: { first_factor: 'ldap:corp' }, nps: { first_factor: 'none' } } },
    (store) =>
      new Proxy(store, {
        get(target_, prop, receiver) {
          const value: unknown = Reflect.get(target_, prop, receiver);
          if (typeof value !== 'function') return value;
          const fn = (value as (...a: unknown[]) => unknown).bind(target_);
          if (prop !== 'listTokens' && prop !== 'claimTotpStep') return fn;
          return (...args: unknown[]) => {
            calls.push(prop);
            return prop === 'listTokens' && tokensFail ? Promise.reject(new Error('disk I/O error')) : fn(...args);
          };
        },
      }),
    only(gated),
  );
  t.teardown(() => h.cleanup());
  await h.addUser('alice');
  const code = h.code(SEED);
  /** Waits (up to 5 s) until `done` holds. */
  const until = async (done: () => boolean): Promise<void> => {
    for (let waited = 0; !done() && waited < 5000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
  };
  /** An attempt whose directory answers `outcome` once it has been asked. */
  const attempt = async (password: string, outcome: PasswordOutcome): Promise<Awaited<ReturnType<typeof h.flow.run>>> => {
    const running = h.flow.run(h.attempt({ username: 'alice', password }));
    await until(() => pending.length > 0);
    pending.shift()!(outcome);
    return running;
  };

  const wrong = h.flow.run(h.attempt({ username: 'alice', password: `wrong,${code}` }));
  await until(() => calls.length > 0);
  t.equal(pending.length, 1, 'the directory was asked and has not answered');
  t.same(calls, ['listTokens'], 'the tokens were read, and the code matched, before the directory answered');
  pending.shift()!({ kind: 'reject', reason: 'bad_password', detail: 'data 52e' });
  t.match(await wrong, { kind: 'reject', reason: 'bad_password' });
  t.same(calls, ['listTokens'], 'a wrong password claims nothing');

  t.match(await attempt(`right,${code}`, { kind: 'accept' }), { kind: 'accept', reason: 'accepted' });
  t.same(calls, ['listTokens', 'listTokens', 'claimTotpStep'], 'the code the wrong password came with is still unused; the tokens are read once per attempt');
  t.match(await attempt(`right,${code}`, { kind: 'accept' }), { kind: 'reject', reason: 'code_replayed' }, 'then it is used up');
  t.match(await attempt('right,000000', { kind: 'accept' }), { kind: 'reject', reason: 'bad_code' });

  // The match's store fault: the attempt fails where the second factor would have read the
  // tokens itself; with a wrong password nobody waits for it, and nothing goes unhandled.
  tokensFail = true;
  t.match(await attempt(`wrong,${code}`, { kind: 'reject', reason: 'bad_password' }), { kind: 'reject', reason: 'bad_password' });
  t.match(await attempt(`right,${code}`, { kind: 'accept' }), { kind: 'reject', reason: 'internal_error' });

  const records = await auditRecords(h.store);
  t.same(
    records.map((r) => [r.result, r.reason, r.method]),
    [
      ['reject', 'bad_password', null],
      ['accept', 'accepted', 'totp'],
      ['reject', 'code_replayed', 'totp'],
      ['reject', 'bad_code', 'totp'],
      ['reject', 'bad_password', null],
      ['reject', 'internal_error', null],
    ],
  );
});
