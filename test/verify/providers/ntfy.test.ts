/**
 * The ntfy push provider against the ntfy fake (server + phone) and the real callback listener:
 * every answer a phone can give, number matching, expiry, and the single-use rules of the
 * answer URLs (forged → 403, replayed or second button → 409).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { request } from 'undici';
import type { ResolvedProvider } from '../../../src/config/config.js';
import { DataKeys } from '../../../src/crypto/keys.js';
import { ProviderRejectedError, ProviderUnavailableError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import type { Store } from '../../../src/store/store.js';
import { openSqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { CallbackServer } from '../../../src/verify/callback-server.js';
import { CallbackTokens } from '../../../src/verify/callback-tokens.js';
import { NtfyProvider } from '../../../src/verify/providers/ntfy.js';
import type { ApprovalRequest, NumberMatch } from '../../../src/verify/providers/provider.js';
import { startNtfyFake, type NtfyFake, type NtfyFakeOptions } from '../../fakes/ntfy.js';
import { freePort } from '../../peers/ports.js';
import { tempDir } from '../../peers/temp.js';

type NtfyConfig = Extract<ResolvedProvider, { type: 'ntfy' }>;

interface Rig {
  readonly fake: NtfyFake;
  readonly provider: NtfyProvider;
  readonly publicUrl: string;
  /** Another provider on the same fake, store and listener-less, with other settings. */
  providerWith(over: Partial<NtfyConfig>): NtfyProvider;
}

let store: Store;
let tokens: CallbackTokens;

t.before(async () => {
  const dir = tempDir('ntfy-test');
  store = await openSqliteStore({ path: join(dir.path, 'gw.db') });
  tokens = new CallbackTokens(new DataKeys(randomBytes(32)), store);
  t.teardown(async () => {
    await store.close();
    dir.cleanup();
  });
});

async function rig(t: Test, fakeOpts: NtfyFakeOptions = {}, over: Partial<NtfyConfig> = {}): Promise<Rig> {
  const fake = await startNtfyFake(fakeOpts);
  const port = await freePort('tcp');
  const publicUrl = `http://127.0.0.1:${port}`;
  const config = (o: Partial<NtfyConfig>): NtfyConfig => ({
    type: 'ntfy',
    name: 'ntfy',
    base_url: fake.url,
    access_token: undefined,
    priority: 5,
    timeout_ms: 1000,
    retries: 0,
    breaker_failures: 50,
    breaker_cooldown_seconds: 30,
    ca: undefined,
    ...o,
  });
  const deps = { log: silentLogger(), tokens, publicUrl, now: Date.now };
  const provider = new NtfyProvider(config(over), deps);
  const server = new CallbackServer({
    http: { listen: [{ address: '127.0.0.1', port }], public_url: undefined, tls: undefined, insecure: true, rate_limit_per_minute: 100000, trust_proxy: [] },
    log: silentLogger(),
  });
  provider.routes(server.routesFor('ntfy'));
  await server.start();
  const extra: NtfyProvider[] = [];
  t.teardown(async () => {
    await provider.close();
    for (const p of extra) await p.close();
    await fake.close();
    await server.close();
  });
  return {
    fake,
    provider,
    publicUrl,
    providerWith(o) {
      const p = new NtfyProvider(config(o), deps);
      extra.push(p);
      return p;
    },
  };
}

function newTopic(): string {
  return `mfa_${randomBytes(24).toString('base64url')}`;
}

function push(to: string, over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    channel: 'push',
    to,
    recipient: { userId: 'u-1', username: 'alice', displayName: 'Alice Example', language: null },
    login: { attemptId: 'att-1', clientName: 'VPN', clientIp: '192.0.2.10', nasIdentifier: null, callingStationId: '198.51.100.7' },
    expiresAt: Date.now() + 10_000,
    signal: new AbortController().signal,
    ...over,
  };
}

const MATCH: NumberMatch = { correct: 42, choices: [17, 42, 86] };

async function post(url: string, body = '', headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const res = await request(url, { method: 'POST', body, headers });
  return { status: res.statusCode, body: await res.body.text() };
}

t.test('approve: the publish is ntfy JSON with three http buttons; pressing Approve approves', async (t) => {
  const { fake, provider, publicUrl } = await rig(t);
  const topic = newTopic();
  const started = await provider.startApproval(push(topic));
  const outcome = await started.outcome;
  t.equal(outcome.result, 'approved');

  const [record] = fake.records;
  t.ok(record);
  if (record === undefined) return;
  t.equal(started.messageId, record.id, 'messageId is the id ntfy answered');
  t.equal(record.topic, topic);
  t.equal(record.title, 'Sign-in request');
  t.equal(record.message, 'VPN login for alice from 198.51.100.7');
  t.equal(record.priority, 5);
  t.same(record.tags, ['lock']);
  t.equal(record.authenticated, false);
  t.ok(record.click?.startsWith(`${publicUrl}/callbacks/ntfy/page/`), 'click opens the gateway page');
  t.same(
    record.actions?.map((a) => [a.action, a.label, a.method, a.clear]),
    [
      ['http', 'Approve', 'POST', true],
      ['http', 'Deny', 'POST', true],
      ['http', 'Not me', 'POST', true],
    ],
  );
  for (const a of record.actions ?? []) t.ok(a.url?.startsWith(`${publicUrl}/callbacks/ntfy/answer/`), `${a.label} posts to an answer URL`);
  const urls = new Set(record.actions?.map((a) => a.url));
  t.equal(urls.size, 3, 'one token per button');

  const pressed = await fake.waitForPress(record.id);
  t.equal(pressed.label, 'Approve');
  t.equal(pressed.status, 200);
  t.match(pressed.body, /^Approved/);
  t.equal(provider.pendingCount, 0, 'nothing left pending');
});

t.test('deny and fraud buttons', async (t) => {
  const { fake, provider } = await rig(t);
  const denier = newTopic();
  const reporter = newTopic();
  fake.setBehaviour(denier, { kind: 'deny' });
  fake.setBehaviour(reporter, { kind: 'fraud', delayMs: 20 });
  const [denied, reported] = await Promise.all([provider.startApproval(push(denier)), provider.startApproval(push(reporter))]);
  t.equal((await denied.outcome).result, 'denied');
  t.equal((await reported.outcome).result, 'fraud');
  await fake.idle();
  t.same(
    fake.presses.map((p) => [p.label, p.status]).sort(),
    [
      ['Deny', 200],
      ['Not me', 200],
    ],
  );
});

t.test('number matching: the buttons are the numbers; the right one approves, another is wrong_number', async (t) => {
  const { fake, provider } = await rig(t);
  const right = newTopic();
  const wrong = newTopic();
  fake.setBehaviour(right, { kind: 'pick', number: 42 });
  fake.setBehaviour(wrong, { kind: 'pick', number: 86 });
  const a = await provider.startApproval(push(right, { numberMatch: MATCH }));
  const b = await provider.startApproval(push(wrong, { numberMatch: MATCH }));
  t.same(await a.outcome, { result: 'approved', detail: 'right number picked in the ntfy app' });
  t.equal((await b.outcome).result, 'wrong_number');
  const record = fake.records[0];
  t.same(
    record?.actions?.map((x) => x.label),
    ['17', '42', '86'],
    'the choices, in their order',
  );
  t.notMatch(record?.message ?? '', /42/, 'the push does not give the number away');
});

t.test('number matching: a phone that must learn the number waits for it; wrong_number picks another', async (t) => {
  const { fake, provider } = await rig(t);
  const approver = newTopic();
  const mistaken = newTopic();
  fake.setBehaviour(mistaken, { kind: 'wrong_number' });
  const a = await provider.startApproval(push(approver, { numberMatch: MATCH }));
  const b = await provider.startApproval(push(mistaken, { numberMatch: MATCH }));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(provider.pendingCount, 2, 'both wait while the phones do not know the number');
  fake.showNumber(approver, 42);
  fake.showNumber(mistaken, 42);
  t.equal((await a.outcome).result, 'approved');
  t.equal((await b.outcome).result, 'wrong_number');
});

t.test('number matching: deny and fraud go through the click page, whose GET changes nothing', async (t) => {
  const { fake, provider } = await rig(t);
  const topic = newTopic();
  fake.setBehaviour(topic, { kind: 'no_answer' });
  const started = await provider.startApproval(push(topic, { numberMatch: MATCH }));
  const id = started.messageId ?? '';

  const page = await fake.openPage(id);
  t.equal(page.status, 200);
  t.match(page.body, /VPN login for alice from 198\.51\.100\.7/);
  t.same(
    page.forms.map((f) => [f.method, f.fields.answer, f.button]),
    [
      ['POST', 'deny', 'Deny'],
      ['POST', 'fraud', 'Not me: report fraud'],
    ],
  );
  const again = await fake.openPage(id);
  t.equal(again.status, 200, 'opening the page twice is harmless');
  t.equal(provider.pendingCount, 1, 'still pending after two GETs');

  const reported = await fake.submitPageForm(id, 'fraud');
  t.equal(reported.status, 200);
  t.same(await started.outcome, { result: 'fraud', detail: 'reported as not me in the ntfy app' });

  const late = await fake.submitPageForm(id, 'deny').catch((err: unknown) => err);
  t.match(String(late), /no 'deny' form/, 'the page of an answered push offers nothing');

  // The phone behaviour does the same on its own.
  const denier = newTopic();
  fake.setBehaviour(denier, { kind: 'deny' });
  const denied = await provider.startApproval(push(denier, { numberMatch: MATCH }));
  t.equal((await denied.outcome).result, 'denied');
  t.equal((await fake.waitForPress(denied.messageId ?? '')).label, 'page:deny');
});

t.test('timeout: no answer until expiresAt, or the login gives up; a late press is refused', async (t) => {
  const { fake, provider } = await rig(t);
  const topic = newTopic();
  fake.setBehaviour(topic, { kind: 'no_answer' });
  const started = await provider.startApproval(push(topic, { expiresAt: Date.now() + 200 }));
  t.equal((await started.outcome).result, 'timeout');
  t.equal(provider.pendingCount, 0);
  const late = await fake.press(started.messageId ?? '', 'Approve');
  t.equal(late.status, 403, 'the token expired with the push');

  const abort = new AbortController();
  const waiting = await provider.startApproval(push(topic, { signal: abort.signal }));
  abort.abort();
  t.same(await waiting.outcome, { result: 'timeout', detail: 'the login stopped waiting' });
  const after = await fake.press(waiting.messageId ?? '', 'Approve');
  t.equal(after.status, 409, 'a press after the login gave up is not counted');
});

t.test('answer URLs: forged → 403, replayed → 409, the second button → 409', async (t) => {
  const { fake, provider, publicUrl } = await rig(t);
  const topic = newTopic();
  fake.setBehaviour(topic, { kind: 'no_answer' });
  const started = await provider.startApproval(push(topic));
  const record = fake.records[0];
  const approve = record?.actions?.find((a) => a.label === 'Approve')?.url ?? '';
  const token = approve.split('/').at(-1) ?? '';

  // A character inside the MAC (the last one of base64url's 22 carries padding bits only).
  const at = token.length - 5;
  const flipped = `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
  t.equal((await post(`${publicUrl}/callbacks/ntfy/answer/${flipped}`)).status, 403, 'altered MAC');
  t.equal((await post(`${publicUrl}/callbacks/ntfy/answer/not-a-token`)).status, 403, 'garbage');
  const pageToken = record?.click?.split('/').at(-1) ?? '';
  t.equal((await post(`${publicUrl}/callbacks/ntfy/answer/${pageToken}`)).status, 403, 'a page token is not an answer');
  t.equal((await post(`${publicUrl}/callbacks/ntfy/answer/${token}`, 'pick=42', { 'content-type': 'application/x-www-form-urlencoded' })).status, 200, 'a wrong hint does not matter: the approve token still verifies as approve');
  t.equal((await started.outcome).result, 'approved');

  const replay = await fake.press(record?.id ?? '', 'Approve');
  t.equal(replay.status, 409, 'replayed press');
  t.match(replay.body, /already answered/);
  const second = await fake.press(record?.id ?? '', 'Deny');
  t.equal(second.status, 409, 'the other button of an answered push');

  // Number matching: a pick token cannot be turned into another number.
  const other = newTopic();
  fake.setBehaviour(other, { kind: 'no_answer' });
  const matched = await provider.startApproval(push(other, { numberMatch: MATCH }));
  const seventeen = fake.records.at(-1)?.actions?.find((a) => a.label === '17')?.url ?? '';
  const forgedPick = await post(seventeen, 'pick=42', { 'content-type': 'application/x-www-form-urlencoded' });
  t.equal(forgedPick.status, 403, 'the 17 token with a 42 hint');
  t.equal(provider.pendingCount, 1);
  const first = await fake.press(matched.messageId ?? '', '86');
  t.equal(first.status, 200);
  t.equal((await matched.outcome).result, 'wrong_number');
  t.equal((await fake.press(matched.messageId ?? '', '42')).status, 409, 'no second try after a wrong number');
});

t.test('access token: required by the server; wrong → 401, missing → 403, right → published', async (t) => {
  const accessToken = `tk_${randomBytes(16).toString('hex')}`;
  const r = await rig(t, { accessToken }, { access_token: accessToken });
  const topic = newTopic();
  t.equal((await (await r.provider.startApproval(push(topic))).outcome).result, 'approved');
  t.equal(r.fake.records[0]?.authenticated, true);

  const anonymous = r.providerWith({});
  const missing = await anonymous.startApproval(push(topic)).catch((err: unknown) => err);
  t.ok(missing instanceof ProviderRejectedError, 'no token: rejected');
  t.equal((missing as ProviderRejectedError).providerCode, '40301');
  t.equal(anonymous.pendingCount, 0, 'a refused push is not left pending');

  const wrong = r.providerWith({ access_token: 'tk_wrongwrongwrongwrongwrongwrong' });
  const bad = await wrong.startApproval(push(topic)).catch((err: unknown) => err);
  t.ok(bad instanceof ProviderRejectedError, 'wrong token: rejected');
  t.equal((bad as ProviderRejectedError).providerCode, '40101');
  t.notMatch((bad as Error).message, /tk_/, 'the token is not in the error');
  t.same(
    r.fake.refusals.map((x) => x.status),
    [403, 401],
  );
});

t.test('faults: 5xx, 429, a hanging server → unavailable; a bad topic → rejected without a request', async (t) => {
  const { fake, provider } = await rig(t);
  const topic = newTopic();
  fake.failNext(1, 500);
  await t.rejects(provider.startApproval(push(topic)), ProviderUnavailableError);
  fake.failNext(1, 429);
  await t.rejects(provider.startApproval(push(topic)), ProviderUnavailableError);
  fake.hang(true);
  await t.rejects(provider.startApproval(push(topic)), ProviderUnavailableError);
  fake.hang(false);
  t.equal(provider.pendingCount, 0);

  const before = fake.records.length + fake.refusals.length;
  await t.rejects(provider.startApproval(push('not a topic!')), ProviderRejectedError);
  await t.rejects(provider.startApproval(push(topic, { numberMatch: { correct: 5, choices: [1, 2, 3] } })), ProviderRejectedError);
  t.equal(fake.records.length + fake.refusals.length, before, 'nothing was sent');
  t.equal((await (await provider.startApproval(push(topic))).outcome).result, 'approved', 'works again');
});

t.test('the fake refuses what ntfy refuses', async (t) => {
  const { fake } = await rig(t);
  const send = async (body: unknown) => {
    const res = await request(`${fake.url}/`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: res.statusCode, json: (await res.body.json()) as { code?: number; http?: number; error?: string } };
  };
  const action = { action: 'http', label: 'x', url: 'http://127.0.0.1:1/' };
  t.equal((await send({ topic: 'bad topic', message: 'x' })).json.code, 40009);
  t.equal((await send({ topic: 'ok', priority: 6 })).json.code, 40007);
  t.equal((await send({ topic: 'ok', actions: [action, action, action, action] })).json.code, 40018);
  t.equal((await send({ topic: 'ok', actions: [{ action: 'http', label: 'x' }] })).json.code, 40018);
  t.equal((await send({ topic: 'ok', actions: [{ ...action, method: 'GET', body: 'x' }] })).json.code, 40018);
  t.equal((await send({ topic: 'ok', priority: '5' })).json.code, 40024);
  const ok = await send({ topic: 'ok', message: '' });
  t.equal(ok.status, 200);
  t.match(ok.json, { event: 'message', topic: 'ok', message: 'triggered' });
});

t.test('close settles pending pushes as timeout; many pushes pending at once', async (t) => {
  const { fake, provider } = await rig(t);
  fake.setDefaultBehaviour({ kind: 'no_answer' });
  const started = await Promise.all(Array.from({ length: 300 }, () => provider.startApproval(push(newTopic()))));
  t.equal(provider.pendingCount, 300);
  fake.setDefaultBehaviour({ kind: 'approve', delayMs: 5 });
  const approved = await Promise.all(Array.from({ length: 300 }, () => provider.startApproval(push(newTopic()))));
  const results = await Promise.all(approved.map((s) => s.outcome));
  t.ok(
    results.every((o) => o.result === 'approved'),
    '300 concurrent approvals',
  );
  await provider.close();
  const closed = await Promise.all(started.map((s) => s.outcome));
  t.ok(closed.every((o) => o.result === 'timeout'));
  t.equal(provider.pendingCount, 0);
});
