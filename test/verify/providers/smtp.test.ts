import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import t, { type Test } from 'tap';
import { DataKeys } from '../../../src/crypto/keys.js';
import { ConfigError, ProviderRejectedError, ProviderUnavailableError } from '../../../src/errors.js';
import { createLogger } from '../../../src/log.js';
import { openSqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { CallbackTokens } from '../../../src/verify/callback-tokens.js';
import type { CodeMessage, ProviderDeps, Recipient } from '../../../src/verify/providers/provider.js';
import { SmtpProvider, type SmtpProviderConfig } from '../../../src/verify/providers/smtp.js';
import { classifySmtpError } from '../../../src/verify/providers/smtp-failures.js';
import { mailLanguage } from '../../../src/verify/providers/smtp-templates.js';
import { startSmtpPeer, type SmtpPeer, type SmtpPeerOptions } from '../../peers/smtp.js';
import { requirePeer } from '../../peers/require-peer.js';
import { makeTlsFiles, type TlsFiles } from '../../peers/tls-ca.js';
import { tempDir } from '../../peers/temp.js';

// The SMTP provider against a real SMTP server (smtp-server) on loopback: TLS modes, the CA,
// AUTH, permanent and transient refusals, a dead server, the templates, and admin notices.

const AUTH = { user: 'gateway', pass: 'relay-password-8f2c' };
const CODE_LINE = /^(\d{6,8})$/m;

const dir = tempDir('smtp-provider');
t.teardown(() => dir.cleanup());
const store = await openSqliteStore({ path: join(dir.path, 'gw.db') });
t.teardown(() => store.close());
const logLines: string[] = [];
const deps: ProviderDeps = {
  log: createLogger({ level: 'debug' }, { write: (line: string) => void logLines.push(line) }),
  tokens: new CallbackTokens(new DataKeys(randomBytes(32)), store),
  publicUrl: undefined,
  now: Date.now,
};

let tlsFiles: TlsFiles | undefined;
let peerCount = 0;
async function peer(t: Test, opts: Omit<SmtpPeerOptions, 'dir' | 'tlsFiles'>): Promise<SmtpPeer> {
  // One CA and server certificate for all TLS peers of this file: one openssl run.
  if (opts.tls !== 'none') tlsFiles ??= await makeTlsFiles(join(dir.path, 'tls'), { ip: '127.0.0.1', dnsName: 'mail.example.test' });
  const p = await startSmtpPeer({ ...opts, dir: join(dir.path, `peer-${++peerCount}`), ...(tlsFiles === undefined ? {} : { tlsFiles }) });
  t.teardown(() => p.close());
  return p;
}

function provider(t: Test, p: SmtpPeer, overrides: Partial<SmtpProviderConfig> = {}): SmtpProvider {
  const config: SmtpProviderConfig = {
    type: 'smtp',
    name: 'mail',
    host: '127.0.0.1',
    port: p.port,
    tls: 'starttls',
    insecure: false,
    user: AUTH.user,
    password: AUTH.pass,
    from: 'MFA Gateway <mfa@example.test>',
    timeout_ms: 3000,
    retries: 1,
    breaker_failures: 5,
    breaker_cooldown_seconds: 30,
    ca: p.caPem,
    ...overrides,
  };
  const smtp = new SmtpProvider(config, deps);
  t.teardown(() => smtp.close());
  return smtp;
}

const anna: Recipient = { userId: 'u1', username: 'anna', displayName: 'Anna Schmidt', language: null };

function codeMessage(to: string, code: string, recipient: Recipient = anna, signal = new AbortController().signal): CodeMessage {
  return {
    channel: 'email',
    to,
    code,
    ttlSeconds: 600,
    recipient,
    login: { attemptId: 'att-1', clientName: 'vpn', clientIp: '192.0.2.10', nasIdentifier: 'asa1', callingStationId: '198.51.100.7' },
    signal,
  };
}

function randomCode(): string {
  return String(100000 + (randomBytes(4).readUInt32BE(0) % 900000));
}

function clientCommands(p: SmtpPeer): string[] {
  return p.events().filter((e) => e.kind !== 'connect').map((e) => `${e.kind}${e.secure ? '' : ' IN CLEAR'}`);
}

void t.test('STARTTLS with the test CA and AUTH: the mail arrives and carries the code that was sent', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  t.same([...smtp.codeChannels], ['email']);
  t.equal(smtp.approvalChannels.size, 0);
  const code = randomCode();
  const sent = await smtp.sendCode(codeMessage('anna.schmidt@example.com', code));
  const mail = await p.waitForMail('anna.schmidt@example.com');

  t.equal(CODE_LINE.exec(mail.text)?.[1], code, 'the code read from the received text is the code sent');
  t.equal(mail.subject, 'Your verification code');
  t.notMatch(mail.subject, code, 'no code in the subject');
  t.equal(mail.headers.get('auto-submitted'), 'auto-generated');
  t.equal(mail.headers.get('message-id'), sent.messageId, "messageId is the mail's Message-ID");
  t.equal(mail.from, 'mfa@example.test');
  t.same(mail.to, ['anna.schmidt@example.com']);
  t.match(mail.headers.get('from') ?? '', /MFA Gateway <mfa@example\.test>/);
  t.ok(mail.secure, 'delivered over TLS');
  t.equal(mail.user, AUTH.user, 'logged in with the configured user');
  t.match(mail.text, /^Hello Anna Schmidt,$/m);
  t.match(mail.text, /^It expires in 10 minutes\.$/m);
  t.match(mail.text, /^Login: vpn from 198\.51\.100\.7$/m);
  t.match(mail.text, /^If this was not you, do not give this code to anyone and tell your IT department\.$/m);
  t.match(mail.html ?? '', new RegExp(`<strong>${code}</strong>`), 'an HTML alternative with the code');
  t.same(clientCommands(p), ['auth', 'mail', 'rcpt'], 'AUTH and the envelope only after STARTTLS');
  t.notOk(
    logLines.some((line) => line.includes(code) || line.includes(AUTH.pass)),
    'neither the code nor the relay password is logged',
  );
});

void t.test('connections are pooled: several mails, one connection', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  for (let i = 0; i < 3; i++) await smtp.sendCode(codeMessage(`user${i}@example.com`, randomCode()));
  t.equal(p.mails().length, 3);
  t.equal(p.connections(), 1);
});

void t.test('implicit TLS', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'implicit', auth: AUTH });
  const smtp = provider(t, p, { tls: 'implicit' });
  const code = randomCode();
  await smtp.sendCode(codeMessage('bob@example.com', code));
  const mail = await p.waitForMail('BOB@example.com');
  t.equal(CODE_LINE.exec(mail.text)?.[1], code);
  t.ok(mail.secure);
});

void t.test('a server certificate from another CA is refused: unavailable, nothing sent', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  for (const tls of ['starttls', 'implicit'] as const) {
    const p = await peer(t, { tls, auth: AUTH });
    const smtp = provider(t, p, { tls, ca: p.untrustedCaPem });
    await t.rejects(smtp.sendCode(codeMessage('anna@example.com', randomCode())), ProviderUnavailableError, `${tls}: refused`);
    t.same(p.mails(), [], `${tls}: no mail`);
    t.same(clientCommands(p), [], `${tls}: no AUTH, no envelope`);
  }
  // Without ca_file the system store is used, which does not know the test CA either.
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p, { ca: undefined });
  await t.rejects(smtp.sendCode(codeMessage('anna@example.com', randomCode())), ProviderUnavailableError, 'system CAs: refused');
  t.same(p.mails(), []);
});

void t.test('starttls configured, server without STARTTLS: refused, nothing sent in clear', async (t) => {
  const p = await peer(t, { tls: 'none', auth: AUTH });
  const smtp = provider(t, p, { ca: undefined });
  await t.rejects(smtp.sendCode(codeMessage('anna@example.com', randomCode())), ProviderUnavailableError);
  t.same(p.mails(), []);
  t.same(clientCommands(p), [], 'no AUTH, MAIL or RCPT crossed the plain connection');
  t.ok(p.connections() >= 1, 'it did connect');
});

void t.test('tls none is refused unless insecure; with insecure it sends in clear', async (t) => {
  const p = await peer(t, { tls: 'none', auth: AUTH });
  t.throws(() => provider(t, p, { tls: 'none', ca: undefined }), ConfigError);
  const smtp = provider(t, p, { tls: 'none', insecure: true, ca: undefined });
  const code = randomCode();
  await smtp.sendCode(codeMessage('anna@example.com', code));
  const mail = await p.waitForMail('anna@example.com');
  t.equal(CODE_LINE.exec(mail.text)?.[1], code);
  t.notOk(mail.secure);
});

void t.test('wrong password: rejected with 535', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p, { password: 'wrong-password' });
  const err = await smtp.sendCode(codeMessage('anna@example.com', randomCode())).catch((e: unknown) => e);
  t.type(err, ProviderRejectedError);
  t.equal((err as ProviderRejectedError).providerCode, '535');
  t.same(p.mails(), []);
  t.equal(smtp.breaker.state, 'closed', 'a refusal is not an outage');
});

void t.test('550 for the recipient: rejected with 550; the connection goes on', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  p.rejectNextRcpt(550, 'No such user here');
  const err = await smtp.sendCode(codeMessage('nobody@example.com', randomCode())).catch((e: unknown) => e);
  t.type(err, ProviderRejectedError);
  t.equal((err as ProviderRejectedError).providerCode, '550');
  t.equal(p.events().filter((e) => e.kind === 'rcpt').length, 1, 'not retried');
  const code = randomCode();
  await smtp.sendCode(codeMessage('anna@example.com', code));
  t.equal(CODE_LINE.exec((await p.waitForMail('anna@example.com')).text)?.[1], code);
  t.equal(p.mails().length, 1);
});

void t.test('a 4xx reply is transient: retried, then delivered once', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p, { retries: 2 });
  p.rejectNextRcpt(451, 'Greylisted, try again');
  const code = randomCode();
  await smtp.sendCode(codeMessage('anna@example.com', code));
  const mail = await p.waitForMail('anna@example.com');
  t.equal(CODE_LINE.exec(mail.text)?.[1], code);
  t.equal(mail.headers.get('auto-submitted'), 'auto-generated', 'the retried mail is the same mail');
  t.equal(p.mails().length, 1, 'one copy');
  t.equal(p.events().filter((e) => e.kind === 'rcpt').length, 2);

  p.rejectNextRcpt(451);
  p.rejectNextRcpt(452);
  p.rejectNextRcpt(450);
  await t.rejects(smtp.sendCode(codeMessage('anna@example.com', randomCode())), ProviderRejectedError, 'bounded: retries + 1 tries, then undeliverable (not an outage)');
  t.equal(smtp.breaker.state, 'closed', "one recipient's trouble does not open the breaker");
  t.equal(p.mails().length, 1);
  t.equal(p.events().filter((e) => e.kind === 'rcpt').length, 5);
});

void t.test('server down, dropping connections, or busy: unavailable; the breaker opens', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const busy = await peer(t, { tls: 'starttls', auth: AUTH });
  busy.setConnectionMode('busy');
  const s1 = provider(t, busy, { retries: 1 });
  await t.rejects(s1.sendCode(codeMessage('anna@example.com', randomCode())), ProviderUnavailableError, '421 greeting');
  t.equal(busy.connections(), 2, 'a 421 greeting is retried (nothing was sent)');

  const dropping = await peer(t, { tls: 'starttls', auth: AUTH });
  dropping.setConnectionMode('drop');
  const s2 = provider(t, dropping, { retries: 1 });
  await t.rejects(s2.sendCode(codeMessage('anna@example.com', randomCode())), ProviderUnavailableError, 'closed before the greeting');
  t.ok(dropping.connections() >= 2 && dropping.connections() <= 4, `bounded tries (${dropping.connections()})`);
  t.same(dropping.mails(), []);

  const down = await peer(t, { tls: 'starttls', auth: AUTH });
  const s3 = provider(t, down, { retries: 1, breaker_failures: 2 });
  await s3.sendCode(codeMessage('anna@example.com', randomCode()));
  await down.close();
  const started = Date.now();
  await t.rejects(s3.sendCode(codeMessage('anna@example.com', randomCode())), ProviderUnavailableError, 'connection refused');
  t.ok(Date.now() - started < 2000, 'fails fast');
  t.equal(s3.breaker.state, 'open', 'two refused connections opened the breaker');
  await t.rejects(s3.sendCode(codeMessage('anna@example.com', randomCode())), { name: 'ProviderUnavailableError', message: /circuit breaker open/ });
});

void t.test('an aborted send is unavailable, not sent', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  const abort = new AbortController();
  abort.abort();
  await t.rejects(smtp.sendCode(codeMessage('anna@example.com', randomCode(), anna, abort.signal)), ProviderUnavailableError);
  t.same(p.mails(), []);
});

void t.test('German template for language de', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  const code = randomCode();
  await smtp.sendCode({ ...codeMessage('jonas@example.de', code, { userId: 'u2', username: 'jonas', displayName: 'Jonas Müller', language: 'de-AT' }), ttlSeconds: 60 });
  const mail = await p.waitForMail('jonas@example.de');
  t.equal(mail.subject, 'Ihr Bestätigungscode');
  t.equal(CODE_LINE.exec(mail.text)?.[1], code);
  t.match(mail.text, /^Hallo Jonas Müller,$/m);
  t.match(mail.text, /^Er läuft in 1 Minute ab\.$/m);
  t.match(mail.text, /^Anmeldung: vpn von 198\.51\.100\.7$/m);
  t.match(mail.text, /IT-Abteilung/);
  t.match(mail.html ?? '', /lang="de"/);

  const noName = randomCode();
  await smtp.sendCode(codeMessage('eve@example.com', noName, { userId: 'u3', username: 'eve', displayName: 'Eve\r\n    000000', language: 'fr' }));
  const english = await p.waitForMail('eve@example.com');
  t.equal(english.subject, 'Your verification code', 'other languages get English');
  t.equal([...english.text.matchAll(new RegExp(CODE_LINE, 'gm'))].length, 1, 'a display name cannot add a second code line');
  t.equal(mailLanguage('DE'), 'de');
  t.equal(mailLanguage('dev'), 'en');
  t.equal(mailLanguage(null), 'en');
});

void t.test('an address that is not a single mailbox is refused before anything is sent', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  for (const to of ['anna@example.com, mallory@example.net', 'Anna <anna@example.com>', 'anna', 'anna@example.com\r\nBcc: x@example.net', '']) {
    await t.rejects(smtp.sendCode(codeMessage(to, randomCode())), ProviderRejectedError, JSON.stringify(to));
  }
  t.equal(p.connections(), 0);
});

void t.test('sendNotice delivers one mail to several admins', async (t) => {
  if (!requirePeer(t, 'openssl', 'openssl')) return;
  const p = await peer(t, { tls: 'starttls', auth: AUTH });
  const smtp = provider(t, p);
  const admins = ['admin1@example.com', 'admin2@example.com', 'secops@example.org'];
  const sent = await smtp.sendNotice(admins, 'Fraud report: anna\r\nBcc: x@example.net', 'anna reported a push she did not start.\nClient: vpn');
  t.equal(p.mails().length, 1, 'one mail');
  for (const admin of admins) {
    const mail = await p.waitForMail(admin);
    t.equal(mail.headers.get('message-id'), sent.messageId);
    t.equal(mail.subject, 'Fraud report: anna Bcc: x@example.net', 'no header injection through the subject');
    t.equal(mail.text.trim(), 'anna reported a push she did not start.\nClient: vpn');
    t.equal(mail.headers.get('auto-submitted'), 'auto-generated');
  }
  t.same([...(p.mails()[0]?.to ?? [])].sort(), [...admins].sort());
  t.notOk(p.mails()[0]?.headers.has('bcc'));

  p.rejectNextRcpt(550);
  await smtp.sendNotice(['gone@example.com', 'admin1@example.com'], 'Fraud report', 'text');
  t.same(p.mails()[1]?.to, ['admin1@example.com'], 'delivered to the ones the server accepted');
});

void t.test('the peer decodes what nodemailer writes: base64 and quoted-printable, nested multiparts', async (t) => {
  const p = await peer(t, { tls: 'none' });
  const client = createTransport({ host: '127.0.0.1', port: p.port, ignoreTLS: true, logger: false });
  t.teardown(() => client.close());
  const text = 'Grüße aus Köln – 123456\nzweite Zeile mit einer sehr langen Zeile, '.concat('x'.repeat(120));
  for (const textEncoding of ['base64', 'quoted-printable'] as const) {
    await client.sendMail({
      from: 'a@example.test',
      to: `${textEncoding}@example.test`,
      subject: 'Prüfung 🙂 with a long subject that nodemailer folds over several encoded words for sure',
      text,
      html: '<p>Grüße</p>',
      textEncoding,
      attachments: [{ filename: 'a.txt', content: 'attached' }],
    });
    const mail = await p.waitForMail(`${textEncoding}@example.test`);
    t.match(mail.headers.get('content-type') ?? '', /^multipart\/mixed/, `${textEncoding}: alternative inside mixed`);
    t.equal(mail.text, text, `${textEncoding}: text`);
    t.equal(mail.html, '<p>Grüße</p>', `${textEncoding}: html`);
    t.equal(mail.subject, 'Prüfung 🙂 with a long subject that nodemailer folds over several encoded words for sure');
  }
});

void t.test('error classification', async (t) => {
  const e = (props: Record<string, unknown>) => Object.assign(new Error('x'), props);
  t.match(classifySmtpError(e({ code: 'EENVELOPE', responseCode: 550 })), { kind: 'rejected', replyCode: '550' });
  t.match(classifySmtpError(e({ code: 'EAUTH', responseCode: 535 })), { kind: 'rejected', replyCode: '535' });
  t.match(classifySmtpError(e({ code: 'EAUTH', responseCode: 454 })), { kind: 'unavailable', retryable: true });
  t.match(classifySmtpError(e({ code: 'EMESSAGE', responseCode: 451 })), { kind: 'unavailable', retryable: true });
  t.match(classifySmtpError(e({ code: 'EENVELOPE', responseCode: 452, command: 'RCPT TO' })), { kind: 'unavailable', retryable: true, recipient: true });
  t.match(classifySmtpError(e({ code: 'EENVELOPE', responseCode: 503 })), { kind: 'unavailable', retryable: true });
  t.match(classifySmtpError(e({ code: 'ETLS', responseCode: 502 })), { kind: 'unavailable', retryable: false });
  t.match(classifySmtpError(e({ code: 'ESOCKET', originalCode: 'ECONNREFUSED' })), { kind: 'unavailable', retryable: true });
  t.match(classifySmtpError(e({ code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT' })), { kind: 'unavailable', retryable: true });
  t.match(classifySmtpError(e({ code: 'ETIMEDOUT', timeoutType: 'SOCKET_TIMEOUT' })), { kind: 'unavailable', retryable: false });
  t.match(classifySmtpError(e({ code: 'ECONNECTION' })), { kind: 'unavailable', retryable: false }, 'a broken session may have been after the final dot');
  t.match(classifySmtpError(e({ code: 'EABORT' })), { kind: 'aborted' });
});
