/**
 * The Twilio provider against the Twilio fake (REST API + the phone user) and the real callback
 * listener, over loopback HTTP: SMS and voice codes, phone approvals (# / 0 / other key / no
 * answer / busy / hang-up, PIN right / wrong / change), two-way SMS, API errors and the circuit
 * breaker, and the callback defences (X-Twilio-Signature, AccountSid, single-use gather tokens).
 * The signature algorithm is checked against Twilio's documented examples.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import type { ResolvedProvider } from '../../../src/config/config.js';
import { DataKeys } from '../../../src/crypto/keys.js';
import { ProviderRejectedError, ProviderUnavailableError } from '../../../src/errors.js';
import { createLogger, type Logger } from '../../../src/log.js';
import type { Store } from '../../../src/store/store.js';
import { openSqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { CallbackServer } from '../../../src/verify/callback-server.js';
import { CallbackTokens } from '../../../src/verify/callback-tokens.js';
import type { ApprovalOutcome, ApprovalRequest, CodeMessage, LoginContext, PinCheck, Recipient } from '../../../src/verify/providers/provider.js';
import { twilioSignature, verifyTwilioSignature } from '../../../src/verify/providers/twilio-signature.js';
import { TwilioProvider } from '../../../src/verify/providers/twilio.js';
import { startTwilioFake, twilioSignature as fakeSignature, type TwilioFake } from '../../fakes/twilio.js';
import { freePort } from '../../peers/ports.js';
import { tempDir } from '../../peers/temp.js';

type TwilioConfig = Extract<ResolvedProvider, { type: 'twilio' }>;

const ACCOUNT_SID = `AC${randomBytes(16).toString('hex')}`;
const AUTH_TOKEN = `tok${randomBytes(14).toString('hex')}`;
const FROM = '+15005550006';
const CLIENT = 'Staff VPN';

/** Everything every provider in this file logged, to check no secret ever went out. */
const logLines: string[] = [];
const log: Logger = createLogger({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
/** Codes and PINs used in this file (never to be logged). */
const secrets = new Set<string>([AUTH_TOKEN]);

let store: Store;
let tokens: CallbackTokens;

t.before(async () => {
  const dir = tempDir('twilio-test');
  store = await openSqliteStore({ path: join(dir.path, 'gw.db') });
  tokens = new CallbackTokens(new DataKeys(randomBytes(32)), store);
  t.teardown(async () => {
    await store.close();
    dir.cleanup();
  });
});

interface Rig {
  readonly fake: TwilioFake;
  readonly provider: TwilioProvider;
  readonly publicUrl: string;
  /** `<public URL>/callbacks/twilio`. */
  readonly base: string;
}

async function rig(t: Test, over: Partial<TwilioConfig> = {}): Promise<Rig> {
  const fake = await startTwilioFake({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, from: FROM });
  const port = await freePort('tcp');
  const publicUrl = `http://127.0.0.1:${port}`;
  const config: TwilioConfig = {
    type: 'twilio',
    name: 'twilio',
    account_sid: ACCOUNT_SID,
    auth_token: AUTH_TOKEN,
    from: FROM,
    base_url: fake.url,
    voice_language: 'en-US',
    timeout_ms: 2000,
    retries: 0,
    breaker_failures: 50,
    breaker_cooldown_seconds: 30,
    ca: undefined,
    ...over,
  };
  const provider = new TwilioProvider(config, { log, tokens, publicUrl, now: Date.now });
  const server = new CallbackServer({
    http: { listen: [{ address: '127.0.0.1', port }], public_url: undefined, tls: undefined, insecure: true, rate_limit_per_minute: 100000, trust_proxy: [] },
    log,
  });
  provider.routes(server.routesFor('twilio'));
  await server.start();
  t.teardown(async () => {
    await provider.close();
    await fake.close();
    await server.close();
  });
  return { fake, provider, publicUrl, base: `${publicUrl}/callbacks/twilio` };
}

let numberSeq = 0;
/** A fresh E.164 number per case, so behaviours never collide. */
function phoneNumber(): string {
  numberSeq++;
  return `+4915112${String(numberSeq).padStart(6, '0')}`;
}

const recipient: Recipient = { userId: 'u-alice', username: 'alice', displayName: 'Alice Example', language: null };

function login(): LoginContext {
  return { attemptId: `att-${randomBytes(4).toString('hex')}`, clientName: CLIENT, clientIp: '198.51.100.7', nasIdentifier: 'vpn-1', callingStationId: null };
}

function approval(channel: ApprovalRequest['channel'], to: string, extra: { pin?: PinCheck; code?: string; expiresAt?: number; signal?: AbortSignal } = {}): ApprovalRequest {
  return {
    channel,
    to,
    recipient,
    login: login(),
    expiresAt: extra.expiresAt ?? Date.now() + 30_000,
    signal: extra.signal ?? new AbortController().signal,
    ...(extra.pin === undefined ? {} : { pin: extra.pin }),
    ...(extra.code === undefined ? {} : { code: extra.code }),
  };
}

function codeMessage(channel: 'sms' | 'voice', to: string, code: string): CodeMessage {
  secrets.add(code);
  return { channel, to, code, ttlSeconds: 300, recipient, login: login(), signal: new AbortController().signal };
}

interface FakePin {
  readonly check: PinCheck;
  readonly tried: string[];
  readonly changed: string[];
}

function fakePin(current: string, mustChange = false): FakePin {
  secrets.add(current);
  const tried: string[] = [];
  const changed: string[] = [];
  return {
    tried,
    changed,
    check: {
      verify: async (digits) => {
        tried.push(digits);
        return digits === current;
      },
      mustChange,
      change: async (digits) => {
        changed.push(digits);
      },
      minLength: 4,
      maxLength: 8,
    },
  };
}

/** Settles with the outcome, or with a marker when it has not settled within `ms`. */
async function settledWithin(outcome: Promise<ApprovalOutcome>, ms: number): Promise<ApprovalOutcome | 'pending'> {
  return Promise.race([outcome, sleep(ms, 'pending' as const)]);
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

// --- signature ---------------------------------------------------------------------------

t.test("X-Twilio-Signature: Twilio's documented examples", async (t) => {
  // https://www.twilio.com/docs/usage/security#validating-requests and the helper libraries'
  // snippets: Auth Token 12345, this URL and these POST parameters.
  const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
  const table = [
    { caller: '+14158675309', signature: 'RSOYDt4T1cUTdK1PDd93/VVr8B8=' },
    { caller: '+14158675310', signature: 'GvWf1cFY/Q7PnoempGyD5oXAezc=' },
    { caller: '+12349013030', signature: '0/KCTR6DLpKmkAf8muzZqo1nDgQ=' },
  ];
  for (const { caller, signature } of table) {
    const params = { CallSid: 'CA1234567890ABCDE', Caller: caller, Digits: '1234', From: caller, To: '+18005551212' };
    // Parameter order must not matter: the algorithm sorts them.
    const shuffled = Object.entries(params).reverse();
    t.equal(twilioSignature('12345', url, shuffled), signature, `provider, Caller ${caller}`);
    t.equal(fakeSignature('12345', url, params), signature, `fake, Caller ${caller}`);
    t.ok(verifyTwilioSignature('12345', signature, url, shuffled), 'verifies');
    t.ok(verifyTwilioSignature('12345', signature, 'https://mycompany.com:443/myapp.php?foo=1&bar=2', shuffled), 'an explicit default port is the same URL');
    t.notOk(verifyTwilioSignature('12346', signature, url, shuffled), 'another token fails');
    t.notOk(verifyTwilioSignature('12345', signature, 'https://mycompany.com/myapp.php?foo=1&bar=3', shuffled), 'another URL fails');
    t.notOk(verifyTwilioSignature('12345', signature, url, [...shuffled, ['Extra', 'x']]), 'an added parameter fails');
    t.notOk(verifyTwilioSignature('12345', undefined, url, shuffled), 'a missing header fails');
    t.notOk(verifyTwilioSignature('12345', '', url, shuffled), 'an empty header fails');
  }
});

// --- codes -------------------------------------------------------------------------------

t.test('SMS code: sent as Twilio documents it and read back from the fake', async (t) => {
  const { fake, provider } = await rig(t);
  const to = phoneNumber();
  const sent = await provider.sendCode(codeMessage('sms', to, '482916'));
  t.match(sent.messageId, /^SM[0-9a-f]{32}$/, 'the Message SID is the message id');
  t.equal(fake.lastCodeSentTo(to), '482916', 'the fake received the code');
  const [message] = fake.messages();
  t.equal(message?.body, 'Your verification code is 482916. It expires in 5 minutes.');
  t.equal(message?.from, FROM);
  t.equal(message?.sid, sent.messageId);
});

t.test('voice code: inline TwiML says the code digit by digit, twice', async (t) => {
  const { fake, provider } = await rig(t);
  const to = phoneNumber();
  const sent = await provider.sendCode(codeMessage('voice', to, '730251'));
  t.match(sent.messageId, /^CA[0-9a-f]{32}$/, 'the Call SID is the message id');
  const [call] = fake.calls();
  t.ok(call?.twiml, 'the call carries inline TwiML');
  t.equal(call?.url, undefined, 'and no Url');
  t.equal(call?.statusCallback, undefined, 'nor a status callback');
  t.equal((call?.twiml?.match(/7, 3, 0, 2, 5, 1/g) ?? []).length, 2, 'the code is spelled out twice');
  t.match(call?.twiml, /language="en-US"/, 'in the configured voice language');
  t.equal(fake.lastCodeSentTo(to), '730251', 'the fake reads the code back');
  const ended = await fake.callEnded(sent.messageId ?? '');
  t.equal(ended.status, 'completed');
  t.ok(ended.said.some((s) => s.includes('7, 3, 0, 2, 5, 1')), 'the callee heard it');
});

// --- phone approvals ---------------------------------------------------------------------

t.test('phone approval: the key pressed decides', async (t) => {
  const { fake, provider, base } = await rig(t);
  const cases = [
    { behaviour: 'approve', result: 'approved', detail: 'pressed #' },
    { behaviour: 'fraud', result: 'fraud', detail: 'pressed 0 (fraud)' },
    { behaviour: 'deny', result: 'denied', detail: 'pressed another key' },
  ] as const;
  for (const c of cases) {
    const to = phoneNumber();
    fake.setBehaviour(to, c.behaviour);
    const started = await provider.startApproval(approval('phone', to));
    t.match(started.messageId, /^CA[0-9a-f]{32}$/);
    const outcome = await started.outcome;
    t.same(outcome, { result: c.result, detail: c.detail }, `${c.behaviour} → ${c.result}`);
    const call = await fake.callEnded(started.messageId ?? '');
    t.equal(call.status, 'completed');
    t.equal(call.endedBy, 'twiml', 'the gateway hung up with TwiML');
    t.same(call.errors, [], 'every callback answered 200 with valid TwiML');
    t.ok(call.url?.startsWith(`${base}/voice/`), 'Url is the voice route');
    t.ok(call.statusCallback?.startsWith(`${base}/status/`), 'StatusCallback is the status route');
    t.same(call.statusCallbackEvents, ['completed']);
    t.ok(call.timeout >= 5 && call.timeout <= 60, 'a ring timeout within 5..60 s');
    t.match(call.said[0], `This is your sign-in verification for ${CLIENT}. Press the pound key to approve.`);
  }
});

t.test('phone approval: no answer, busy, failed, hang-up are timeouts', async (t) => {
  const { fake, provider } = await rig(t);
  const cases = [
    { behaviour: 'no-answer', detail: 'call not answered' },
    { behaviour: 'busy', detail: 'line busy' },
    { behaviour: 'failed', detail: 'call failed' },
    { behaviour: 'hangup', detail: 'call answered, no key pressed' },
  ] as const;
  for (const c of cases) {
    const to = phoneNumber();
    fake.setBehaviour(to, c.behaviour);
    const started = await provider.startApproval(approval('phone', to));
    t.same(await started.outcome, { result: 'timeout', detail: c.detail }, c.behaviour);
  }
  // A lone # with finishOnKey="#" would submit nothing: the approve prompt must not use it.
  const to = phoneNumber();
  fake.setBehaviour(to, { kind: 'keys', sequence: [] });
  const started = await provider.startApproval(approval('phone', to));
  t.same(await started.outcome, { result: 'timeout', detail: 'call answered, no key pressed' }, 'no key: the gather times out, the call completes');
  const call = await fake.callEnded(started.messageId ?? '');
  t.match(call.said.join(' '), /No key was pressed/, 'the fall-through prompt was read');
});

t.test('phone approval, PIN mode: right PIN, wrong PIN, 0 for fraud', async (t) => {
  const { fake, provider } = await rig(t);

  const right = phoneNumber();
  const pinA = fakePin('471139');
  fake.setBehaviour(right, { kind: 'pin', pin: '471139' });
  const a = await provider.startApproval(approval('phone', right, { pin: pinA.check }));
  t.same(await a.outcome, { result: 'approved', detail: 'PIN correct' });
  t.same(pinA.tried, ['471139'], 'the digits before # were checked');
  t.match((await fake.callEnded(a.messageId ?? '')).said[0], /Enter your PIN, followed by the pound key/);

  const wrong = phoneNumber();
  const pinB = fakePin('471139');
  fake.setBehaviour(wrong, { kind: 'pin', pin: '1234' });
  const b = await provider.startApproval(approval('phone', wrong, { pin: pinB.check }));
  t.same(await b.outcome, { result: 'bad_pin', detail: 'wrong PIN' });
  t.same(pinB.tried, ['1234']);

  const tooShort = phoneNumber();
  const pinC = fakePin('471139');
  fake.setBehaviour(tooShort, { kind: 'pin', pin: '12' });
  const c = await provider.startApproval(approval('phone', tooShort, { pin: pinC.check }));
  t.same(await c.outcome, { result: 'bad_pin', detail: 'wrong PIN' }, 'a PIN of the wrong length is wrong');
  t.same(pinC.tried, [], 'without asking the PIN store');

  // A PIN of the maximum length is still ended by its # (not cut off by numDigits).
  const longest = phoneNumber();
  const pinE = fakePin('80604020', true);
  fake.setBehaviour(longest, { kind: 'keys', sequence: ['80604020#', '13579135#', '13579135#'] });
  const e = await provider.startApproval(approval('phone', longest, { pin: pinE.check }));
  t.equal((await e.outcome).result, 'approved', 'an 8-digit PIN (maxLength) + #');
  const ecall = await fake.callEnded(e.messageId ?? '');
  t.same(pinE.changed, ['13579135'], 'and an 8-digit new PIN, confirmed');
  t.same(ecall.errors, []);
  const tooLong = phoneNumber();
  const pinF = fakePin('471139');
  fake.setBehaviour(tooLong, { kind: 'pin', pin: '123456789' });
  const f = await provider.startApproval(approval('phone', tooLong, { pin: pinF.check }));
  t.equal((await f.outcome).result, 'bad_pin', 'more digits than a PIN has');
  t.same(pinF.tried, []);

  const fraud = phoneNumber();
  const pinD = fakePin('471139');
  fake.setBehaviour(fraud, { kind: 'pin', pin: '0' });
  const d = await provider.startApproval(approval('phone', fraud, { pin: pinD.check }));
  t.same(await d.outcome, { result: 'fraud', detail: 'keyed 0 (fraud)' });
});

t.test('phone approval, PIN mode: the PIN must change', async (t) => {
  const { fake, provider } = await rig(t);

  const to = phoneNumber();
  const pin = fakePin('471139', true);
  secrets.add('918273');
  fake.setBehaviour(to, { kind: 'pin', pin: '471139', newPin: '918273' });
  const started = await provider.startApproval(approval('phone', to, { pin: pin.check }));
  t.same(await started.outcome, { result: 'approved', detail: 'PIN correct, PIN change requested' }, 'the right PIN approves at once');
  const call = await fake.callEnded(started.messageId ?? '');
  t.same(pin.changed, ['918273'], 'the new PIN, keyed in twice the same, was stored');
  t.same(call.keys, ['471139#', '918273#', '918273#']);
  t.match(call.said.join(' | '), /choose a new PIN of 4 to 8 digits.*enter the new PIN again.*Your new PIN is set/);
  t.same(call.errors, []);

  // The two entries differ, twice: the PIN stays as it was (the login stays approved).
  const mismatch = phoneNumber();
  const pin2 = fakePin('471139', true);
  fake.setBehaviour(mismatch, { kind: 'pin', pin: '471139', newPin: '555666', confirmPin: '555667' });
  const m = await provider.startApproval(approval('phone', mismatch, { pin: pin2.check }));
  t.equal((await m.outcome).result, 'approved');
  const mcall = await fake.callEnded(m.messageId ?? '');
  t.same(pin2.changed, [], 'no PIN change');
  t.same(mcall.keys, ['471139#', '555666#', '555667#', '555666#', '555667#'], 'asked again once');
  t.match(mcall.said.join(' | '), /The two PINs did not match.*The two PINs did not match\. Your PIN was not changed/);

  // First try of the wrong length, second try right.
  const retry = phoneNumber();
  const pin3 = fakePin('471139', true);
  fake.setBehaviour(retry, { kind: 'keys', sequence: ['471139#', '12#', '246802#', '246802#'] });
  const r = await provider.startApproval(approval('phone', retry, { pin: pin3.check }));
  t.equal((await r.outcome).result, 'approved');
  await fake.callEnded(r.messageId ?? '');
  t.same(pin3.changed, ['246802'], 'the second, valid PIN was stored');

  // A wrong current PIN never reaches the change.
  const wrong = phoneNumber();
  const pin4 = fakePin('471139', true);
  fake.setBehaviour(wrong, { kind: 'pin', pin: '9999', newPin: '123456' });
  const w = await provider.startApproval(approval('phone', wrong, { pin: pin4.check }));
  t.equal((await w.outcome).result, 'bad_pin');
  await fake.callEnded(w.messageId ?? '');
  t.same(pin4.changed, []);
});

t.test('phone approval: expiry and abort settle timeout and end the call', async (t) => {
  const { fake, provider } = await rig(t);

  const ringing = phoneNumber();
  fake.setBehaviour(ringing, { kind: 'no-answer', delayMs: 10_000 });
  const controller = new AbortController();
  const a = await provider.startApproval(approval('phone', ringing, { signal: controller.signal }));
  t.equal(await settledWithin(a.outcome, 100), 'pending', 'pending while it rings');
  controller.abort();
  t.same(await a.outcome, { result: 'timeout', detail: 'the login stopped waiting' });
  const ended = await fake.callEnded(a.messageId ?? '');
  t.equal(ended.status, 'canceled', 'the ringing call was ended through the API');
  t.equal(ended.endedBy, 'api');
  t.ok(fake.records.some((r) => r.kind === 'call-update' && r.sid === a.messageId && r.status === 'completed'), 'with Status=completed');

  const slow = phoneNumber();
  fake.setBehaviour(slow, { kind: 'press', digits: '#', delayMs: 10_000 });
  const b = await provider.startApproval(approval('phone', slow, { expiresAt: Date.now() + 300 }));
  t.same(await b.outcome, { result: 'timeout', detail: 'no answer before the login expired' });
  t.equal((await fake.callEnded(b.messageId ?? '')).endedBy, 'api');

  const pending = phoneNumber();
  fake.setBehaviour(pending, { kind: 'no-answer', delayMs: 10_000 });
  const c = await provider.startApproval(approval('phone', pending));
  await provider.close();
  t.same(await c.outcome, { result: 'timeout', detail: 'gateway shutting down' }, 'close() settles what is pending');
});

// --- two-way SMS -------------------------------------------------------------------------

t.test('two-way SMS: the reply decides', async (t) => {
  const { fake, provider, base } = await rig(t);
  t.equal(provider.inboundSmsUrl, `${base}/sms`);
  const smsUrl = `${base}/sms`;

  const cases = [
    { reply: (code: string) => code, result: 'approved' },
    { reply: (code: string) => ` ${code}\n`, result: 'approved' },
    { reply: () => '000000', result: 'denied' },
    { reply: () => 'no', result: 'denied' },
    { reply: () => '0', result: 'fraud' },
  ] as const;
  for (const [i, c] of cases.entries()) {
    const to = phoneNumber();
    const code = `${700100 + i}`;
    secrets.add(code);
    const started = await provider.startApproval(approval('sms_reply', to, { code }));
    t.match(started.messageId, /^SM[0-9a-f]{32}$/);
    t.equal(fake.messages().at(-1)?.body, `Reply with ${code} to approve the sign-in to ${CLIENT}. Reply 0 to report fraud.`);
    t.equal(fake.lastCodeSentTo(to), code);
    const answer = await fake.replySms(to, c.reply(code), smsUrl);
    t.same(answer, { status: 200, body: '<?xml version="1.0" encoding="UTF-8"?><Response/>' }, 'answered with empty TwiML');
    t.equal((await started.outcome).result, c.result, `reply ${i} → ${c.result}`);
  }

  // A sender with nothing pending changes nothing; a pending request stays pending.
  const to = phoneNumber();
  const pending = await provider.startApproval(approval('sms_reply', to, { code: '246810' }));
  secrets.add('246810');
  const stranger = await fake.replySms(phoneNumber(), '246810', smsUrl);
  t.equal(stranger.status, 200);
  t.match(stranger.body, /<Response\/>/);
  t.equal(await settledWithin(pending.outcome, 100), 'pending', 'a reply from another number settles nothing');

  // Automatic replies (for end-to-end tests): the fake answers per behaviour when it knows the webhook.
  fake.setSmsWebhook(smsUrl);
  const auto = phoneNumber();
  fake.setBehaviour(auto, 'approve');
  const a = await provider.startApproval(approval('sms_reply', auto, { code: '135790' }));
  secrets.add('135790');
  t.equal((await a.outcome).result, 'approved', 'auto-reply with the code');
  const autoFraud = phoneNumber();
  fake.setBehaviour(autoFraud, 'fraud');
  const f = await provider.startApproval(approval('sms_reply', autoFraud, { code: '135791' }));
  t.equal((await f.outcome).result, 'fraud', 'auto-reply 0');
  fake.setSmsWebhook(undefined);

  // Expiry.
  const late = await provider.startApproval(approval('sms_reply', phoneNumber(), { code: '111222', expiresAt: Date.now() + 200 }));
  t.same(await late.outcome, { result: 'timeout', detail: 'no answer before the login expired' });
});

// --- API errors --------------------------------------------------------------------------

t.test('API errors: 4xx is ProviderRejectedError with Twilio’s code, 5xx ProviderUnavailableError', async (t) => {
  const { provider } = await rig(t, { auth_token: `${AUTH_TOKEN}-wrong` });
  secrets.add(`${AUTH_TOKEN}-wrong`);
  const err = await provider.sendCode(codeMessage('sms', phoneNumber(), '555001')).catch((e: unknown) => e);
  t.type(err, ProviderRejectedError, 'a wrong auth token is refused');
  t.equal((err as ProviderRejectedError).providerCode, '20003');
  t.notMatch((err as Error).message, AUTH_TOKEN, 'the message never holds the auth token');

  const { provider: good, fake } = await rig(t, { breaker_failures: 3 });
  const bad = await good.sendCode(codeMessage('sms', '004915112345678', '555002')).catch((e: unknown) => e);
  t.type(bad, ProviderRejectedError, 'an invalid To is refused');
  t.equal((bad as ProviderRejectedError).providerCode, '21211');
  const badCall = await good.startApproval(approval('phone', 'not-a-number')).catch((e: unknown) => e);
  t.type(badCall, ProviderRejectedError, 'a call to an invalid number is refused');

  fake.failNext(100, 500);
  for (let i = 0; i < 3; i++) {
    const e = await good.sendCode(codeMessage('sms', phoneNumber(), '555003')).catch((x: unknown) => x);
    t.type(e, ProviderUnavailableError, `500 → ProviderUnavailableError (${i + 1})`);
  }
  const before = fake.requestCount;
  const open = await good.sendCode(codeMessage('sms', phoneNumber(), '555004')).catch((x: unknown) => x);
  t.type(open, ProviderUnavailableError);
  t.match((open as Error).message, /circuit breaker open/);
  t.equal(fake.requestCount, before, 'the open breaker sent nothing');
  t.equal(before, 2 + 3, 'a failed send was not retried (it may have gone out)');
});

t.test('API errors: a provider that never answers times out', async (t) => {
  const { provider, fake } = await rig(t, { timeout_ms: 300 });
  fake.hang(true);
  const started = Date.now();
  const err = await provider.sendCode(codeMessage('sms', phoneNumber(), '555005')).catch((e: unknown) => e);
  t.type(err, ProviderUnavailableError);
  t.ok(Date.now() - started < 2000, 'within the configured timeout');
});

// --- callback defences -------------------------------------------------------------------

t.test('callbacks: forged signatures, other accounts and made-up tokens are refused', async (t) => {
  const { fake, provider, base } = await rig(t);
  const to = phoneNumber();
  fake.setBehaviour(to, { kind: 'press', digits: '#', delayMs: 300 });
  const started = await provider.startApproval(approval('phone', to));
  const call = fake.calls().at(-1);
  const statusUrl = call?.statusCallback ?? '';
  const voiceUrl = call?.url ?? '';
  const refusedBefore = logLines.filter((l) => l.includes('Twilio callback refused')).length;
  const params = { AccountSid: ACCOUNT_SID, CallSid: started.messageId ?? '', CallStatus: 'completed', From: FROM, To: to, Direction: 'outbound-api' };

  t.equal((await fake.forgeCallback(statusUrl, params)).status, 403, 'signed under another token');
  t.equal((await fake.forgeCallback(statusUrl, params, null)).status, 403, 'no signature');
  t.equal((await fake.forgeCallback(voiceUrl, { ...params, CallStatus: 'in-progress' })).status, 403, 'voice, forged');
  // Signed right, but for other parameters than those sent.
  const sig = fakeSignature(AUTH_TOKEN, statusUrl, { ...params, CallStatus: 'busy' });
  t.equal((await fake.forgeCallback(statusUrl, params, sig)).status, 403, 'a signature over other parameters');
  t.equal((await fake.postSigned(statusUrl, { ...params, AccountSid: `AC${'0'.repeat(32)}` })).status, 403, 'signed, but another AccountSid');
  t.equal((await fake.postSigned(`${base}/status/${'A'.repeat(22)}.zzzzzz.${'B'.repeat(22)}`, params)).status, 403, 'a made-up token');
  t.equal((await fake.postSigned(statusUrl, { ...params, CallSid: `CA${'1'.repeat(32)}` })).status, 403, 'another call’s SID');
  t.equal((await fake.forgeCallback(`${base}/sms`, { AccountSid: ACCOUNT_SID, From: to, To: FROM, Body: '0', MessageSid: `SM${'2'.repeat(32)}` })).status, 403, 'an inbound SMS, forged');

  t.equal(await settledWithin(started.outcome, 50), 'pending', 'nothing was settled by any of them');
  t.same(await started.outcome, { result: 'approved', detail: 'pressed #' }, 'the genuine call still decides');
  const refused = logLines.filter((l) => l.includes('Twilio callback refused')).length - refusedBefore;
  t.equal(refused, 8, 'each refusal logged one provider warning');
});

t.test('callbacks: a replayed keypress is refused', async (t) => {
  const { fake, provider } = await rig(t);
  const to = phoneNumber();
  fake.setBehaviour(to, 'deny');
  const started = await provider.startApproval(approval('phone', to));
  t.equal((await started.outcome).result, 'denied');
  await fake.callEnded(started.messageId ?? '');
  const gather = fake.callbacks().find((c) => c.url.includes('/gather/') && c.params.CallSid === started.messageId);
  t.ok(gather, 'the fake posted the keypress');
  t.equal(gather?.status, 200, 'which was taken the first time');
  if (gather !== undefined) {
    const replay = await fake.replay(gather);
    t.equal(replay.status, 403, 'and refused the second time, signature and all');
  }

  // Same for a reply to a new request: a keypress token of one call is worthless for another.
  const to2 = phoneNumber();
  fake.setBehaviour(to2, { kind: 'press', digits: '1', delayMs: 200 });
  const second = await provider.startApproval(approval('phone', to2));
  if (gather !== undefined) {
    const other = await fake.postSigned(gather.url, { ...gather.params, CallSid: second.messageId ?? '', Digits: '#' });
    t.equal(other.status, 403, 'an old gather URL with the new call’s SID');
  }
  t.equal((await second.outcome).result, 'denied', 'the second call decided by its own keypress');

  // A duplicated inbound SMS (same MessageSid) is acted on once.
  const smsTo = phoneNumber();
  const first = await provider.startApproval(approval('sms_reply', smsTo, { code: '864201' }));
  secrets.add('864201');
  const sms = { AccountSid: ACCOUNT_SID, ApiVersion: '2010-04-01', Body: '864201', From: smsTo, MessageSid: `SM${randomBytes(16).toString('hex')}`, To: FROM };
  const smsUrl = provider.inboundSmsUrl ?? '';
  t.equal((await fake.postSigned(smsUrl, sms)).status, 200);
  t.equal((await first.outcome).result, 'approved');
  const again = await provider.startApproval(approval('sms_reply', smsTo, { code: '864201' }));
  t.equal((await fake.postSigned(smsUrl, sms)).status, 200, 'the duplicate is answered');
  t.equal(await settledWithin(again.outcome, 100), 'pending', 'but not acted on');
});

t.test('logs: no code, PIN or auth token; phone numbers masked', async (t) => {
  await until(() => logLines.length > 0);
  const text = logLines.join('');
  for (const secret of secrets) t.notOk(new RegExp(`(?<![0-9A-Za-z])${secret}(?![0-9A-Za-z])`).test(text), `never logged: ${secret.slice(0, 2)}…`);
  t.notOk(/\+4915112\d{6}/.test(text), 'no full phone number');
  t.match(text, /\+\*{9}\d{4}/, 'masked numbers');
});
