import type { NodemailerError } from 'nodemailer';

/**
 * What a nodemailer error means for the gateway. Three questions: did the server refuse the mail
 * for good (a 5xx reply: 550 mailbox unknown, 535 bad credentials → ProviderRejectedError, the
 * next provider is tried but the breaker is not charged), is the server or the path to it broken
 * (everything else → ProviderUnavailableError), and if broken, may the same mail be sent again
 * without risking a second copy: only when the server cannot have accepted it.
 *
 * Safe to retry: a 4xx reply (RFC 5321 §4.2.1: transient negative completion; the transaction
 * did not happen, also when given for the final dot) and 503 (bad sequence, nothing accepted),
 * and failures before the session existed: connection refused, unreachable, name lookup, connect
 * or greeting timeouts. Not retried: a connection that broke or went silent later (it may have
 * been after the final dot, while the server was queueing the mail), and TLS failures (a wrong
 * certificate or a server without STARTTLS stays wrong on the next try).
 */

export type SmtpFailure =
  | { readonly kind: 'rejected'; readonly replyCode: string; readonly message: string }
  /** `recipient`: a 4xx to RCPT TO (greylisting, a full mailbox): this address's trouble, not the server's. */
  | { readonly kind: 'unavailable'; readonly retryable: boolean; readonly message: string; readonly recipient?: boolean }
  | { readonly kind: 'aborted' };

const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);
const SESSION_NOT_STARTED = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT']);

export function classifySmtpError(err: unknown): SmtpFailure {
  const e = (typeof err === 'object' && err !== null ? err : {}) as NodemailerError;
  const message = oneLine(err instanceof Error ? err.message : String(err));
  if (e.code === 'EABORT' || e.name === 'AbortError') return { kind: 'aborted' };
  // STARTTLS refused (a 502 to STARTTLS) or a certificate we do not trust: an unusable server, not
  // a verdict on this mail, whatever reply code came with it.
  if (e.code === 'ETLS') return { kind: 'unavailable', retryable: false, message };
  const reply = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  if (reply !== undefined) {
    if (reply >= 500 && reply < 600 && reply !== 503) return { kind: 'rejected', replyCode: String(reply), message };
    const command = (e as { command?: unknown }).command;
    const recipient = reply >= 400 && reply < 500 && typeof command === 'string' && /^RCPT/i.test(command);
    return { kind: 'unavailable', retryable: (reply >= 400 && reply < 500) || reply === 503, message, ...(recipient ? { recipient } : {}) };
  }
  // Refused by nodemailer before anything was sent: a recipient it cannot parse, no credentials.
  if (e.code === 'EENVELOPE' || e.code === 'ENOAUTH' || e.code === 'EAUTH') return { kind: 'rejected', replyCode: e.code, message };
  const original = e.originalCode ?? e.code;
  if (e.code === 'EDNS' || (original !== undefined && NEVER_CONNECTED.has(original))) return { kind: 'unavailable', retryable: true, message };
  if (e.code === 'ETIMEDOUT' && e.timeoutType !== undefined && SESSION_NOT_STARTED.has(e.timeoutType)) return { kind: 'unavailable', retryable: true, message };
  return { kind: 'unavailable', retryable: false, message };
}

/** Server replies can span lines; the log wants one, and no more than a reply's worth. */
function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
