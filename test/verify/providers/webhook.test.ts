/**
 * The webhook provider against a receiver written from the README contract: signed JSON that
 * the receiver verifies, the receiver's id as messageId, 4xx → rejected, 5xx → retried with the
 * same Idempotency-Key and then unavailable, and nothing secret in the logs.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import type { ResolvedProvider } from '../../../src/config/config.js';
import { ProviderRejectedError, ProviderUnavailableError } from '../../../src/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../src/log.js';
import type { CallbackTokens } from '../../../src/verify/callback-tokens.js';
import type { CodeMessage } from '../../../src/verify/providers/provider.js';
import { WebhookProvider, codeText } from '../../../src/verify/providers/webhook.js';
import { startWebhookFake, type WebhookFake } from '../../fakes/webhook.js';

type WebhookConfig = Extract<ResolvedProvider, { type: 'webhook' }>;

const SECRET = randomBytes(24).toString('base64url');
const NUMBER = '+4915112345678';

async function rig(
  t: Test,
  over: Partial<WebhookConfig> = {},
  deps: { log?: Logger; now?: () => number } = {},
): Promise<{ fake: WebhookFake; provider: WebhookProvider }> {
  const fake = await startWebhookFake({ secret: SECRET });
  const provider = new WebhookProvider(
    {
      type: 'webhook',
      name: 'sms-gw',
      url: fake.url,
      secret: SECRET,
      channels: ['sms'],
      timeout_ms: 500,
      retries: 2,
      breaker_failures: 50,
      breaker_cooldown_seconds: 30,
      ca: undefined,
      ...over,
    },
    // The webhook hands out no callback URLs: it never touches the tokens.
    { log: deps.log ?? silentLogger(), tokens: {} as CallbackTokens, publicUrl: undefined, now: deps.now ?? Date.now },
  );
  t.teardown(async () => {
    await provider.close();
    await fake.close();
  });
  return { fake, provider };
}

function code(over: Partial<CodeMessage> = {}): CodeMessage {
  return {
    channel: 'sms',
    to: NUMBER,
    code: '123456',
    ttlSeconds: 300,
    recipient: { userId: 'u-1', username: 'alice', displayName: null, language: null },
    login: { attemptId: 'att-1', clientName: 'VPN', clientIp: '192.0.2.10', nasIdentifier: null, callingStationId: null },
    signal: new AbortController().signal,
    ...over,
  };
}

t.test('delivered: the receiver verifies the signature and gets the documented JSON', async (t) => {
  const { fake, provider } = await rig(t);
  const before = Math.floor(Date.now() / 1000);
  const sent = await provider.sendCode(code());
  t.equal(sent.messageId, 'wh-1', "the receiver's id");
  t.equal(fake.records.length, 1);
  const [m] = fake.records;
  t.match(m, {
    channel: 'sms',
    to: NUMBER,
    code: '123456',
    message: 'Your verification code is 123456. It expires in 5 minutes.',
    ttlSeconds: 300,
    user: 'alice',
  });
  t.ok(m !== undefined && m.timestamp >= before && m.timestamp <= before + 2, 'epoch seconds');
  t.equal(m?.idempotencyKey, m?.id, 'Idempotency-Key is the message id');
  t.equal(fake.lastCodeSentTo(NUMBER), '123456');
  t.equal((await fake.waitForMessage(NUMBER)).code, '123456');
  t.same(fake.requests, [{ status: 200, reason: '', idempotencyKey: m?.id }]);
});

t.test('voice when configured; a channel not configured is refused without a request', async (t) => {
  const { fake, provider } = await rig(t, { channels: ['voice'] });
  t.same([...provider.codeChannels], ['voice']);
  await provider.sendCode(code({ channel: 'voice', code: '987654', ttlSeconds: 60 }));
  t.match(fake.records[0], { channel: 'voice', code: '987654', message: 'Your verification code is 987654. It expires in 1 minute.' });
  await t.rejects(provider.sendCode(code({ channel: 'sms' })), ProviderRejectedError);
  await t.rejects(provider.sendCode(code({ channel: 'voice', to: '015112345678' })), ProviderRejectedError, 'not E.164');
  t.equal(fake.requests.length, 1);
});

t.test('a receiver answering without an id: messageId is ours', async (t) => {
  const fake = await startWebhookFake({ secret: SECRET, answerWithId: false, path: '/hook/send' });
  const provider = new WebhookProvider(
    { type: 'webhook', name: 'gw', url: `${fake.url}?account=7`, secret: SECRET, channels: ['sms'], timeout_ms: 500, retries: 0, breaker_failures: 5, breaker_cooldown_seconds: 30, ca: undefined },
    { log: silentLogger(), tokens: {} as CallbackTokens, publicUrl: undefined, now: Date.now },
  );
  t.teardown(async () => {
    await provider.close();
    await fake.close();
  });
  const sent = await provider.sendCode(code());
  t.equal(sent.messageId, fake.records[0]?.id, 'the id we sent (path and query of the URL kept)');
});

t.test('wrong secret, stale clock, refused number → ProviderRejectedError (not retried)', async (t) => {
  const wrong = await rig(t, { secret: 'another-secret-another-secret-another' });
  const err = await wrong.provider.sendCode(code()).catch((e: unknown) => e);
  t.ok(err instanceof ProviderRejectedError);
  t.equal((err as ProviderRejectedError).providerCode, '401');
  t.same(
    wrong.fake.requests.map((r) => [r.status, r.reason]),
    [[401, 'bad signature']],
  );

  const stale = await rig(t, {}, { now: () => Date.now() - 10 * 60_000 });
  await t.rejects(stale.provider.sendCode(code()), ProviderRejectedError);
  t.same(
    stale.fake.requests.map((r) => r.reason),
    ['stale timestamp'],
  );

  const refused = await rig(t);
  refused.fake.setBehaviour(NUMBER, { kind: 'reject', status: 422 });
  const e422 = await refused.provider.sendCode(code()).catch((e: unknown) => e);
  t.equal((e422 as ProviderRejectedError).providerCode, '422');
  t.equal(refused.fake.records.length, 0);
});

t.test('500 → retried with the same Idempotency-Key, then ProviderUnavailableError', async (t) => {
  const { fake, provider } = await rig(t);
  fake.failNext(3, 500);
  await t.rejects(provider.sendCode(code()), ProviderUnavailableError);
  t.equal(fake.requests.length, 3, 'one try and two retries');
  t.equal(new Set(fake.requests.map((r) => r.idempotencyKey)).size, 1, 'the same key on every try');

  fake.failNext(1, 503);
  const sent = await provider.sendCode(code({ code: '222333' }));
  t.equal(sent.messageId, 'wh-1', 'delivered on the retry');
  t.equal(fake.records.length, 1);
  t.equal(fake.lastCodeSentTo(NUMBER), '222333');

  fake.hang(true);
  await t.rejects(provider.sendCode(code()), ProviderUnavailableError, 'no answer → unavailable');
  fake.hang(false);
});

t.test('message text: minutes when whole, else seconds', async (t) => {
  t.equal(codeText('12345678', 600), 'Your verification code is 12345678. It expires in 10 minutes.');
  t.equal(codeText('123456', 90), 'Your verification code is 123456. It expires in 90 seconds.');
});

t.test('logs: no code, no secret, the number masked', async (t) => {
  let output = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      output += chunk.toString();
      done();
    },
  });
  const { fake, provider } = await rig(t, { retries: 0 }, { log: createLogger({ level: 'debug' }, sink) });
  await provider.sendCode(code({ code: '918273' }));
  fake.setBehaviour(NUMBER, { kind: 'reject' });
  await t.rejects(provider.sendCode(code({ code: '918273' })));
  t.match(output, /\+\*{9}5678/, 'masked number');
  t.notMatch(output, /918273/);
  t.notMatch(output, new RegExp(SECRET));
  t.notMatch(output, /4915112345678/);
});
