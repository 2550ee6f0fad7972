import { setTimeout as sleep } from 'node:timers/promises';
import { createTransport, type SMTPPoolOptions, type SMTPPoolSentMessageInfo, type SendMailOptions, type Transporter } from 'nodemailer';
import type { ResolvedProvider } from '../../config/config.js';
import { ConfigError, InternalError, ProviderRejectedError, ProviderUnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { CircuitBreaker } from '../circuit-breaker.js';
import type { ApprovalChannel, CodeChannel, CodeMessage, Provider, ProviderDeps, SentMessage } from './provider.js';
import { classifySmtpError } from './smtp-failures.js';
import { renderCodeMail } from './smtp-templates.js';
import { maskEmail } from '../masking.js';
import { jitteredBackoff } from '../cloud-client.js';

/**
 * One-time codes by mail, through an SMTP relay (the company's own mail server or a mail service),
 * and the admins' fraud-report notices.
 *
 * Transport security is never negotiated down: `starttls` sets nodemailer's requireTLS, so a
 * server (or a man in the middle stripping the capability) that does not offer STARTTLS gets no
 * AUTH, no envelope and no code in clear text; `implicit` is TLS from the first byte; `none` only
 * with `insecure: true` (the config check refuses it otherwise, and so does the constructor).
 * Certificates are always verified, against `ca_file` when set, with TLS 1.2 as the floor.
 *
 * Connections are pooled (a burst of logins does not pay a TCP + TLS + AUTH handshake per mail),
 * few of them: a relay rate-limits clients that open many.
 */

export type SmtpProviderConfig = Extract<ResolvedProvider, { type: 'smtp' }>;

/** Open connections to the relay at most. */
const MAX_CONNECTIONS = 3;
/** Backoff base for retries (full jitter, as CloudClient does). */
const BACKOFF_MS = 200;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its brackets. */
const MAX_ADDRESS_LENGTH = 254;
/**
 * A bare addr-spec, nothing nodemailer's address parser could read as a display name, a group
 * or a second recipient: the address comes from a directory attribute, and
 * `boss@example.com, attacker@example.net` must not become two recipients of a code.
 */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

type Mailer = Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>;

export class SmtpProvider implements Provider {
  readonly name: string;
  readonly type = 'smtp' as const;
  readonly codeChannels: ReadonlySet<CodeChannel> = new Set<CodeChannel>(['email']);
  readonly approvalChannels: ReadonlySet<ApprovalChannel> = new Set<ApprovalChannel>();
  readonly numberMatching = false;
  readonly breaker: CircuitBreaker;
  private readonly transport: Mailer;
  private readonly log: Logger;
  private closed = false;

  constructor(
    private readonly config: SmtpProviderConfig,
    deps: ProviderDeps,
  ) {
    if (config.tls === 'none' && !config.insecure) {
      throw new ConfigError(`providers.${config.name}.tls: none sends codes in clear text; use starttls or implicit, or insecure: true`);
    }
    this.name = config.name;
    this.log = deps.log.child({ module: 'smtp', provider: config.name });
    this.breaker = new CircuitBreaker(config.breaker_failures, config.breaker_cooldown_seconds * 1000, deps.now);
    const options: SMTPPoolOptions & { pool: true } = {
      pool: true,
      maxConnections: MAX_CONNECTIONS,
      // nodemailer re-queues a mail whose pooled connection the server closed (or answered 421)
      // before a byte of the mail went out (it checks that): once is enough for that race; the
      // retries proper are ours, below.
      maxRequeues: 1,
      // socketTimeout also ends idle connections; quit politely before it does.
      idleTimeout: Math.max(1000, Math.floor(config.timeout_ms / 2)),
      host: config.host,
      port: config.port,
      secure: config.tls === 'implicit',
      requireTLS: config.tls === 'starttls',
      opportunisticTLS: false,
      ignoreTLS: config.tls === 'none',
      tls: { minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(config.ca === undefined ? {} : { ca: config.ca }) },
      connectionTimeout: config.timeout_ms,
      greetingTimeout: config.timeout_ms,
      socketTimeout: config.timeout_ms,
      dnsTimeout: config.timeout_ms,
      // Our content is strings only; never let a message field be read as a file path or URL.
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
      // forceAuth: with a user configured, a server that does not offer AUTH is an error, not a
      // silent unauthenticated send.
      ...(config.user === undefined ? {} : { auth: { user: config.user, pass: config.password ?? '' }, forceAuth: true }),
    };
    this.transport = createTransport(options);
    this.transport.on('error', (err: Error) => this.log.warn({ error: err.message }, 'smtp transport error'));
  }

  async sendCode(message: CodeMessage): Promise<SentMessage> {
    if (message.channel !== 'email') throw new InternalError(`${this.name}: smtp carries email only, not ${message.channel}`);
    const to = checkAddress(this.name, message.to);
    const mail = renderCodeMail({
      language: message.recipient.language,
      name: message.recipient.displayName ?? message.recipient.username,
      code: message.code,
      ttlSeconds: message.ttlSeconds,
      clientName: message.login.clientName,
      address: message.login.callingStationId ?? message.login.clientIp,
    });
    const info = await this.deliver({ to: [to], subject: mail.subject, text: mail.text, html: mail.html }, message.signal);
    this.log.info({ attemptId: message.login.attemptId, to: maskEmail(to), language: mail.language, messageId: info.messageId, tries: info.tries }, 'code mail sent');
    return { messageId: info.messageId };
  }

  /**
   * A plain-text notice to several addresses at once (fraud reports to the admins). Resolves when
   * the relay accepted it for at least one of them; the others are logged.
   */
  async sendNotice(to: readonly string[], subject: string, text: string, signal?: AbortSignal): Promise<SentMessage> {
    if (to.length === 0) throw new InternalError(`${this.name}: a notice needs at least one recipient`);
    const recipients = to.map((address) => checkAddress(this.name, address));
    const info = await this.deliver({ to: recipients, subject: subject.replace(/[\r\n]+/g, ' '), text }, signal);
    if (info.rejected.length > 0) this.log.warn({ rejected: info.rejected.map(maskEmail), messageId: info.messageId }, 'notice refused for some recipients');
    this.log.info({ recipients: recipients.length - info.rejected.length, messageId: info.messageId, tries: info.tries }, 'notice mail sent');
    return { messageId: info.messageId };
  }

  close(): Promise<void> {
    this.closed = true;
    // Idle connections go at once; one in the middle of a mail finishes it first.
    this.transport.close();
    return Promise.resolve();
  }

  private async deliver(
    content: { to: readonly string[]; subject: string; text: string; html?: string },
    signal: AbortSignal | undefined,
  ): Promise<{ messageId: string | null; rejected: readonly string[]; tries: number }> {
    const mail: SendMailOptions = {
      from: this.config.from,
      to: content.to.map((address) => ({ name: '', address })),
      subject: content.subject,
      text: content.text,
      ...(content.html === undefined ? {} : { html: content.html }),
      headers: {
        // RFC 3834: no vacation replies or other auto-answers to a machine's mail.
        'Auto-Submitted': 'auto-generated',
        // Exchange and Outlook honour this rather than Auto-Submitted for out-of-office replies.
        'X-Auto-Response-Suppress': 'All',
      },
      ...(signal === undefined ? {} : { signal }),
    };
    const tries = this.config.retries + 1;
    let lastError = 'no try made';
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (this.closed) throw new ProviderUnavailableError(`${this.name}: provider closed`);
      if (signal?.aborted) throw new ProviderUnavailableError(`${this.name}: send abandoned`);
      if (!this.breaker.allow()) throw new ProviderUnavailableError(`${this.name}: circuit breaker open after repeated failures`);
      try {
        const info = await this.transport.sendMail(mail);
        this.breaker.success();
        return { messageId: info.messageId === '' ? null : info.messageId, rejected: info.rejected, tries: attempt };
      } catch (err) {
        const failure = classifySmtpError(err);
        if (failure.kind === 'rejected') {
          // The server answered: it is up, whatever it thinks of this mail.
          this.breaker.success();
          this.log.warn({ replyCode: failure.replyCode, error: failure.message }, 'smtp server refused the mail');
          throw new ProviderRejectedError(`${this.name}: ${failure.message}`, failure.replyCode);
        }
        if (failure.kind === 'unavailable' && failure.recipient === true) {
          // One recipient's transient trouble (greylisting, a full mailbox): retried, but not the
          // server's fault, and when it persists the mail is undeliverable, not the relay down
          // (which under fail_mode safe would let the login through without a code).
          this.breaker.success();
          lastError = failure.message;
          const again = failure.retryable && attempt < tries;
          this.log.warn({ attempt, tries, error: lastError, willRetry: again }, 'smtp server deferred the recipient');
          if (!again) throw new ProviderRejectedError(`${this.name}: ${failure.message}`, 'recipient-deferred');
        } else {
          // An abort counts too: it frees a half-open probe, and a send slower than the login's
          // patience is an outage from the user's side.
          this.breaker.failure();
          if (failure.kind === 'aborted') throw new ProviderUnavailableError(`${this.name}: send abandoned`);
          lastError = failure.message;
          const willRetry = failure.retryable && attempt < tries;
          this.log.warn({ attempt, tries, error: lastError, willRetry }, 'smtp send failed');
          if (!willRetry) break;
        }
      }
      await sleep(jitteredBackoff(BACKOFF_MS, attempt), undefined, signal ? { signal } : undefined).catch(() => undefined);
    }
    throw new ProviderUnavailableError(`${this.name}: ${lastError}`);
  }
}

function checkAddress(provider: string, address: string): string {
  if (address.length > MAX_ADDRESS_LENGTH || !ADDRESS.test(address)) {
    throw new ProviderRejectedError(`${provider}: not a single mail address: ${JSON.stringify(address.slice(0, 80))}`, 'address');
  }
  return address;
}

