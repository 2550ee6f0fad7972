import { createSocket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Secret, TOTP } from 'otpauth';
import t from 'tap';
import { AttributeType, Code, attr, decodePacket, encodeAccessRequest } from '../../src/radius/codec/index.js';
import { startDuoFake } from '../fakes/duo.js';
import { startNtfyFake } from '../fakes/ntfy.js';
import { startTwilioFake } from '../fakes/twilio.js';
import { startWebhookFake } from '../fakes/webhook.js';
import { startGateway } from '../peers/gateway.js';
import { linesWithDuplicateKeys } from '../peers/log-lines.js';
import { freePort } from '../peers/ports.js';
import { radclient, type PacketSpec, type RadclientReply } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { startSmtpPeer } from '../peers/smtp.js';
import { tempDir } from '../peers/temp.js';

/**
 * End to end: the gateway process with every cloud method, radclient (and a raw UDP NAS that
 * retransmits) in front, and behind it the providers' test doubles speaking their documented
 * APIs (test/fakes/: ntfy, Twilio, Duo, an SMS webhook) and a real SMTP server (smtp-server).
 * The fakes play the user: approve, deny, report fraud, pick a number, answer a call.
 */

const PASSWORD = 'Sunny-Meadow-42';
const TWILIO_SID = `AC${'a1'.repeat(16)}`;
const TWILIO_TOKEN = 'twilio-auth-token-0123456789abcdef';
const DUO_IKEY = 'DIWJ8X6AEYOR5OMC6TQ1';
const DUO_SKEY = 'Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep';
const DUO_HOST = 'api-e2e00000.duosecurity.com';
const HOOK_SECRET = 'sms-webhook-secret-0123456789abcdef0123';
const SMTP_USER = 'mfa-relay';
const SMTP_PASS = 'smtp-relay-password-42';
const TOTP_SEED = Secret.fromUTF8('cloud-e2e-totp-seed-0123').base32;

/** Each user's phone number: `+4915100000` + two digits. */
/**
 * Whether `digits` (a PIN or a sent code) appears in `logs` as a number of its own. A plain
 * substring test also finds a 4-digit PIN inside epoch-millisecond timestamps and port numbers,
 * which every log line has (a failure seen once in a full run).
 */
const loggedNumber = (logs: string, digits: string): boolean => new RegExp(`(?<![0-9])${digits}(?![0-9])`).test(logs);
const phoneOf = (n: number): string => `+49151000000${String(n).padStart(2, '0')}`;

t.test('cloud methods end to end', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const dir = tempDir('mfa-e2e-cloud-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const ntfy = await startNtfyFake();
  t.teardown(() => ntfy.close());
  const twilio = await startTwilioFake({ accountSid: TWILIO_SID, authToken: TWILIO_TOKEN });
  t.teardown(() => twilio.close());
  const hookA = await startWebhookFake({ secret: HOOK_SECRET });
  t.teardown(() => hookA.close());
  const hookB = await startWebhookFake({ secret: HOOK_SECRET });
  t.teardown(() => hookB.close());
  const duo = await startDuoFake({ ikey: DUO_IKEY, skey: DUO_SKEY, host: DUO_HOST });
  t.teardown(() => duo.close());
  const smtp = await startSmtpPeer({ dir: dir.path, tls: 'starttls', auth: { user: SMTP_USER, pass: SMTP_PASS } });
  t.teardown(() => smtp.close());

  for (const [file, value] of [
    ['twilio-token', TWILIO_TOKEN],
    ['duo-skey', DUO_SKEY],
    ['hook-secret', HOOK_SECRET],
    ['smtp-password', SMTP_PASS],
  ] as const) {
    writeFileSync(join(dataDir, file), `${value}\n`, { mode: 0o600 });
  }
  writeFileSync(join(dataDir, 'smtp-ca.pem'), smtp.caPem ?? '', { mode: 0o600 });

  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');
  const httpPort = await freePort('tcp');
  const q = (s: string): string => JSON.stringify(s);
  const configYaml = `
data_dir: ${q(dataDir)}
log: {level: info}
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${acctPort}}]
clients:
  - {name: vpn, addresses: [127.0.0.1], secret: {file: radius-secret, generate: true}, policy: default}
  - {name: rdgw, addresses: [127.0.0.2], secret: {file: radius-secret, generate: true}, policy: default, challenge: false, approval_timeout_seconds: 20}
  - {name: safe-nas, addresses: [127.0.0.4], secret: {file: radius-secret, generate: true}, policy: safe, challenge: false}
  - {name: quick, addresses: [127.0.0.6], secret: {file: radius-secret, generate: true}, policy: default, challenge: false, approval_timeout_seconds: 5}
policies:
  default: {first_factor: local, methods: [totp, push, phone, sms, voice, email]}
  safe: {first_factor: local, methods: [totp, push], fail_mode: safe}
providers:
  ntfy: {type: ntfy, base_url: ${q(ntfy.url)}, timeout_ms: 2000, retries: 0, breaker_failures: 3, breaker_cooldown_seconds: 1}
  duo: {type: duo, api_host: ${DUO_HOST}, integration_key: ${DUO_IKEY}, secret_key: {file: duo-skey}, base_url: ${q(duo.url)}, timeout_ms: 2000, retries: 0, breaker_cooldown_seconds: 1}
  twilio: {type: twilio, account_sid: ${TWILIO_SID}, auth_token: {file: twilio-token}, from: "${twilio.from}", base_url: ${q(twilio.url)}}
  hook-a: {type: webhook, url: ${q(hookA.url)}, secret: {file: hook-secret}, retries: 0}
  hook-b: {type: webhook, url: ${q(hookB.url)}, secret: {file: hook-secret}}
  mail: {type: smtp, host: 127.0.0.1, port: ${smtp.port}, tls: starttls, user: ${SMTP_USER}, password: {file: smtp-password}, from: "MFA <mfa@example.test>", ca_file: smtp-ca.pem}
methods:
  push: {providers: [ntfy, duo], max_per_10_minutes: 4}
  phone: {providers: [twilio]}
  sms: {providers: [hook-a, hook-b]}
  voice: {providers: [twilio]}
  email: {providers: [mail]}
http:
  listen: [{address: 127.0.0.1, port: ${httpPort}}]
  public_url: http://127.0.0.1:${httpPort}
  insecure: true
fraud: {block_user: true, notify: [secops@example.test]}
lockout: {max_failures: 0}
`;
  const gw = await startGateway({ dir: dir.path, configYaml, t });
  const secret = gw.secret();

  // --- users ----------------------------------------------------------------------------------
  const topics = new Map<string, string>();
  let n = 0;
  const addUser = async (name: string, opts: { method?: string; device?: boolean; totp?: boolean } = {}): Promise<string> => {
    const phone = phoneOf(++n);
    const add = await gw.cli(['users', 'add', name, '--password-stdin', '--mobile', phone, '--email', `${name}@example.test`, ...(opts.method === undefined ? [] : ['--default-method', opts.method])], `${PASSWORD}\n`);
    t.equal(add.code, 0, `users add ${name}: ${add.stderr}`);
    if (opts.device !== false) {
      const device = await gw.cli(['devices', 'add-ntfy', name, '--no-qr']);
      t.equal(device.code, 0, `devices add-ntfy ${name}: ${device.stderr}`);
      const topic = /subscribe the ntfy app to: \S+\/(mfa_[0-9a-f]{32})$/m.exec(device.stdout)?.[1];
      t.ok(topic, 'a secret topic per device');
      topics.set(name, topic ?? '');
    }
    if (opts.totp === true) {
      const token = await gw.cli(['tokens', 'add-totp', name, '--secret', TOTP_SEED, '--no-qr']);
      t.equal(token.code, 0, token.stderr);
    }
    return phone;
  };
  const topic = (name: string): string => topics.get(name) ?? '';

  const login = (from: string, user: string, password: string, extra: PacketSpec = {}): PacketSpec => ({
    'Packet-Src-IP-Address': from,
    'Message-Authenticator': '0x00',
    'User-Name': user,
    'User-Password': password,
    'Calling-Station-Id': '198.51.100.7',
    ...extra,
  });
  const send = async (packet: PacketSpec, timeoutSec = 30): Promise<RadclientReply | undefined> => {
    const r = await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: [packet], retries: 1, timeoutSec });
    return r.replies[0];
  };
  const VPN = '127.0.0.1';
  const RDGW = '127.0.0.2';
  const audit = async (): Promise<Array<Record<string, unknown>>> => {
    const out = await gw.cli(['audit', 'export', '--format', 'json']);
    t.equal(out.code, 0, out.stderr);
    return JSON.parse(out.stdout) as Array<Record<string, unknown>>;
  };
  const lastAudit = async (user: string): Promise<Record<string, unknown> | undefined> => (await audit()).filter((r) => r.username === user).at(-1);

  await t.test('push (ntfy): approve accepts, deny rejects, audited with provider, message id and device', async (t) => {
    await addUser('alice', { method: 'push' });
    ntfy.setBehaviour(topic('alice'), { kind: 'approve', delayMs: 200 });
    const ok = await send(login(RDGW, 'alice', PASSWORD));
    t.equal(ok?.code, 'Access-Accept');
    const publish = await ntfy.waitForPublish(topic('alice'));
    t.match(publish.message, /rdgw/, 'the push names the client');
    t.notMatch(JSON.stringify(publish), /Sunny-Meadow/, 'no password in the push');
    const pressed = ntfy.presses.find((p) => p.messageId === publish.id);
    t.equal(pressed?.status, 200, 'the phone pressed Approve');
    const replay = await ntfy.press(publish.id, pressed?.label ?? '');
    t.equal(replay.status, 409, `the same button again: already used (${replay.status})`);
    const rec = await lastAudit('alice');
    t.match(rec, { result: 'accept', reason: 'accepted', method: 'push', provider: 'ntfy', providerMessageId: publish.id });
    t.match(rec?.deviceToken, /^[0-9a-f-]{36}$/, 'the device id, not its topic');

    ntfy.setBehaviour(topic('alice'), { kind: 'deny', delayMs: 100 });
    const denied = await send(login(RDGW, 'alice', `${PASSWORD},push`));
    t.equal(denied?.code, 'Access-Reject');
    t.match(await lastAudit('alice'), { result: 'reject', reason: 'denied', method: 'push' });
    ntfy.setBehaviour(topic('alice'), { kind: 'no_answer' });
    const started = Date.now();
    t.equal((await send(login('127.0.0.6', 'alice', `${PASSWORD},push`)))?.code, 'Access-Reject', 'no answer within the client\'s approval_timeout_seconds');
    t.ok(Date.now() - started >= 4_500, 'after waiting for it');
    t.match(await lastAudit('alice'), { reason: 'approval_timeout', method: 'push' });
    t.equal((await send(login(RDGW, 'alice', 'wrong-password')))?.code, 'Access-Reject');
    t.equal(ntfy.records.filter((r) => r.topic === topic('alice')).length, 3, 'no push after a wrong password');
  });

  await t.test('number matching: the challenge shows the number, the right pick accepts, a wrong one rejects', async (t) => {
    await addUser('bob', { method: 'push' });
    const round = async (behaviour: 'right' | 'wrong'): Promise<RadclientReply | undefined> => {
      // The user reads the number off the login prompt and presses it, or another, in the app.
      ntfy.setBehaviour(topic('bob'), { kind: 'no_answer' });
      const challenge = await send(login(VPN, 'bob', PASSWORD));
      t.equal(challenge?.code, 'Access-Challenge');
      const prompt = challenge?.attributes['Reply-Message']?.[0] ?? '';
      const number = Number(/Pick (\d{2}) /.exec(prompt)?.[1]);
      t.ok(number >= 10 && number <= 99, `prompt: ${prompt}`);
      const publish = await ntfy.waitForPublish(topic('bob'), behaviour === 'right' ? 1 : 2);
      t.same(publish.actions?.map((a) => a.label).filter((l) => l === String(number)), [String(number)], 'the right number is among the three buttons');
      t.equal(publish.actions?.length, 3);
      const answer = send(login(VPN, 'bob', '', { State: challenge?.attributes.State?.[0] ?? '' }));
      const label = behaviour === 'right' ? String(number) : (publish.actions?.map((a) => a.label).find((l) => l !== String(number)) ?? '');
      await sleep(300);
      t.equal((await ntfy.press(publish.id, label)).status, 200, `pressed ${behaviour === 'right' ? 'the shown' : 'another'} number`);
      return answer;
    };
    t.equal((await round('right'))?.code, 'Access-Accept');
    t.equal((await round('wrong'))?.code, 'Access-Reject');
    t.match(await lastAudit('bob'), { reason: 'number_mismatch', method: 'push' });
  });

  await t.test('a NAS retransmitting 5 times during a 10-second push: one push, every copy the same answer', async (t) => {
    await addUser('carol', { method: 'push' });
    ntfy.setBehaviour(topic('carol'), { kind: 'approve', delayMs: 9_000 });
    // The NAS: one Access-Request, sent again every 2 s (same identifier and authenticator) until answered.
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, RDGW, resolve));
    t.teardown(() => socket.close());
    const replies: Buffer[] = [];
    socket.on('message', (msg) => replies.push(msg));
    const { packet } = encodeAccessRequest({
      identifier: 42,
      secret: Buffer.from(secret),
      attributes: [attr.text(AttributeType.UserName, 'carol'), attr.text(AttributeType.CallingStationId, '198.51.100.7')],
      password: Buffer.from(PASSWORD),
    });
    for (let i = 0; i < 5; i++) {
      socket.send(packet, radiusPort, '127.0.0.1');
      await sleep(2_000);
    }
    const deadline = Date.now() + 5_000;
    while (replies.length < 5 && Date.now() < deadline) await sleep(100);
    t.equal(ntfy.records.filter((r) => r.topic === topic('carol')).length, 1, 'exactly one push at ntfy');
    t.equal(replies.length, 5, 'every copy answered');
    t.ok(replies.every((r) => r.equals(replies[0]!)), 'with the same bytes');
    const decoded = decodePacket(replies[0]!);
    t.equal('code' in decoded ? decoded.code : undefined, Code.AccessAccept);
    t.equal((await audit()).filter((r) => r.username === 'carol').length, 1, 'one login, one audit record');

    // The same with radclient retrying (-r 5 -t 2) while the push is out.
    ntfy.setBehaviour(topic('carol'), { kind: 'approve', delayMs: 7_000 });
    const r = await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: [login(RDGW, 'carol', `${PASSWORD},push`)], retries: 5, timeoutSec: 2 });
    t.equal(r.replies[0]?.code, 'Access-Accept');
    t.equal(ntfy.records.filter((rec) => rec.topic === topic('carol')).length, 2, 'one more push, not five');
  });

  await t.test('forged and replayed callbacks are refused', async (t) => {
    const pressed = ntfy.presses.find((p) => p.status === 200);
    t.ok(pressed, 'a button the phone pressed before');
    const replay = await ntfy.press(pressed!.messageId, pressed!.label);
    t.equal(replay.status, 403, 'the same button after the push expired: no longer valid');
    const forged = pressed!.url.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    t.equal((await fetch(forged, { method: 'POST', body: '' })).status, 403, 'a token with a wrong MAC');
    const made = `http://127.0.0.1:${httpPort}/callbacks/ntfy/answer/${'A'.repeat(22)}.${(Date.now() + 60_000).toString(36)}.${'A'.repeat(22)}`;
    t.equal((await fetch(made, { method: 'POST', body: '' })).status, 403, 'a made-up token');

    const call = twilio.callbacks().find((c) => c.status === 200 && /\/gather\//.test(c.url));
    if (call !== undefined) {
      const again = await twilio.replay(call);
      t.not(again.status, 200, 'a replayed Twilio keypress is refused');
    }
    const forgedTwilio = await twilio.forgeCallback(`http://127.0.0.1:${httpPort}/callbacks/twilio/sms`, { From: phoneOf(1), To: twilio.from, Body: '123456', AccountSid: TWILIO_SID, MessageSid: `SM${'0'.repeat(32)}` });
    t.equal(forgedTwilio.status, 403, 'an unsigned-by-Twilio webhook is refused');
  });

  await t.test('phone call (Twilio): # approves, 1 denies; the number is in the audit', async (t) => {
    const phone = await addUser('pat', { method: 'phone', device: false });
    twilio.setBehaviour(phone, { kind: 'press', digits: '#', delayMs: 100 });
    t.equal((await send(login(RDGW, 'pat', PASSWORD)))?.code, 'Access-Accept');
    const call = twilio.calls().find((c) => c.to === phone);
    t.ok(call, 'Twilio placed the call');
    t.match(await lastAudit('pat'), { result: 'accept', method: 'phone', provider: 'twilio', phone, providerMessageId: call?.sid });
    twilio.setBehaviour(phone, { kind: 'press', digits: '1' });
    t.equal((await send(login(RDGW, 'pat', `${PASSWORD},call`)))?.code, 'Access-Reject');
    t.match(await lastAudit('pat'), { reason: 'denied', method: 'phone' });
    // A replay of the keypress that approved: refused.
    const gather = twilio.callbacks().find((c) => c.status === 200 && /\/gather\//.test(c.url));
    t.ok(gather);
    t.not((await twilio.replay(gather!)).status, 200, 'a replayed keypress is refused');
  });

  await t.test('SMS code: the first provider fails, the second delivers; the code works once', async (t) => {
    const phone = await addUser('sam', { device: false });
    hookA.setDefaultBehaviour({ kind: 'fail', status: 500 });
    const challenge = await send(login(VPN, 'sam', `${PASSWORD},sms`));
    t.equal(challenge?.code, 'Access-Challenge');
    t.match(challenge?.attributes['Reply-Message']?.[0], /Enter the code sent by SMS to \+\*+\d{4}/);
    t.equal(hookA.records.length, 0, 'the first provider delivered nothing');
    const code = hookB.lastCodeSentTo(phone);
    t.match(code, /^\d{6}$/);
    const state = challenge?.attributes.State?.[0] ?? '';
    t.equal((await send(login(VPN, 'sam', code ?? '', { State: state })))?.code, 'Access-Accept');
    t.match(await lastAudit('sam'), { result: 'accept', method: 'sms', provider: 'hook-b', phone });
    t.equal((await send(login(VPN, 'sam', `${PASSWORD},${code}`)))?.code, 'Access-Reject', 'used once');
    t.match(await lastAudit('sam'), { reason: 'code_replayed' });

    const wrong = await send(login(VPN, 'sam', `${PASSWORD},sms`));
    t.equal((await send(login(VPN, 'sam', '000000', { State: wrong?.attributes.State?.[0] ?? '' })))?.code, 'Access-Reject');
    hookA.setDefaultBehaviour({ kind: 'deliver' });
  });

  await t.test('voice code (Twilio) and email code (real SMTP server)', async (t) => {
    const phone = await addUser('vera', { device: false });
    const voice = await send(login(VPN, 'vera', `${PASSWORD},voice`));
    t.equal(voice?.code, 'Access-Challenge');
    const spoken = twilio.lastCodeSentTo(phone);
    t.match(spoken, /^\d{6}$/);
    t.equal((await send(login(VPN, 'vera', spoken ?? '', { State: voice?.attributes.State?.[0] ?? '' })))?.code, 'Access-Accept');
    t.match(await lastAudit('vera'), { method: 'voice', provider: 'twilio' });

    const email = await send(login(VPN, 'vera', `${PASSWORD},email`));
    t.equal(email?.code, 'Access-Challenge');
    t.match(email?.attributes['Reply-Message']?.[0], /Enter the code sent to v\*\*\*@example\.test/);
    const mail = await smtp.waitForMail('vera@example.test', 10_000);
    t.ok(mail.secure, 'delivered over STARTTLS');
    const code = /^(\d{6,8})$/m.exec(mail.text)?.[1];
    t.ok(code, 'the code read from the received mail');
    t.notMatch(mail.subject, /\d{6}/, 'no code in the subject');
    t.equal((await send(login(VPN, 'vera', code ?? '', { State: email?.attributes.State?.[0] ?? '' })))?.code, 'Access-Accept');
    t.match(await lastAudit('vera'), { method: 'email', provider: 'mail' });

    const wrongVoice = await send(login(VPN, 'vera', `${PASSWORD},voice`));
    t.equal((await send(login(VPN, 'vera', '999999', { State: wrongVoice?.attributes.State?.[0] ?? '' })))?.code, 'Access-Reject', 'a wrong voice code');
    const wrongMail = await send(login(VPN, 'vera', `${PASSWORD},email`));
    await smtp.waitForMail('vera@example.test', 10_000);
    t.equal((await send(login(VPN, 'vera', '99999999', { State: wrongMail?.attributes.State?.[0] ?? '' })))?.code, 'Access-Reject', 'a wrong email code');
    t.match(await lastAudit('vera'), { reason: 'bad_code' });
  });

  await t.test('Duo push for a user without an ntfy device', async (t) => {
    await addUser('dora', { method: 'push', device: false });
    duo.setBehaviour('dora', { answer: { kind: 'approve', delayMs: 200 } });
    t.equal((await send(login(RDGW, 'dora', PASSWORD)))?.code, 'Access-Accept');
    t.match(await lastAudit('dora'), { method: 'push', provider: 'duo' });
    duo.setBehaviour('dora', { answer: { kind: 'deny' } });
    t.equal((await send(login(RDGW, 'dora', PASSWORD)))?.code, 'Access-Reject');
    t.match(await lastAudit('dora'), { reason: 'denied', provider: 'duo' });
  });

  await t.test('push fatigue: the fifth push in ten minutes is refused', async (t) => {
    await addUser('fay', { method: 'push' });
    ntfy.setBehaviour(topic('fay'), { kind: 'deny' });
    for (let i = 0; i < 4; i++) t.equal((await send(login(RDGW, 'fay', PASSWORD)))?.code, 'Access-Reject');
    const fifth = await send(login(RDGW, 'fay', PASSWORD));
    t.equal(fifth?.code, 'Access-Reject');
    t.match(fifth?.attributes['Reply-Message']?.[0], /Too many push requests/);
    t.match(await lastAudit('fay'), { reason: 'push_limited' });
    t.equal(ntfy.records.filter((r) => r.topic === topic('fay')).length, 4, 'no fifth push');
  });

  await t.test('fraud report: rejected, user blocked, admins mailed, the next login rejected user_blocked', async (t) => {
    await addUser('frank', { method: 'push' });
    ntfy.setBehaviour(topic('frank'), { kind: 'fraud', delayMs: 100 });
    t.equal((await send(login(RDGW, 'frank', PASSWORD)))?.code, 'Access-Reject');
    t.match(await lastAudit('frank'), { reason: 'fraud_reported', method: 'push' });
    const show = await gw.cli(['users', 'show', 'frank']);
    t.match(JSON.parse(show.stdout), { blocked: true });
    const notice = await smtp.waitForMail('secops@example.test', 10_000);
    t.match(notice.subject, /Fraud report: sign-in request for frank/);
    t.match(notice.text, /198\.51\.100\.7/);
    t.equal((await send(login(RDGW, 'frank', PASSWORD)))?.code, 'Access-Reject');
    t.match(await lastAudit('frank'), { reason: 'user_blocked' });
    t.equal(ntfy.records.filter((r) => r.topic === topic('frank')).length, 1, 'no push to a blocked user');
  });

  await t.test('bypass: once, then gone', async (t) => {
    await addUser('bea', { method: 'push' });
    ntfy.setBehaviour(topic('bea'), { kind: 'deny' });
    const add = await gw.cli(['bypass', 'add', 'bea', '--minutes', '10', '--reason', 'phone lost']);
    t.equal(add.code, 0, add.stderr);
    t.match((await gw.cli(['bypass', 'list'])).stdout, /bea\t1 left/);
    t.equal((await send(login(RDGW, 'bea', 'not-her-password')))?.code, 'Access-Reject', 'a bypass is no password');
    t.equal((await send(login(RDGW, 'bea', PASSWORD)))?.code, 'Access-Accept');
    t.match(await lastAudit('bea'), { reason: 'accepted_bypass' });
    t.equal((await send(login(RDGW, 'bea', PASSWORD)))?.code, 'Access-Reject', 'used up: the push again');
    t.match(await lastAudit('bea'), { reason: 'denied' });
    t.equal((await gw.cli(['bypass', 'list'])).stdout, '', 'none left');
  });

  await t.test('cloud down: secure rejects, safe accepts (audited), local TOTP still works', async (t) => {
    await addUser('otto', { method: 'push', totp: true });
    // Every push provider down: ntfy first, then Duo (push: [ntfy, duo]).
    ntfy.hang(true);
    duo.hang(true);
    t.teardown(() => {
      ntfy.hang(false);
      duo.hang(false);
    });
    t.equal((await send(login(VPN, 'otto', `${PASSWORD},push`)))?.code, 'Access-Reject');
    t.match(await lastAudit('otto'), { reason: 'provider_unavailable' });
    t.equal((await send(login('127.0.0.4', 'otto', `${PASSWORD},push`)))?.code, 'Access-Accept');
    t.match(await lastAudit('otto'), { result: 'accept', reason: 'accepted_fail_open' });
    t.equal((await send(login('127.0.0.4', 'otto', `wrong,push`)))?.code, 'Access-Reject', 'fail-open never skips the password');
    const totp = new TOTP({ secret: Secret.fromBase32(TOTP_SEED) }).generate();
    t.equal((await send(login(VPN, 'otto', `${PASSWORD},${totp}`)))?.code, 'Access-Accept', 'TOTP needs no cloud');
    t.match(await lastAudit('otto'), { reason: 'accepted', method: 'totp' });
  });

  await t.test('no code, PIN, password or provider secret in the logs', async (t) => {
    const logs = gw.logs();
    for (const s of [PASSWORD, TWILIO_TOKEN, DUO_SKEY, HOOK_SECRET, SMTP_PASS, TOTP_SEED]) t.notOk(logs.includes(s), `not logged: ${s.slice(0, 6)}…`);
    for (const m of [...hookA.records, ...hookB.records]) t.notOk(loggedNumber(logs, m.code), 'no SMS code');
    for (const [name, value] of topics) t.notOk(logs.includes(value), `no ntfy topic of ${name}`);
    for (const number of [phoneOf(1), phoneOf(5)]) t.notOk(logs.includes(number), 'phone numbers only masked');
    t.match(logs, /\+\*+\d{4}/, 'masked numbers are');
    t.same(linesWithDuplicateKeys(logs), [], 'every log line is JSON without a key twice (providers, verifier, store)');
    const verify = await gw.cli(['audit', 'verify']);
    t.equal(verify.code, 0, verify.stdout + verify.stderr);
  });
});

t.test('two-way SMS and phone calls in PIN mode (Twilio), end to end', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const dir = tempDir('mfa-e2e-twilio-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const twilio = await startTwilioFake({ accountSid: TWILIO_SID, authToken: TWILIO_TOKEN });
  t.teardown(() => twilio.close());
  writeFileSync(join(dataDir, 'twilio-token'), `${TWILIO_TOKEN}\n`, { mode: 0o600 });
  const radiusPort = await freePort('udp');
  const httpPort = await freePort('tcp');
  const configYaml = `
data_dir: ${JSON.stringify(dataDir)}
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${await freePort('udp')}}]
clients:
  - {name: rdgw, addresses: [127.0.0.1], secret: {file: radius-secret, generate: true}, policy: default, challenge: false, approval_timeout_seconds: 20}
policies:
  default: {first_factor: local, methods: [sms, phone]}
providers:
  twilio: {type: twilio, account_sid: ${TWILIO_SID}, auth_token: {file: twilio-token}, from: "${twilio.from}", base_url: ${JSON.stringify(twilio.url)}}
methods:
  sms: {providers: [twilio], mode: two_way}
  phone: {providers: [twilio], mode: pin}
http: {listen: [{address: 127.0.0.1, port: ${httpPort}}], public_url: "http://127.0.0.1:${httpPort}", insecure: true}
lockout: {max_failures: 0}
`;
  const gw = await startGateway({ dir: dir.path, configYaml, t });
  const secret = gw.secret();
  twilio.setSmsWebhook(`http://127.0.0.1:${httpPort}/callbacks/twilio/sms`);
  const phone = phoneOf(77);
  t.equal((await gw.cli(['users', 'add', 'tina', '--password-stdin', '--mobile', phone], `${PASSWORD}\n`)).code, 0);
  const send = async (password: string): Promise<string | undefined> => {
    const r = await radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: [{ 'Message-Authenticator': '0x00', 'User-Name': 'tina', 'User-Password': password }], retries: 1, timeoutSec: 30 });
    return r.replies[0]?.code;
  };
  const last = async (): Promise<Record<string, unknown> | undefined> => (JSON.parse((await gw.cli(['audit', 'export', '--format', 'json'])).stdout) as Array<Record<string, unknown>>).at(-1);

  // Two-way SMS: the user answers the text with the code it carries (the fake's phone replies).
  twilio.setBehaviour(phone, { kind: 'press', digits: '#', delayMs: 300 });
  t.equal(await send(`${PASSWORD},sms`), 'Access-Accept', 'the reply with the code approves');
  t.match(await last(), { method: 'sms', provider: 'twilio', phone, reason: 'accepted' });
  t.match(twilio.messages().at(-1)?.body, /^Reply with \d{6} to approve/);
  twilio.setBehaviour(phone, { kind: 'reply', body: '000000', delayMs: 300 });
  t.equal(await send(`${PASSWORD},sms`), 'Access-Reject', 'a reply with another code denies');
  t.match(await last(), { reason: 'denied' });

  // PIN mode, with a temporary PIN the user must change on the first call.
  t.equal((await send(`${PASSWORD},call`)), 'Access-Reject', 'no PIN yet: not enrolled');
  t.match(await last(), { reason: 'not_enrolled' });
  const setPin = await gw.cli(['users', 'set-pin', 'tina', '--pin-stdin', '--must-change'], '4711\n');
  t.equal(setPin.code, 0, setPin.stderr);
  twilio.setBehaviour(phone, { kind: 'pin', pin: '4711', newPin: '8642' });
  t.equal(await send(`${PASSWORD},call`), 'Access-Accept', 'the temporary PIN approves, and a new one is chosen');
  await twilio.idle();
  t.match(JSON.parse((await gw.cli(['users', 'show', 'tina'])).stdout), { hasPin: true, pinMustChange: false });
  twilio.setBehaviour(phone, { kind: 'pin', pin: '4711' });
  t.equal(await send(`${PASSWORD},call`), 'Access-Reject', 'the old PIN no longer works');
  t.match(await last(), { reason: 'bad_pin', method: 'phone' });
  twilio.setBehaviour(phone, { kind: 'pin', pin: '8642' });
  t.equal(await send(`${PASSWORD},call`), 'Access-Accept', 'the new one does');
  const logs = gw.logs();
  for (const pin of ['4711', '8642']) t.notOk(loggedNumber(logs, pin), 'no PIN in the logs');
  for (const secretText of [TWILIO_TOKEN, PASSWORD]) t.notOk(logs.includes(secretText), 'no token or password in the logs');
});
