import t, { type Test } from 'tap';
import { hashPassword } from '../../src/crypto/password-hash.js';
import { ProviderUnavailableError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { CloudVerifier } from '../../src/verify/cloud-verifier.js';
import type { Provider } from '../../src/verify/providers/provider.js';
import { auditRecords, flowHarness, SEED, type FlowHarness } from './fixtures.js';
import { ScriptedProvider } from './scripted-provider.js';

const PW = 'Correct-Horse-9';
const PHONE = '+4915112345678';

/** The flow with `config`, its cloud methods served by `providers`; all closed after the test. */
async function harnessWith(t: Test, config: Record<string, unknown>, providers: readonly Provider[]): Promise<{ h: FlowHarness; verifier: CloudVerifier }> {
  const verifier = new CloudVerifier(new Map(providers.map((p) => [p.name, p])), silentLogger());
  const h = await flowHarness(config, undefined, undefined, verifier);
  t.teardown(async () => {
    await verifier.close();
    await h.cleanup();
  });
  return { h, verifier };
}

/** The flow with the cloud methods, every provider a scripted test double. */
async function cloudHarness(t: Test, policy: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const ntfy = new ScriptedProvider('ntfy', 'ntfy', { approvals: ['push'] }, true);
  const sms1 = new ScriptedProvider('sms1', 'webhook', { codes: ['sms'] });
  const sms2 = new ScriptedProvider('sms2', 'webhook', { codes: ['sms'] });
  const twilio = new ScriptedProvider('twilio', 'twilio', { codes: ['sms', 'voice'], approvals: ['phone', 'sms_reply'] });
  const mail = new ScriptedProvider('mail', 'smtp', { codes: ['email'] });
  const methods = ['totp', 'push', 'sms', 'phone', 'email'];
  const { h, verifier } = await harnessWith(
    t,
    {
      providers: {
        ntfy: { type: 'ntfy', base_url: 'http://127.0.0.1:9/' },
        sms1: { type: 'webhook', url: 'http://127.0.0.1:9/a', secret: { env: 'UNUSED' } },
        sms2: { type: 'webhook', url: 'http://127.0.0.1:9/b', secret: { env: 'UNUSED' } },
        twilio: { type: 'twilio', account_sid: `AC${'0'.repeat(32)}`, auth_token: { env: 'UNUSED' }, from: '+15005550006' },
        mail: { type: 'smtp', host: '127.0.0.1', from: 'mfa@example.test' },
      },
      methods: { push: { providers: ['ntfy'], max_per_10_minutes: 3 }, sms: { providers: ['sms1', 'sms2'], per_user_per_hour: 4 }, phone: { providers: ['twilio'] }, email: { providers: ['mail'] } },
      http: { listen: [{ address: '127.0.0.1', port: 8443 }], public_url: 'https://mfa.example.test', insecure: true },
      policies: { default: { methods, ...policy }, nps: { first_factor: 'none', methods, ...policy } },
      ...extra,
    },
    [ntfy, sms1, sms2, twilio, mail],
  );
  return { h, ntfy, sms1, sms2, twilio, mail, verifier };
}

async function userWithEverything(h: FlowHarness, name: string, opts: { totp?: boolean; defaultMethod?: string } = {}) {
  const { user } = await h.addUser(name, { password: PW, totp: opts.totp ?? false });
  await h.store.updateUser(user.id, { mobile: PHONE, ...(opts.defaultMethod === undefined ? {} : { defaultMethod: opts.defaultMethod }) });
  const device = await h.store.addPushDevice({ userId: user.id, provider: 'ntfy', address: `mfa_${name}_topic`, label: 'phone' });
  return { user, device };
}

t.test('push on a client without challenges: one push, approved, audited with provider, message id and device', async (t) => {
  const { h, ntfy } = await cloudHarness(t);
  const { user, device } = await userWithEverything(h, 'alice', { defaultMethod: 'push' });
  const d = await h.flow.run(h.attempt({ username: 'alice', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } }));
  t.match(d, { kind: 'accept', reason: 'accepted' });
  t.equal(ntfy.approvals.length, 1);
  t.equal(ntfy.approvals[0]?.to, device.address, 'pushed to the device');
  t.equal(ntfy.approvals[0]?.numberMatch, undefined, 'no number matching without a prompt to show it');
  const [rec] = await auditRecords(h.store);
  t.match(rec, { result: 'accept', method: 'push', provider: 'ntfy', providerMessageId: 'ntfy-tx-1', deviceToken: device.id, userId: user.id });
  t.match((rec as unknown as { timings: Record<string, number> }).timings, { approval: Number, send: Number });

  ntfy.script = { kind: 'deny' };
  t.match(await h.flow.run(h.attempt({ username: 'alice', password: `${PW},push`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'denied' });
  ntfy.script = { kind: 'timeout' };
  h.config = { ...h.config, clients: h.config.clients.map((c) => ({ ...c, approval_timeout_seconds: 5 })) };
  const started = Date.now();
  const waited = h.flow.run(h.attempt({ username: 'alice', password: `${PW},push`, client: { name: 'rdgw', ip: '127.0.0.2' } }));
  // The scripted provider settles timeout on abort; the flow's own bound is the expiry + 5 s.
  t.match(await waited, { kind: 'reject', reason: 'approval_timeout' });
  t.ok(Date.now() - started >= 4_000, 'waited for the approval timeout');
});

t.test('number matching: the prompt shows the number, the answer waits for the push', async (t) => {
  const { h, ntfy } = await cloudHarness(t);
  await userWithEverything(h, 'bob', { defaultMethod: 'push' });
  ntfy.script = { kind: 'pick', right: true, afterMs: 50 };
  const first = await h.flow.run(h.attempt({ username: 'bob', password: PW }));
  t.match(first, { kind: 'challenge', reason: 'challenge_push' });
  const match = ntfy.approvals[0]?.numberMatch;
  t.ok(match, 'the push carries three numbers');
  t.equal(match?.choices.length, 3);
  t.ok(match?.choices.includes(match.correct));
  t.match((first as { prompt: string }).prompt, new RegExp(`Pick ${match?.correct} `));
  const answer = await h.flow.run(h.attempt({ username: 'bob', state: (first as { state: Buffer }).state, response: '' }));
  t.match(answer, { kind: 'accept', reason: 'accepted' });
  t.equal(ntfy.approvals.length, 1, 'the answer started no second push');

  ntfy.script = { kind: 'pick', right: false };
  const again = await h.flow.run(h.attempt({ username: 'bob', password: PW }));
  t.match(await h.flow.run(h.attempt({ username: 'bob', state: (again as { state: Buffer }).state, response: '' })), { kind: 'reject', reason: 'number_mismatch' });
});

t.test('SMS code through a challenge; the first provider down, the second delivers; the code works once', async (t) => {
  const { h, sms1, sms2 } = await cloudHarness(t);
  const { user } = await userWithEverything(h, 'carol', { defaultMethod: 'sms' });
  sms1.script = { kind: 'down' };
  const first = await h.flow.run(h.attempt({ username: 'carol', password: PW }));
  t.match(first, { kind: 'challenge', reason: 'challenge_code', prompt: 'Enter the code sent by SMS to +*********5678' });
  t.equal(sms1.sent.length, 0);
  t.equal(sms2.sent.length, 1, 'the second provider delivered');
  const code = sms2.sent[0]!.code;
  t.match(code, /^\d{6}$/);
  t.equal(sms2.sent[0]?.to, PHONE);
  const accepted = await h.flow.run(h.attempt({ username: 'carol', state: (first as { state: Buffer }).state, response: code }));
  t.match(accepted, { kind: 'accept' });
  t.match(await h.flow.run(h.attempt({ username: 'carol', password: `${PW},${code}` })), { kind: 'reject', reason: 'code_replayed' }, 'used once');
  const rows = await h.store.listLiveSentCodes(user.id, h.now);
  t.equal(rows.filter((r) => r.usedAt === null).length, 0, 'no unused code left');
  const records = await auditRecords(h.store);
  t.match(records[0], { result: 'challenge', method: 'sms', provider: 'sms2', phone: PHONE });
  t.match(records[1], { result: 'accept', method: 'sms', provider: 'sms2' });
});

t.test('a client without challenges: SMS is sent and the next login carries the code', async (t) => {
  const { h, sms1 } = await cloudHarness(t);
  await userWithEverything(h, 'dave');
  const sent = await h.flow.run(h.attempt({ username: 'dave', password: `${PW},sms`, client: { name: 'rdgw', ip: '127.0.0.2' } }));
  t.match(sent, { kind: 'reject', reason: 'code_sent', message: /log in again with your password,code/ });
  const code = sms1.sent[0]!.code;
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: `x,${'0'.repeat(6) === code ? '111111' : '000000'}`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'bad_code' });
  t.match(await h.flow.run(h.attempt({ username: 'dave', password: code, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'accept' });
});

t.test('the method menu on a challenge client, for a user without a default method', async (t) => {
  const { h, mail } = await cloudHarness(t);
  await userWithEverything(h, 'erin');
  const menu = await h.flow.run(h.attempt({ username: 'erin', password: PW }));
  t.match(menu, { kind: 'challenge', reason: 'challenge_method', prompt: 'Choose a method: 1 push, 2 SMS, 3 call, 4 email' });
  const picked = await h.flow.run(h.attempt({ username: 'erin', state: (menu as { state: Buffer }).state, response: '4' }));
  t.match(picked, { kind: 'challenge', reason: 'challenge_code', prompt: 'Enter the code sent to e***@example.test' });
  const code = mail.sent[0]!.code;
  t.match(await h.flow.run(h.attempt({ username: 'erin', state: (picked as { state: Buffer }).state, response: code })), { kind: 'accept' });
  const menu2 = await h.flow.run(h.attempt({ username: 'erin', password: PW }));
  t.match(await h.flow.run(h.attempt({ username: 'erin', state: (menu2 as { state: Buffer }).state, response: '9' })), { kind: 'reject', reason: 'method_not_allowed' });
});

t.test('cloud down: secure rejects, safe accepts (audited), TOTP keeps working', async (t) => {
  const secure = await cloudHarness(t);
  await userWithEverything(secure.h, 'frank', { totp: true });
  secure.ntfy.script = { kind: 'down' };
  t.match(await secure.h.flow.run(secure.h.attempt({ username: 'frank', password: `${PW},push` })), { kind: 'reject', reason: 'provider_unavailable' });
  t.match(await secure.h.flow.run(secure.h.attempt({ username: 'frank', password: `${PW},${secure.h.code(SEED)}` })), { kind: 'accept', reason: 'accepted' }, 'TOTP needs no cloud');

  const safe = await cloudHarness(t, { fail_mode: 'safe' });
  await userWithEverything(safe.h, 'frank');
  safe.ntfy.script = { kind: 'down' };
  safe.sms1.script = { kind: 'down' };
  safe.sms2.script = { kind: 'down' };
  t.match(await safe.h.flow.run(safe.h.attempt({ username: 'frank', password: `${PW},push` })), { kind: 'accept', reason: 'accepted_fail_open' });
  t.match(await safe.h.flow.run(safe.h.attempt({ username: 'frank', password: `${PW},sms` })), { kind: 'accept', reason: 'accepted_fail_open' });
  t.match(await safe.h.flow.run(safe.h.attempt({ username: 'frank', password: `wrong,push` })), { kind: 'reject', reason: 'bad_password' }, 'never without the first factor');
  // Every provider refusing (a bad number) is no outage: no fail-open.
  safe.sms1.script = { kind: 'refuse' };
  safe.sms2.script = { kind: 'refuse' };
  t.match(await safe.h.flow.run(safe.h.attempt({ username: 'frank', password: `${PW},sms` })), { kind: 'reject', reason: 'delivery_failed' });
  const reasons = (await auditRecords(safe.h.store)).map((r) => r.reason);
  t.same(reasons, ['accepted_fail_open', 'accepted_fail_open', 'bad_password', 'delivery_failed']);
});

t.test('fraud report: rejected, the user blocked, the next login refused as user_blocked', async (t) => {
  const { h, ntfy } = await cloudHarness(t);
  const { user } = await userWithEverything(h, 'grace', { defaultMethod: 'push' });
  const rdgw = { name: 'rdgw', ip: '127.0.0.2' };
  ntfy.script = { kind: 'fraud' };
  t.match(await h.flow.run(h.attempt({ username: 'grace', password: `${PW},push`, client: rdgw })), { kind: 'reject', reason: 'fraud_reported' });
  t.equal((await h.store.getUser(user.id))?.blocked, true);
  ntfy.script = { kind: 'approve' };
  t.match(await h.flow.run(h.attempt({ username: 'grace', password: `${PW},push`, client: rdgw })), { kind: 'reject', reason: 'user_blocked' });
  t.equal(ntfy.approvals.length, 1, 'no push to a blocked user');

  const kept = await cloudHarness(t, {}, { fraud: { block_user: false } });
  const { user: other } = await userWithEverything(kept.h, 'grace');
  kept.ntfy.script = { kind: 'fraud' };
  t.match(await kept.h.flow.run(kept.h.attempt({ username: 'grace', password: `${PW},push`, client: rdgw })), { kind: 'reject', reason: 'fraud_reported' });
  t.equal((await kept.h.store.getUser(other.id))?.blocked, false, 'fraud.block_user: false');
});

t.test('bypass: once, then gone; never without the password; remembered logins', async (t) => {
  const { h, ntfy } = await cloudHarness(t, { remember_seconds: 300 });
  const { user } = await userWithEverything(h, 'heidi', { defaultMethod: 'push' });
  ntfy.script = { kind: 'deny' };
  await h.store.addBypass({ userId: user.id, expiresAt: h.now + 600_000, uses: 1, now: h.now });
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: 'wrong' })), { kind: 'reject', reason: 'bad_password' }, 'the bypass is no password');
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: PW })), { kind: 'accept', reason: 'accepted_bypass' });
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'denied' }, 'used up');
  await h.store.addBypass({ userId: user.id, expiresAt: h.now + 60_000, uses: 1, now: h.now });
  h.now += 61_000;
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'denied' }, 'expired');
  t.equal(ntfy.approvals.length, 2);

  // remember_seconds: a success from one address spares the next login from there, not from elsewhere.
  h.now += 601_000;
  ntfy.script = { kind: 'approve' };
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'accept', reason: 'accepted' });
  h.now += 10_000;
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'accept', reason: 'accepted_remembered' });
  t.match(
    await h.flow.run(h.attempt({ username: 'heidi', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' }, nas: { identifier: null, ipAddress: null, callingStationId: '203.0.113.9', calledStationId: null } })),
    { kind: 'accept', reason: 'accepted' },
    'another address needs the second factor',
  );
  t.equal(ntfy.approvals.length, 4);
  h.now += 301_000;
  t.match(await h.flow.run(h.attempt({ username: 'heidi', password: PW, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'accept', reason: 'accepted' }, 'forgotten after remember_seconds');
});

t.test('push fatigue and SMS limits', async (t) => {
  const { h, ntfy, sms1 } = await cloudHarness(t);
  await userWithEverything(h, 'ivan');
  ntfy.script = { kind: 'deny' };
  for (let i = 0; i < 3; i++) t.match(await h.flow.run(h.attempt({ username: 'ivan', password: `${PW},push`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'denied' });
  t.match(await h.flow.run(h.attempt({ username: 'ivan', password: `${PW},push`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'push_limited', message: /use a code/ });
  t.equal(ntfy.approvals.length, 3, 'no fourth push');
  h.now += 601_000;
  t.match(await h.flow.run(h.attempt({ username: 'ivan', password: `${PW},push`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'denied' }, 'ten minutes later');

  for (let i = 0; i < 4; i++) t.match(await h.flow.run(h.attempt({ username: 'ivan', password: `${PW},sms` })), { kind: 'challenge' });
  t.match(await h.flow.run(h.attempt({ username: 'ivan', password: `${PW},sms` })), { kind: 'reject', reason: 'rate_limited' });
  t.equal(sms1.sent.length, 4, 'per_user_per_hour: 4');
});

t.test('a new request for a login whose push is still out joins it: one push', async (t) => {
  const { h, ntfy } = await cloudHarness(t);
  await userWithEverything(h, 'judy', { defaultMethod: 'push' });
  ntfy.script = { kind: 'approve', afterMs: 300 };
  const rdgw = { name: 'rdgw', ip: '127.0.0.2' };
  const results = await Promise.all([0, 50, 100].map(async (delay) => {
    await new Promise((r) => setTimeout(r, delay));
    return h.flow.run(h.attempt({ username: 'judy', password: PW, client: rdgw }));
  }));
  t.same(results.map((d) => d.kind), ['accept', 'accept', 'accept']);
  t.equal(ntfy.approvals.length, 1, 'one push for three requests');
});

t.test('phone call in PIN mode', async (t) => {
  const { h, twilio } = await cloudHarness(t, {}, {});
  h.config = { ...h.config, methods: { ...h.config.methods, phone: { ...h.config.methods.phone!, mode: 'pin' } } };
  const { user } = await userWithEverything(h, 'kim', { defaultMethod: 'phone' });
  t.match(await h.flow.run(h.attempt({ username: 'kim', password: `${PW},phone`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'not_enrolled' }, 'no PIN set');
  await h.store.updateUser(user.id, { pinHash: await hashPassword('4711', { log2N: 10, r: 8, p: 1 }) });
  twilio.script = { kind: 'pin', digits: '4711' };
  t.match(await h.flow.run(h.attempt({ username: 'kim', password: `${PW},call`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'accept' });
  t.equal(twilio.approvals[0]?.to, PHONE);
  t.equal(twilio.approvals[0]?.channel, 'phone');
  twilio.script = { kind: 'pin', digits: '1234' };
  t.match(await h.flow.run(h.attempt({ username: 'kim', password: `${PW},call`, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'bad_pin' });
  const [, accepted] = await auditRecords(h.store);
  t.match(accepted, { method: 'phone', provider: 'twilio', phone: PHONE });
});

t.test('two-way SMS: the user replies with the code the message carries', async (t) => {
  const { h, twilio } = await cloudHarness(t);
  h.config = { ...h.config, methods: { ...h.config.methods, sms: { ...h.config.methods.sms!, mode: 'two_way', providers: ['twilio'] } } };
  await userWithEverything(h, 'liz');
  twilio.script = { kind: 'approve', afterMs: 20 };
  t.match(await h.flow.run(h.attempt({ username: 'liz', password: `${PW},sms` })), { kind: 'accept' });
  t.equal(twilio.approvals[0]?.channel, 'sms_reply');
  t.match(twilio.approvals[0]?.code, /^\d{6}$/);
});

t.test('joining needs the same end-user address: a login from elsewhere gets its own push', async (t) => {
  const { h, ntfy } = await cloudHarness(t);
  await userWithEverything(h, 'mona', { defaultMethod: 'push' });
  ntfy.script = { kind: 'approve', afterMs: 300 };
  const rdgw = { name: 'rdgw', ip: '127.0.0.2' };
  const nas = (from: string | null) => ({ identifier: 'nas-1', ipAddress: null, callingStationId: from, calledStationId: null });
  const [victim, other, unknown] = await Promise.all([
    h.flow.run(h.attempt({ username: 'mona', password: PW, client: rdgw, nas: nas('198.51.100.7') })),
    h.flow.run(h.attempt({ username: 'mona', password: PW, client: rdgw, nas: nas('203.0.113.66') })),
    h.flow.run(h.attempt({ username: 'mona', password: PW, client: rdgw, nas: nas(null) })),
  ]);
  t.same([victim.kind, other.kind, unknown.kind], ['accept', 'accept', 'accept']);
  t.equal(ntfy.approvals.length, 3, 'three logins from three places (one without an address): three pushes');
});

t.test("a code sent for a method this policy does not allow is no second factor here", async (t) => {
  const { h, mail } = await cloudHarness(t);
  await userWithEverything(h, 'nick');
  const sent = await h.flow.run(h.attempt({ username: 'nick', password: `${PW},email` }));
  t.match(sent, { kind: 'challenge' });
  const code = mail.sent[0]!.code;
  h.config = { ...h.config, policies: { ...h.config.policies, nps: { ...h.config.policies.nps!, methods: ['totp', 'push'] } } };
  t.match(await h.flow.run(h.attempt({ username: 'nick', password: code, client: { name: 'rdgw', ip: '127.0.0.2' } })), { kind: 'reject', reason: 'bad_code' }, 'the email code on a totp/push-only client');
  t.match(await h.flow.run(h.attempt({ username: 'nick', password: `${PW},${code}` })), { kind: 'accept' }, 'still good where email is allowed');
});

t.test('a fraud report on a number-matched push counts even when nobody answers the challenge', async (t) => {
  const { h, ntfy } = await cloudHarness(t);
  const { user } = await userWithEverything(h, 'olga', { defaultMethod: 'push' });
  ntfy.script = { kind: 'fraud', afterMs: 20 };
  t.match(await h.flow.run(h.attempt({ username: 'olga', password: PW })), { kind: 'challenge', reason: 'challenge_push' });
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await h.store.getUser(user.id))?.blocked, true, 'blocked without a waiting login');
});

t.test('no provider can do the method: rejected, never fail-open', async (t) => {
  const { h } = await cloudHarness(t, { fail_mode: 'safe' });
  await userWithEverything(h, 'paul');
  // A running configuration whose voice method names no running provider.
  h.config = { ...h.config, methods: { ...h.config.methods, voice: { providers: ['gone'], code_length: 6, ttl_seconds: 300, per_user_per_hour: 3, global_per_hour: 200 } }, policies: { ...h.config.policies, default: { ...h.config.policies.default!, methods: ['voice'] } } };
  t.match(await h.flow.run(h.attempt({ username: 'paul', password: `${PW},voice` })), { kind: 'reject', reason: 'delivery_failed' });
});

t.test("a provider's own code (Duo SMS): checked by the provider; the provider down makes the code wrong, not the login fail-open", async (t) => {
  const duo = new ScriptedProvider('duo', 'duo', { approvals: ['push'] });
  let verdict: 'ok' | 'wrong' | 'down' = 'ok';
  const calls: string[] = [];
  Object.assign(duo, {
    requestProviderCode: async () => ({ messageId: 'duo-sms-1' }),
    verifyProviderCode: async ({ code }: { code: string }) => {
      calls.push(code);
      if (verdict === 'down') throw new ProviderUnavailableError('duo: HTTP 503');
      return verdict === 'ok';
    },
  });
  const { h } = await harnessWith(
    t,
    {
      providers: { duo: { type: 'duo', api_host: 'api-x.duosecurity.com', integration_key: 'DIAAAAAAAAAAAAAAAAAA', secret_key: { env: 'UNUSED' } } },
      methods: { sms: { providers: ['duo'] } },
      policies: { default: { methods: ['sms'], fail_mode: 'safe' }, nps: { first_factor: 'none', methods: ['sms'] } },
    },
    [duo],
  );
  const { user } = await h.addUser('quin', { password: PW, totp: false });
  await h.store.updateUser(user.id, { mobile: PHONE });
  t.match(await h.flow.run(h.attempt({ username: 'quin', password: `${PW},sms` })), { kind: 'challenge' });
  verdict = 'down';
  t.match(await h.flow.run(h.attempt({ username: 'quin', password: `${PW},123456` })), { kind: 'reject', reason: 'bad_code' }, 'fail_mode safe does not turn an unchecked code into an accept');
  verdict = 'wrong';
  t.match(await h.flow.run(h.attempt({ username: 'quin', password: `${PW},654321` })), { kind: 'reject', reason: 'bad_code' });
  verdict = 'ok';
  t.match(await h.flow.run(h.attempt({ username: 'quin', password: `${PW},111111` })), { kind: 'accept' });
  t.equal(calls.length, 3, 'one question to Duo per typed code');
  const [challengeRecord] = await auditRecords(h.store);
  t.match(challengeRecord, { provider: 'duo', phone: null }, 'Duo texts the number it has: none of ours recorded');
});
