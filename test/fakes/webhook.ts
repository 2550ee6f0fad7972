import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { assertLoopback } from '../peers/ports.js';
import { closeServer, InjectedFaults, listenLoopback } from './loopback-server.js';

/**
 * A loopback receiver for the webhook provider: an SMS gateway as an admin would write it from
 * the README ("Webhook provider"). It checks what a careful receiver checks: the timestamp
 * header within ±5 minutes, the `v1=` HMAC-SHA256 over `<timestamp>.<raw body>` (constant-time
 * compare) → 401 otherwise; the JSON fields → 400 otherwise; and it de-duplicates on
 * `Idempotency-Key` (a retried message is answered again but delivered once).
 *
 * The signature is computed here from the documented contract, not with the gateway's code, so
 * the test proves the provider follows the README.
 */

export type WebhookBehaviour =
  /** Deliver and answer 200 `{"id": …}`. */
  | { readonly kind: 'deliver' }
  /** Refuse the number as a gateway does (400 by default). */
  | { readonly kind: 'reject'; readonly status?: number }
  /** Answer 500 every time for this number. */
  | { readonly kind: 'fail'; readonly status?: number };

export interface WebhookMessage {
  readonly id: string;
  readonly channel: 'sms' | 'voice';
  readonly to: string;
  readonly message: string;
  readonly code: string;
  readonly ttlSeconds: number;
  readonly user: string;
  readonly timestamp: number;
  readonly idempotencyKey: string;
  /** The id this receiver answered with. */
  readonly receiverId: string;
  readonly receivedAt: number;
}

export interface WebhookRequestLog {
  readonly status: number;
  /** Why a request was refused (`bad signature`, `stale timestamp`, …); empty when accepted. */
  readonly reason: string;
  readonly idempotencyKey: string | undefined;
}

export interface WebhookFakeOptions {
  readonly secret: string;
  /** Path the receiver listens on; default `/sms`. */
  readonly path?: string;
  /** Answer with `{"id": …}` (default) or with an empty 204. */
  readonly answerWithId?: boolean;
  /** Allowed clock skew in seconds (default 300). */
  readonly toleranceSeconds?: number;
}

export interface WebhookFake {
  /** Full URL to configure as the provider's `url`. */
  readonly url: string;
  /** Delivered messages, in order (each idempotency key once). */
  readonly records: readonly WebhookMessage[];
  /** Every request, accepted or not, in order. */
  readonly requests: readonly WebhookRequestLog[];
  setBehaviour(to: string, behaviour: WebhookBehaviour): void;
  setDefaultBehaviour(behaviour: WebhookBehaviour): void;
  /** The next `n` requests answer `status` (default 500) before any check. */
  failNext(n: number, status?: number): void;
  /** While on, requests get no answer at all. */
  hang(on: boolean): void;
  /** The code of the last message delivered to `to`. */
  lastCodeSentTo(to: string): string | undefined;
  /** Resolves with the `n`th message (1-based, default 1) delivered to `to`, at once if it arrived already. */
  waitForMessage(to: string, n?: number): Promise<WebhookMessage>;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

export async function startWebhookFake(opts: WebhookFakeOptions): Promise<WebhookFake> {
  const host = '127.0.0.1';
  assertLoopback(host);
  const path = opts.path ?? '/sms';
  const tolerance = opts.toleranceSeconds ?? 300;
  const records: WebhookMessage[] = [];
  const requests: WebhookRequestLog[] = [];
  const byKey = new Map<string, WebhookMessage>();
  const perNumber = new Map<string, WebhookMessage[]>();
  const behaviours = new Map<string, WebhookBehaviour>();
  const waiters = new Map<string, { n: number; resolve: (m: WebhookMessage) => void }[]>();
  const faults = new InjectedFaults();
  let defaultBehaviour: WebhookBehaviour = { kind: 'deliver' };
  let counter = 0;

  const server = createServer((req, res) => {
    readBody(req)
      .then((body) => handle(req, res, body))
      .catch(() => {
        if (!res.headersSent) answer(res, 500, { error: 'internal error' });
      });
  });
  const url = `${await listenLoopback(server, host)}${path}`;

  function handle(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): void {
    const key = header(req, 'idempotency-key');
    const refuse = (status: number, reason: string) => {
      requests.push({ status, reason, idempotencyKey: key });
      answer(res, status, { error: reason });
    };
    const fault = faults.intercept(res);
    if (fault === 'held') return;
    if (fault !== undefined) return refuse(fault, 'injected failure');
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== path) return refuse(404, 'not found');
    if (body === undefined) return refuse(413, 'body too large');
    const timestampText = header(req, 'x-mfa-gateway-timestamp');
    const signature = header(req, 'x-mfa-gateway-signature');
    if (timestampText === undefined || !/^\d{1,12}$/.test(timestampText)) return refuse(401, 'missing timestamp');
    const timestamp = Number(timestampText);
    if (Math.abs(Date.now() / 1000 - timestamp) > tolerance) return refuse(401, 'stale timestamp');
    if (signature === undefined || !signatureMatches(signature, timestampText, body)) return refuse(401, 'bad signature');
    if (!/^application\/json\b/i.test(header(req, 'content-type') ?? '')) return refuse(415, 'not JSON');
    const message = parseMessage(body, timestamp);
    if (typeof message === 'string') return refuse(400, message);
    if (key === undefined || key !== message.id) return refuse(400, 'Idempotency-Key must be the message id');

    const seen = byKey.get(key);
    if (seen !== undefined) {
      requests.push({ status: 200, reason: '', idempotencyKey: key });
      return answerDelivered(res, seen);
    }
    const behaviour = behaviours.get(message.to) ?? defaultBehaviour;
    if (behaviour.kind === 'reject') return refuse(behaviour.status ?? 400, 'number refused');
    if (behaviour.kind === 'fail') return refuse(behaviour.status ?? 500, 'gateway failure');
    const delivered: WebhookMessage = { ...message, idempotencyKey: key, receiverId: `wh-${++counter}`, receivedAt: Date.now() };
    records.push(delivered);
    byKey.set(key, delivered);
    const sent = perNumber.get(delivered.to) ?? [];
    sent.push(delivered);
    perNumber.set(delivered.to, sent);
    requests.push({ status: 200, reason: '', idempotencyKey: key });
    answerDelivered(res, delivered);
    const list = waiters.get(delivered.to);
    if (list !== undefined) {
      const rest = list.filter((w) => {
        const nth = sent[w.n - 1];
        if (nth === undefined) return true;
        w.resolve(nth);
        return false;
      });
      if (rest.length === 0) waiters.delete(delivered.to);
      else waiters.set(delivered.to, rest);
    }
  }

  function answerDelivered(res: ServerResponse, message: WebhookMessage): void {
    if (opts.answerWithId === false) {
      res.writeHead(204);
      res.end();
    } else answer(res, 200, { id: message.receiverId });
  }

  function signatureMatches(given: string, timestamp: string, body: Buffer): boolean {
    const expected = Buffer.from(`v1=${createHmac('sha256', opts.secret).update(`${timestamp}.`).update(body).digest('hex')}`);
    const actual = Buffer.from(given);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  return {
    url,
    records,
    requests,
    setBehaviour(to, behaviour) {
      behaviours.set(to, behaviour);
    },
    setDefaultBehaviour(behaviour) {
      defaultBehaviour = behaviour;
    },
    failNext: (n, status) => faults.failNext(n, status),
    hang: (on) => faults.hang(on),
    lastCodeSentTo(to) {
      return perNumber.get(to)?.at(-1)?.code;
    },
    waitForMessage(to, n = 1) {
      const arrived = perNumber.get(to)?.[n - 1];
      if (arrived !== undefined) return Promise.resolve(arrived);
      return new Promise((resolve) => {
        const list = waiters.get(to) ?? [];
        list.push({ n, resolve });
        waiters.set(to, list);
      });
    },
    async close() {
      faults.cutHeld();
      await closeServer(server);
    },
  };
}

function parseMessage(body: Buffer, timestamp: number): Omit<WebhookMessage, 'idempotencyKey' | 'receiverId' | 'receivedAt'> | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return 'body is not JSON';
  }
  if (typeof value !== 'object' || value === null) return 'body is not a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v.id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(v.id)) return 'id must be a UUID';
  if (v.channel !== 'sms' && v.channel !== 'voice') return 'channel must be sms or voice';
  if (typeof v.to !== 'string' || !/^\+[1-9]\d{6,14}$/.test(v.to)) return 'to must be an E.164 number';
  if (typeof v.code !== 'string' || !/^\d{4,10}$/.test(v.code)) return 'code must be digits';
  if (typeof v.message !== 'string' || !v.message.includes(v.code)) return 'message must carry the code';
  if (typeof v.ttl_seconds !== 'number' || !Number.isInteger(v.ttl_seconds) || v.ttl_seconds <= 0) return 'ttl_seconds must be a positive integer';
  if (typeof v.user !== 'string') return 'user must be a string';
  if (v.timestamp !== timestamp) return 'timestamp must equal the timestamp header';
  return { id: v.id, channel: v.channel, to: v.to, message: v.message, code: v.code, ttlSeconds: v.ttl_seconds, user: v.user, timestamp };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
