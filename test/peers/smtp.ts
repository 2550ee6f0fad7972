import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { makeTlsFiles, type TlsFiles } from './tls-ca.js';

/**
 * A real SMTP server (the `smtp-server` package: the receiving side nodemailer itself is tested
 * against) on a free loopback port, for the mail provider and the end-to-end tests. It speaks
 * STARTTLS, implicit TLS or plain SMTP with a certificate from test/peers/tls-ca.ts, requires
 * AUTH PLAIN/LOGIN when given credentials (a wrong password gets 535, AUTH before TLS is refused
 * as a real relay refuses it), keeps every mail it accepted, and decodes what a test wants to read
 * (subject, plain-text and HTML parts) from the raw message.
 *
 * Failure switches: `rejectNextRcpt(550)` refuses the next recipient; `setConnectionMode('drop')`
 * closes each new connection before the greeting, `'busy'` greets with 421; `close()` stops it
 * (connection refused from then on).
 */

export type SmtpPeerTls = 'starttls' | 'implicit' | 'none';

export interface SmtpPeerOptions {
  /** A private temp dir: TLS material goes into `<dir>/tls` unless `tlsFiles` is given. */
  readonly dir: string;
  readonly tls: SmtpPeerTls;
  /** Credentials the server requires (AUTH PLAIN or LOGIN); without them AUTH is not offered. */
  readonly auth?: { readonly user: string; readonly pass: string };
  /** TLS material to reuse (one openssl run for several peers of a test file). */
  readonly tlsFiles?: TlsFiles;
}

export interface ReceivedMail {
  /** Envelope sender (MAIL FROM). */
  readonly from: string;
  /** Envelope recipients (RCPT TO) the server accepted. */
  readonly to: readonly string[];
  /** The message as received (CRLF line ends, transfer encodings intact). */
  readonly raw: string;
  /** Top-level headers, lower-case names, folded lines joined; first occurrence wins. */
  readonly headers: ReadonlyMap<string, string>;
  /** Decoded (RFC 2047) subject. */
  readonly subject: string;
  /** The text/plain part, transfer encoding undone, LF line ends; '' when there is none. */
  readonly text: string;
  /** The text/html part, decoded the same way, when there is one. */
  readonly html: string | undefined;
  /** Whether the session was TLS-protected when the mail came. */
  readonly secure: boolean;
  /** The authenticated user, if the client logged in. */
  readonly user: string | undefined;
}

/** What clients did, in order: to prove that nothing (AUTH, MAIL FROM) was sent in clear. */
export interface PeerEvent {
  readonly kind: 'connect' | 'auth' | 'mail' | 'rcpt';
  readonly secure: boolean;
  /** User name for auth, address for mail/rcpt. */
  readonly detail: string;
}

/** `accept`: normal. `drop`: close new connections before the greeting. `busy`: greet with 421 and close. */
export type ConnectionMode = 'accept' | 'drop' | 'busy';

export interface SmtpPeer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** PEM of the CA that signed the server certificate (what the client's `ca` is); undefined without TLS. */
  readonly caPem: Buffer | undefined;
  /** PEM of a CA that signed nothing here: a client trusting only it must refuse this server. */
  readonly untrustedCaPem: Buffer | undefined;
  readonly tlsFiles: TlsFiles | undefined;
  /** Mails accepted so far, in order. */
  mails(): ReceivedMail[];
  events(): PeerEvent[];
  /** Connections accepted so far (before the connection mode is applied). */
  connections(): number;
  /**
   * The first mail for `to` (envelope recipient, case-insensitive) not yet returned for `to` by
   * an earlier call, waiting up to `timeoutMs` (default 5000) for it to arrive.
   */
  waitForMail(to: string, timeoutMs?: number): Promise<ReceivedMail>;
  /** Refuses the next RCPT TO (of any client) with `code` (default 550). Calls queue up. */
  rejectNextRcpt(code?: number, message?: string): void;
  setConnectionMode(mode: ConnectionMode): void;
  /** Stops listening and cuts every open connection. */
  close(): Promise<void>;
}

interface Waiter {
  readonly to: string;
  resolve(mail: ReceivedMail): void;
  reject(err: Error): void;
  readonly timer: NodeJS.Timeout;
}

const MAX_MESSAGE_BYTES = 1 << 20;

export async function startSmtpPeer(opts: SmtpPeerOptions): Promise<SmtpPeer> {
  const tlsFiles =
    opts.tls === 'none'
      ? undefined
      : (opts.tlsFiles ?? (await makeTlsFiles(join(opts.dir, 'tls'), { ip: '127.0.0.1', dnsName: 'mail.example.test', extraDnsNames: ['localhost'] })));
  const received: ReceivedMail[] = [];
  /** Per mail, the recipients a waitForMail call has already returned it for. */
  const taken = new WeakMap<ReceivedMail, Set<string>>();
  const isFree = (mail: ReceivedMail, want: string): boolean =>
    mail.to.some((rcpt) => rcpt.toLowerCase() === want) && taken.get(mail)?.has(want) !== true;
  const take = (mail: ReceivedMail, want: string): ReceivedMail => {
    const set = taken.get(mail) ?? new Set<string>();
    set.add(want);
    taken.set(mail, set);
    return mail;
  };
  const events: PeerEvent[] = [];
  const waiters: Waiter[] = [];
  const rcptRejections: { code: number; message: string }[] = [];
  const sockets = new Set<Socket>();
  let mode: ConnectionMode = 'accept';
  let accepted = 0;
  let closed = false;

  const deliver = (mail: ReceivedMail): void => {
    // One mail can satisfy one waiter per recipient (a notice to three admins, three waiters).
    for (const waiter of [...waiters]) {
      if (!isFree(mail, waiter.to)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      clearTimeout(waiter.timer);
      waiter.resolve(take(mail, waiter.to));
    }
  };

  const disabledCommands: string[] = [];
  if (opts.tls === 'none') disabledCommands.push('STARTTLS');
  if (opts.auth === undefined) disabledCommands.push('AUTH');
  const options: SMTPServerOptions = {
    name: 'mail.example.test',
    banner: 'mfa-gateway test peer',
    secure: opts.tls === 'implicit',
    ...(tlsFiles === undefined ? {} : { key: readFileSync(tlsFiles.keyFile), cert: readFileSync(tlsFiles.certFile) }),
    disabledCommands,
    authOptional: opts.auth === undefined,
    // Plain SMTP with AUTH exists only as the operator's explicit `insecure` choice; allow it then.
    allowInsecureAuth: opts.tls === 'none',
    size: MAX_MESSAGE_BYTES,
    disableReverseLookup: true,
    logger: false,
    socketTimeout: 30_000,
    closeTimeout: 200,
    onConnect(session, callback) {
      events.push({ kind: 'connect', secure: session.secure, detail: session.remoteAddress });
      if (mode === 'busy') {
        callback(smtpError(421, 'Too busy, try again later'));
        return;
      }
      callback();
    },
    onAuth(auth, session, callback) {
      events.push({ kind: 'auth', secure: session.secure, detail: auth.username ?? '' });
      if (opts.auth !== undefined && auth.username === opts.auth.user && auth.password === opts.auth.pass) {
        callback(null, { user: auth.username });
        return;
      }
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onMailFrom(address, session, callback) {
      events.push({ kind: 'mail', secure: session.secure, detail: address.address });
      callback();
    },
    onRcptTo(address, session, callback) {
      events.push({ kind: 'rcpt', secure: session.secure, detail: address.address });
      const rejection = rcptRejections.shift();
      callback(rejection === undefined ? null : smtpError(rejection.code, rejection.message));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          callback(smtpError(552, 'Message exceeds fixed maximum message size'));
          return;
        }
        const mail = toReceivedMail(Buffer.concat(chunks).toString('utf8'), session);
        received.push(mail);
        deliver(mail);
        callback(null, `Message queued as ${session.id}`);
      });
    },
  };
  const smtp = new SMTPServer(options);
  // Handshake failures (a client refusing our certificate) land here; they are the tests' point.
  smtp.on('error', () => undefined);

  // Our own listener in front of smtp-server's connection handler: it can drop a connection
  // before smtp-server ever sees it (no greeting at all), which smtp-server has no option for.
  const front: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (mode === 'drop' || closed) {
      socket.destroy();
      return;
    }
    smtp.server.emit('connection', socket);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(0, '127.0.0.1', () => {
      front.off('error', reject);
      resolve();
    });
  });
  const address = front.address();
  if (address === null || typeof address === 'string') throw new Error('smtp peer: no TCP address');

  return {
    host: '127.0.0.1',
    port: address.port,
    caPem: tlsFiles === undefined ? undefined : readFileSync(tlsFiles.caFile),
    untrustedCaPem: tlsFiles === undefined ? undefined : readFileSync(tlsFiles.untrustedCaFile),
    tlsFiles,
    mails: () => [...received],
    events: () => [...events],
    connections: () => accepted,
    waitForMail(to, timeoutMs = 5000) {
      const want = to.toLowerCase();
      const ready = received.find((mail) => isFree(mail, want));
      if (ready !== undefined) return Promise.resolve(take(ready, want));
      if (closed) return Promise.reject(new Error(`smtp peer closed; no mail for ${to}`));
      return new Promise<ReceivedMail>((resolve, reject) => {
        const waiter: Waiter = {
          to: want,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(waiter), 1);
            reject(new Error(`smtp peer: no mail for ${to} within ${timeoutMs} ms (${received.length} received)`));
          }, timeoutMs),
        };
        waiters.push(waiter);
      });
    },
    rejectNextRcpt(code = 550, message = 'Mailbox unavailable') {
      rcptRejections.push({ code, message });
    },
    setConnectionMode(next) {
      mode = next;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const waiter of waiters.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error('smtp peer closed'));
      }
      const stopped = new Promise<void>((resolve) => front.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await Promise.all([stopped, new Promise<void>((resolve) => smtp.close(() => resolve()))]);
    },
  };
}

function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

function toReceivedMail(raw: string, session: SMTPServerSession): ReceivedMail {
  const { headers, body } = splitMessage(raw);
  const parts = { text: undefined as string | undefined, html: undefined as string | undefined };
  collectParts(headers, body, parts);
  const user: unknown = session.user;
  return {
    from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
    to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
    raw,
    headers,
    subject: decodeEncodedWords(headers.get('subject') ?? ''),
    text: parts.text ?? '',
    html: parts.html,
    secure: session.secure,
    user: typeof user === 'string' ? user : undefined,
  };
}

// --- Just enough MIME for what nodemailer writes: multipart/* trees, quoted-printable, base64. ---

function splitMessage(raw: string): { headers: Map<string, string>; body: string } {
  const match = /\r?\n\r?\n/.exec(raw);
  const head = match === null ? raw : raw.slice(0, match.index);
  const body = match === null ? '' : raw.slice(match.index + match[0].length);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return { headers, body };
}

function contentType(headers: ReadonlyMap<string, string>): { type: string; params: Map<string, string> } {
  const [type = 'text/plain', ...rest] = (headers.get('content-type') ?? 'text/plain').split(';');
  const params = new Map<string, string>();
  for (const param of rest) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    params.set(param.slice(0, eq).trim().toLowerCase(), param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return { type: type.trim().toLowerCase(), params };
}

function collectParts(headers: ReadonlyMap<string, string>, body: string, out: { text: string | undefined; html: string | undefined }): void {
  const { type, params } = contentType(headers);
  if (type.startsWith('multipart/')) {
    const boundary = params.get('boundary');
    if (boundary === undefined) return;
    const sections = body.split(new RegExp(`^--${escapeRegExp(boundary)}(?:--)?[ \\t]*\\r?$\\n?`, 'm'));
    // sections[0] is the preamble, the last one the epilogue after the closing delimiter.
    for (const section of sections.slice(1, -1)) {
      const part = splitMessage(section.replace(/\r?\n$/, ''));
      collectParts(part.headers, part.body, out);
    }
    return;
  }
  const charset = params.get('charset') ?? 'utf-8';
  const decoded = decodeBody(body, (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase(), charset).replace(/\r\n/g, '\n');
  if (type === 'text/plain' && out.text === undefined) out.text = decoded;
  if (type === 'text/html' && out.html === undefined) out.html = decoded;
}

function decodeBody(body: string, encoding: string, charset: string): string {
  if (encoding === 'base64') return decodeBytes(Buffer.from(body.replace(/\s+/g, ''), 'base64'), charset);
  if (encoding === 'quoted-printable') return decodeBytes(quotedPrintableBytes(body.replace(/[ \t]+(\r?\n)/g, '$1').replace(/=\r?\n/g, '')), charset);
  return body;
}

function quotedPrintableBytes(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const hex = text.slice(i + 1, i + 3);
    if (text[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(text.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words (`=?UTF-8?Q?Ihr_Best=C3=A4tigungscode?=`), B and Q. */
function decodeEncodedWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_all, charset: string, enc: string, text: string) =>
      enc.toUpperCase() === 'B' ? decodeBytes(Buffer.from(text, 'base64'), charset) : decodeBytes(quotedPrintableBytes(text.replace(/_/g, ' ')), charset),
    );
}

function decodeBytes(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
