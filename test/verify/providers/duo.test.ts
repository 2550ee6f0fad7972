import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { request } from 'undici';
import type { ResolvedProvider } from '../../../src/config/config.js';
import { ProviderRejectedError, ProviderUnavailableError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { CallbackTokens } from '../../../src/verify/callback-tokens.js';
import { DuoProvider } from '../../../src/verify/providers/duo.js';
import {
  basicAuthorization,
  canonDuoHeaders,
  canonicalizeV2,
  canonicalizeV5,
  canonJson,
  canonParams,
  rfc2822Date,
  signatureHex,
  signV5,
} from '../../../src/verify/providers/duo-signature.js';
import type { ApprovalRequest, LoginContext, ProviderCodeCheck, ProviderCodeRequest } from '../../../src/verify/providers/provider.js';
import { startDuoFake, type DuoFake, type DuoFakeOptions } from '../../fakes/duo.js';

// The example credentials of Duo's documentation (not a real account).
const IKEY = 'DIWJ8X6AEYOR5OMC6TQ1';
const SKEY = 'Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep';
const HOST = 'api-xxxxxxxx.duosecurity.com';

t.test('signature canonicalisation against Duo\'s published examples', async (t) => {
  t.test('the documented example (v2, HMAC-SHA1)', async (t) => {
    // duo.com/docs/authapi "Authentication": the five lines and the resulting Basic header.
    const canonical = canonicalizeV2({
      date: 'Tue, 21 Aug 2012 17:29:18 -0000',
      method: 'POST',
      host: 'api-XXXXXXXX.duosecurity.com',
      path: '/accounts/v1/account/list',
      params: { username: 'root', realname: 'First Last' },
    });
    t.equal(canonical, 'Tue, 21 Aug 2012 17:29:18 -0000\nPOST\napi-xxxxxxxx.duosecurity.com\n/accounts/v1/account/list\nrealname=First%20Last&username=root');
    const sig = signatureHex('sha1', SKEY, canonical);
    t.equal(sig, '2d97d6166319781b5a3a07af39d366f491234edc');
    t.equal(basicAuthorization(IKEY, sig), 'Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6MmQ5N2Q2MTY2MzE5NzgxYjVhM2EwN2FmMzlkMzY2ZjQ5MTIzNGVkYw==');
  });

  t.test('duo_client_python vectors (v2 canonical form, HMAC-SHA1 and HMAC-SHA512)', async (t) => {
    const params = {
      '\u469a\u287b\u35d0\u8ef3\u6727\u502a\u0810\ud091\xc8\uc170': '\u0f45\u1a76\u341a\u654c\uc23f\u9b09\uabe2\u8343\u1b27\u60d0',
      '\u7449\u7e4b\uccfb\u59ff\ufe5f\u83b7\uadcc\u900c\ucfd1\u7813': '\u8db7\u5022\u92d3\u42ef\u207d\u8730\uacfe\u5617\u0946\u4e30',
      '\u7470\u9314\u901c\u9eae\u40d8\u4201\u82d8\u8c70\u1d31\ua042': '\u17d9\u0ba8\u9358\uaadf\ua42a\u48be\ufb96\u6fe9\ub7ff\u32f3',
      '\uc2c5\u2c1d\u2620\u3617\u96b3F\u8605\u20e8\uac21\u5934': '\ufba9\u41aa\ubd83\u840b\u2615\u3e6e\u652d\ua8b5\ud56bU',
    };
    const canonical = canonicalizeV2({ date: 'Fri, 07 Dec 2012 17:18:00 -0000', method: 'PoSt', host: 'foO.BAr52.cOm', path: '/Foo/BaR2/qux', params });
    t.equal(
      canonical,
      'Fri, 07 Dec 2012 17:18:00 -0000\nPOST\nfoo.bar52.com\n/Foo/BaR2/qux\n' +
        '%E4%9A%9A%E2%A1%BB%E3%97%90%E8%BB%B3%E6%9C%A7%E5%80%AA%E0%A0%90%ED%82%91%C3%88%EC%85%B0=%E0%BD%85%E1%A9%B6%E3%90%9A%E6%95%8C%EC%88%BF%E9%AC%89%EA%AF%A2%E8%8D%83%E1%AC%A7%E6%83%90' +
        '&%E7%91%89%E7%B9%8B%EC%B3%BB%E5%A7%BF%EF%B9%9F%E8%8E%B7%EA%B7%8C%E9%80%8C%EC%BF%91%E7%A0%93=%E8%B6%B7%E5%80%A2%E9%8B%93%E4%8B%AF%E2%81%BD%E8%9C%B0%EA%B3%BE%E5%98%97%E0%A5%86%E4%B8%B0' +
        '&%E7%91%B0%E9%8C%94%E9%80%9C%E9%BA%AE%E4%83%98%E4%88%81%E8%8B%98%E8%B1%B0%E1%B4%B1%EA%81%82=%E1%9F%99%E0%AE%A8%E9%8D%98%EA%AB%9F%EA%90%AA%E4%A2%BE%EF%AE%96%E6%BF%A9%EB%9F%BF%E3%8B%B3' +
        '&%EC%8B%85%E2%B0%9D%E2%98%A0%E3%98%97%E9%9A%B3F%E8%98%85%E2%83%A8%EA%B0%A1%E5%A4%B4=%EF%AE%A9%E4%86%AA%EB%B6%83%E8%90%8B%E2%98%95%E3%B9%AE%E6%94%AD%EA%A2%B5%ED%95%ABU',
    );
    const skey = 'gtdfxv9YgVBYcF6dl2Eq17KUQJN2PLM2ODVTkvoT';
    t.equal(signatureHex('sha1', skey, canonical), 'f01811cbbf9561623ab45b893096267fd46a5178');
    t.equal(
      signatureHex('sha512', skey, canonical),
      '0508065035a03b2a1de2f453e629e791d180329e157f65df6b3e0f08299d4321e1c5c7a7c7ee6b9e5fc80d1fb6fbf3ad5eb7c44dd3b3985a02c37aca53ec3698',
    );
  });

  t.test('parameter encoding and order', async (t) => {
    const table: [Record<string, string>, string][] = [
      [{}, ''],
      [{ realname: 'First Last' }, 'realname=First%20Last'],
      [{ foo_bar: '2', foo: '1' }, 'foo=1&foo_bar=2'],
      [{ ip_whitelist_enroll_policy: '2', ip_whitelist: '1' }, 'ip_whitelist=1&ip_whitelist_enroll_policy=2'],
      [
        { digits: '0123456789', letters: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ', punctuation: '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', whitespace: '\t\n\x0b\x0c\r ' },
        'digits=0123456789&letters=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ&punctuation=%21%22%23%24%25%26%27%28%29%2A%2B%2C-.%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~&whitespace=%09%0A%0B%0C%0D%20',
      ],
    ];
    for (const [params, expected] of table) t.equal(canonParams(params), expected, JSON.stringify(params));
  });

  t.test('version 5: body and X-Duo-* header hashes (duo_client_python vector)', async (t) => {
    const sha512 = (s: string): string => createHash('sha512').update(s, 'utf8').digest('hex');
    t.equal(
      sha512(canonDuoHeaders({ 'X-Duo-Header-1': 'header_value_1' })),
      '630b4bfe7e9abd03da2eee8f0a5d4e60a254ec880a839bcc2223bb5b9443e8ef24d58f0254f1f5934bf8c017ebd0fd5b1acf86766bdbe74185e712a4092df3ed',
    );
    const body = canonJson({ username: 'root', factor: 'push', async: '1' });
    t.equal(body, '{"async":"1","factor":"push","username":"root"}');
    t.equal(
      canonicalizeV5({ date: 'Tue, 17 Nov 2020 14:12:00 -0000', method: 'post', host: 'foO.BaR52.cOm', path: '/Foo/BaR2/qux', params: {}, body }),
      `Tue, 17 Nov 2020 14:12:00 -0000\nPOST\nfoo.bar52.com\n/Foo/BaR2/qux\n\n${sha512(body)}\n${sha512('')}`,
    );
  });

  t.test('dates and the assembled request', async (t) => {
    t.equal(rfc2822Date(Date.UTC(2012, 7, 21, 17, 29, 18)), 'Tue, 21 Aug 2012 17:29:18 -0000');
    const now = Date.UTC(2020, 10, 17, 14, 12, 0);
    const get = signV5({ integrationKey: IKEY, secretKey: SKEY, host: 'API-XXXXXXXX.duosecurity.com', method: 'GET', path: '/auth/v2/auth_status', params: { txid: 'a b' }, now });
    t.equal(get.path, '/auth/v2/auth_status?txid=a%20b');
    t.equal(get.body, undefined);
    t.equal(get.headers['date'], 'Tue, 17 Nov 2020 14:12:00 -0000');
    const canonical = canonicalizeV5({ date: 'Tue, 17 Nov 2020 14:12:00 -0000', method: 'GET', host: HOST, path: '/auth/v2/auth_status', params: { txid: 'a b' }, body: '' });
    t.equal(get.headers['authorization'], basicAuthorization(IKEY, signatureHex('sha512', SKEY, canonical)));
    const post = signV5({ integrationKey: IKEY, secretKey: SKEY, host: HOST, method: 'POST', path: '/auth/v2/preauth', params: { username: 'root' }, now });
    t.equal(post.path, '/auth/v2/preauth');
    t.equal(post.body, '{"username":"root"}');
    t.equal(post.headers['content-type'], 'application/json');
  });
});

t.test('the fake checks signatures the way Duo does', async (t) => {
  const fake = await startDuoFake({ ikey: IKEY, skey: SKEY, host: HOST });
  t.teardown(() => fake.close());
  const send = async (opts: { method: 'GET' | 'POST'; path: string; form?: Record<string, string>; digest?: 'sha1' | 'sha512'; skey?: string; ikey?: string; date?: string; tamper?: boolean }) => {
    const date = opts.date ?? rfc2822Date(Date.now());
    const params = opts.form ?? {};
    const sig = signatureHex(opts.digest ?? 'sha1', opts.skey ?? SKEY, canonicalizeV2({ date, method: opts.method, host: HOST, path: opts.path, params }));
    const body = new URLSearchParams(params).toString();
    const sent = opts.tamper === true ? `${body}x` : body;
    const res = await request(`${fake.url}${opts.path}${opts.method === 'GET' && body !== '' ? `?${body}` : ''}`, {
      method: opts.method,
      headers: { date, authorization: basicAuthorization(opts.ikey ?? IKEY, sig), ...(opts.method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(opts.method === 'POST' ? { body: sent } : {}),
    });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  };

  t.match(await send({ method: 'GET', path: '/auth/v2/check' }), { status: 200, json: { stat: 'OK', response: { time: Number } } }, 'v2 HMAC-SHA1');
  t.equal(fake.records.at(-1)?.signature, 'v2-sha1');
  t.equal((await send({ method: 'POST', path: '/auth/v2/preauth', form: { username: 'jo smith@example.com' }, digest: 'sha512' })).status, 200, 'v2 HMAC-SHA512, form body with + for spaces');
  t.equal(fake.records.at(-1)?.signature, 'v2-sha512');
  t.match(await send({ method: 'POST', path: '/auth/v2/preauth', form: { username: 'jo' }, tamper: true }), {
    status: 401,
    json: { stat: 'FAIL', code: 40103, message: 'Invalid signature in request credentials' },
  });
  t.match((await send({ method: 'GET', path: '/auth/v2/check', skey: 'x'.repeat(40) })).json, { code: 40103 });
  t.match((await send({ method: 'GET', path: '/auth/v2/check', ikey: 'DIXXXXXXXXXXXXXXXXXX' })).json, { code: 40102 });
  t.match((await send({ method: 'GET', path: '/auth/v2/check', date: rfc2822Date(Date.now() - 3_600_000) })).json, { code: 40105 });
  t.match((await send({ method: 'POST', path: '/auth/v2/auth', form: { username: 'jo' } })).json, { code: 40001, message_detail: 'factor' });
  t.match((await send({ method: 'POST', path: '/auth/v2/auth', form: { username: 'jo', factor: 'carrier-pigeon' } })).json, { code: 40002, message_detail: 'factor' });
  t.match((await send({ method: 'POST', path: '/auth/v2/preauth', form: { username: 'jo', ipaddr: 'not-an-ip' } })).json, { code: 40002, message_detail: 'ipaddr' });
  t.match((await send({ method: 'GET', path: '/auth/v2/preauth' })), { status: 405 });
  const unsigned = await request(`${fake.url}/auth/v2/check`);
  t.equal(unsigned.statusCode, 401);
  t.match(await unsigned.body.json(), { code: 40101 });
  const ping = await request(`${fake.url}/auth/v2/ping`);
  t.equal(ping.statusCode, 200, 'ping needs no signature');
  await ping.body.dump();
});

interface Setup {
  readonly fake: DuoFake;
  readonly provider: DuoProvider;
}

async function setup(t: Test, fakeOpts: Partial<DuoFakeOptions> = {}, overrides: Partial<Extract<ResolvedProvider, { type: 'duo' }>> = {}): Promise<Setup> {
  const fake = await startDuoFake({ ikey: IKEY, skey: SKEY, host: HOST, duoTimeoutMs: 5000, ...fakeOpts });
  const provider = new DuoProvider(
    {
      type: 'duo',
      name: 'duo',
      // Mixed case on purpose: the signature lowercases it, as Duo's does.
      api_host: 'API-XXXXXXXX.duosecurity.com',
      integration_key: IKEY,
      secret_key: SKEY,
      base_url: fake.url,
      timeout_ms: 2000,
      retries: 0,
      breaker_failures: 5,
      breaker_cooldown_seconds: 30,
      ca: undefined,
      ...overrides,
    },
    // Duo hands out no callback URLs, so the token issuer is never used.
    { log: silentLogger(), tokens: {} as CallbackTokens, publicUrl: undefined, now: Date.now },
  );
  t.teardown(async () => {
    await provider.close();
    await fake.close();
  });
  return { fake, provider };
}

const login = (over: Partial<LoginContext> = {}): LoginContext => ({
  attemptId: 'att-1',
  clientName: 'vpn-east',
  clientIp: '192.0.2.10',
  nasIdentifier: 'asa-1',
  callingStationId: '198.51.100.7',
  ...over,
});

function approval(to: string, opts: { channel?: 'push' | 'phone'; ttlMs?: number; signal?: AbortSignal; login?: LoginContext } = {}): ApprovalRequest {
  return {
    channel: opts.channel ?? 'push',
    to,
    recipient: { userId: `u-${to}`, username: to, displayName: 'Jo Smith', language: null },
    login: opts.login ?? login(),
    expiresAt: Date.now() + (opts.ttlMs ?? 10_000),
    signal: opts.signal ?? new AbortController().signal,
  };
}

t.test('push: approve, deny, fraud, no answer', async (t) => {
  const { fake, provider } = await setup(t, { duoTimeoutMs: 400 });
  fake.setBehaviour('alice', { answer: { kind: 'approve', delayMs: 150 } });
  fake.setBehaviour('bob', { answer: { kind: 'deny' } });
  fake.setBehaviour('carol', { answer: { kind: 'fraud', delayMs: 50 } });
  fake.setBehaviour('dave', { answer: { kind: 'no_answer' } });

  const started = await provider.startApproval(approval('alice'));
  t.match(started.messageId, /^[0-9a-f-]{36}$/, 'the txid is the message id');
  t.same(await started.outcome, { result: 'approved', detail: 'duo allow: Success. Logging you in...' });
  const preauth = fake.records.find((r) => r.endpoint === '/auth/v2/preauth');
  t.same(preauth?.params, { username: 'alice', ipaddr: '198.51.100.7' });
  t.equal(preauth?.signature, 'v5');
  const auth = fake.records.find((r) => r.endpoint === '/auth/v2/auth');
  t.same(auth?.params, {
    username: 'alice',
    factor: 'push',
    device: 'auto',
    async: '1',
    ipaddr: '198.51.100.7',
    type: 'Login request',
    display_username: 'Jo Smith',
    pushinfo: 'client=vpn-east&from=198.51.100.7',
  });
  t.ok(fake.count('/auth/v2/auth_status') <= 3, `auth_status is a long poll, not a busy loop (${fake.count('/auth/v2/auth_status')} polls)`);

  t.same(await (await provider.startApproval(approval('bob'))).outcome, { result: 'denied', detail: 'duo deny: Login request denied.' });
  t.equal((await (await provider.startApproval(approval('carol'))).outcome).result, 'fraud');
  t.same(await (await provider.startApproval(approval('dave'))).outcome, { result: 'timeout', detail: 'duo timeout: Login timed out.' }, "Duo's own timeout");
});

t.test('push: no ipaddr when Calling-Station-Id is not an address', async (t) => {
  const { fake, provider } = await setup(t);
  const started = await provider.startApproval(approval('erin', { login: login({ callingStationId: '00-11-22-33-44-55' }) }));
  t.equal((await started.outcome).result, 'approved');
  const auth = fake.records.find((r) => r.endpoint === '/auth/v2/auth');
  t.notOk(auth !== undefined && 'ipaddr' in auth.params);
  t.equal(auth?.params['pushinfo'], 'client=vpn-east&from=00-11-22-33-44-55');
});

t.test('phone call: approve after it rang and was answered', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setBehaviour('frank', { answer: { kind: 'approve', delayMs: 200 } });
  const started = await provider.startApproval(approval('frank', { channel: 'phone' }));
  t.same(await started.outcome, { result: 'approved', detail: 'duo allow: Success. Logging you in...' });
  const auth = fake.records.find((r) => r.endpoint === '/auth/v2/auth');
  t.same(auth?.params, { username: 'frank', factor: 'phone', device: 'auto', async: '1', ipaddr: '198.51.100.7' });
});

t.test('preauth: allow (bypass), deny, enroll, no capable device', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setBehaviour('bypass', { enroll: 'allow' });
  fake.setBehaviour('blocked', { enroll: 'deny' });
  fake.setBehaviour('newbie', { enroll: 'enroll' });
  fake.setBehaviour('landline', { capabilities: ['auto', 'phone'] });

  const allowed = await provider.startApproval(approval('bypass'));
  t.equal(allowed.messageId, null);
  t.same(await allowed.outcome, { result: 'approved', detail: 'duo preauth allow: bypass user' });
  t.same(await (await provider.startApproval(approval('blocked'))).outcome, { result: 'denied', detail: 'Your account is disabled. Please contact your administrator.' });
  await t.rejects(provider.startApproval(approval('newbie')), ProviderRejectedError, 'not enrolled in Duo');
  await t.rejects(provider.startApproval(approval('landline')), ProviderRejectedError, 'no push-capable device');
  t.equal(fake.count('/auth/v2/auth'), 0, 'no auth call after a preauth that settles it');
  t.equal((await (await provider.startApproval(approval('landline', { channel: 'phone' }))).outcome).result, 'approved', 'a call works for a phone-only user');
});

t.test('SMS passcodes: Duo sends them, then checks the one typed', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setBehaviour('newbie', { enroll: 'enroll' });
  const signal = new AbortController().signal;
  const recipient = { userId: 'u-gina', username: 'gina', displayName: null, language: null };
  const ask: ProviderCodeRequest = { channel: 'sms', to: 'gina', recipient, login: login(), signal };
  t.same(await provider.requestProviderCode(ask), { messageId: null });
  const sent = fake.records.find((r) => r.endpoint === '/auth/v2/auth');
  t.same(sent?.params, { username: 'gina', factor: 'sms', device: 'auto', ipaddr: '198.51.100.7' });
  const passcode = fake.passcodeFor('gina');
  t.match(passcode, /^\d{7}$/);

  const check = (code: string): ProviderCodeCheck => ({ to: 'gina', code, recipient, login: login(), signal });
  t.equal(await provider.verifyProviderCode(check(passcode === '1234567' ? '7654321' : '1234567')), false, 'wrong passcode');
  t.equal(await provider.verifyProviderCode(check(passcode ?? '')), true, 'right passcode');
  t.equal(await provider.verifyProviderCode(check(passcode ?? '')), false, 'used once only');
  await t.rejects(provider.requestProviderCode({ ...ask, to: 'newbie' }), { name: 'ProviderRejectedError', providerCode: '40002' }, 'Duo refuses users it does not know');
});

t.test('wrong secret key: Duo says 40103, the provider rejects', async (t) => {
  const { provider } = await setup(t, {}, { secret_key: 'x'.repeat(40) });
  await t.rejects(provider.startApproval(approval('alice')), { name: 'ProviderRejectedError', providerCode: '40103' });
});

t.test('outages: 500 and no answer are ProviderUnavailableError', async (t) => {
  const { fake, provider } = await setup(t, {}, { timeout_ms: 300 });
  fake.failNext(1, 500);
  await t.rejects(provider.startApproval(approval('alice')), ProviderUnavailableError);
  fake.hang(true);
  await t.rejects(provider.startApproval(approval('alice')), ProviderUnavailableError);
  fake.hang(false);
});

t.test('a failed poll is retried until the answer comes', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setBehaviour('alice', { answer: { kind: 'approve', delayMs: 600 } });
  const started = await provider.startApproval(approval('alice'));
  fake.failNext(2, 503);
  t.equal((await started.outcome).result, 'approved');
  t.ok(fake.records.filter((r) => r.endpoint === '/auth/v2/auth_status' && r.status === 503).length >= 1, 'polls failed on the way');
});

t.test('a refused poll ends the wait at once', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setBehaviour('alice', { answer: { kind: 'no_answer' } });
  const started = await provider.startApproval(approval('alice'));
  fake.failNext(1, 400);
  const outcome = await started.outcome;
  t.equal(outcome.result, 'timeout');
  t.match(outcome.detail, /refused auth_status/);
});

t.test('polling stops when the login gives up, at expiresAt, and at close', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setBehaviour('alice', { answer: { kind: 'no_answer' } });

  const abort = new AbortController();
  const started = await provider.startApproval(approval('alice', { signal: abort.signal }));
  await sleep(100);
  const at = Date.now();
  abort.abort();
  t.same(await started.outcome, { result: 'timeout', detail: 'login stopped waiting' });
  t.ok(Date.now() - at < 200, 'settled at once');
  const polls = fake.count('/auth/v2/auth_status');
  await sleep(400);
  t.equal(fake.count('/auth/v2/auth_status'), polls, 'no poll after the abort');

  const expiring = await provider.startApproval(approval('alice', { ttlMs: 300 }));
  t.same(await expiring.outcome, { result: 'timeout', detail: 'no answer from Duo before the approval expired' });

  const pending = await provider.startApproval(approval('alice'));
  await provider.close();
  t.same(await pending.outcome, { result: 'timeout', detail: 'provider closed' });
  await t.rejects(provider.startApproval(approval('alice')), ProviderUnavailableError);
});

t.test('many logins wait at once', async (t) => {
  const { fake, provider } = await setup(t);
  fake.setDefaultBehaviour({ answer: { kind: 'approve', delayMs: 1000 } });
  const started = await Promise.all(Array.from({ length: 200 }, (_, i) => provider.startApproval(approval(`user${i}`))));
  t.ok(fake.pendingTransactions() > 0, 'approvals wait for the users');
  const outcomes = await Promise.all(started.map((s) => s.outcome));
  t.ok(outcomes.every((o) => o.result === 'approved'));
  t.ok(fake.count('/auth/v2/auth_status') <= 200 * 3, `polls stay few (${fake.count('/auth/v2/auth_status')})`);
});
