import { createHash, createHmac, randomBytes, randomInt, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { assertLoopback } from '../peers/ports.js';
import { closeServer, InjectedFaults, listenLoopback } from './loopback-server.js';

/**
 * A loopback stand-in for Duo's Auth API v2 (duo.com/docs/authapi) plus the users' phones.
 *
 * Service side: `GET /auth/v2/ping` (unsigned), `GET /auth/v2/check`, `POST /auth/v2/preauth`,
 * `POST /auth/v2/auth` (factors auto, push, phone, sms, passcode; `async=1` answers a txid) and
 * `GET /auth/v2/auth_status` (a long poll: it answers at once when the transaction has a status
 * the caller has not been given yet, otherwise holds the request until it changes, at most
 * `longPollMs`). Answers are Duo's envelope, `{stat: 'OK', response}` or `{stat: 'FAIL', code,
 * message, message_detail?}` with the HTTP status the first three digits of `code`.
 *
 * Every signed request is checked the way Duo checks it, and this check is written apart from the
 * provider's signer on purpose (a second implementation): HTTP Basic `ikey:hex`, the `Date` (or
 * `X-Duo-Date`) header in RFC 2822 form and within `maxClockSkewMs`, and the signature as one of
 * the versions Duo accepts: v2 with HMAC-SHA1 (40 hex digits, Duo's documented example), v2 with
 * HMAC-SHA512, or v5 (HMAC-SHA512 over the v2 lines plus SHA-512 of the body and of the
 * `X-Duo-*` headers), compared case-insensitively. Parameters come from the query (GET) or the
 * body, form-encoded or (v5) JSON. Refusals: 40101 missing credentials, 40102 wrong integration
 * key, 40103 bad signature, 40105 date missing or too far off (Duo documents only "401: the
 * Authorization, Date and/or Content-Type headers were missing or invalid"; 40105 is this fake's
 * choice), 40001 missing / 40002 invalid parameter with `message_detail` naming it, 404 40401,
 * 405 40501.
 *
 * Phone side, per Duo username: the preauth state (`auth` enrolled, `allow` bypass, `deny`,
 * `enroll` not enrolled: /auth then answers 40002 username, as Duo does for unknown users) and
 * what the user does with a push or call: approve, deny, fraud ("this wasn't me"), each after
 * `delayMs`, or no answer at all, which ends in Duo's own timeout (60 s at Duo, `duoTimeoutMs`
 * here). Duo's Verified Push is not modelled (the provider does not use it), so there is no
 * wrong-number behaviour. SMS: factor `sms` "texts" a 7-digit passcode, `passcodeFor` tells it,
 * factor `passcode` accepts it once.
 *
 * Cheap at scale: a transaction is one object with two timers at most and the held polls
 * waiting for it; the benchmark keeps 10 000 pending.
 */

export type DuoEnrollState = 'auth' | 'allow' | 'deny' | 'enroll';

export type DuoAnswer =
  /** Tap Approve (push) or press a key (call). */
  | { readonly kind: 'approve'; readonly delayMs?: number }
  /** Tap Deny, or hang up. */
  | { readonly kind: 'deny'; readonly delayMs?: number }
  /** Deny → "this wasn't me" (push), press 9 (call): Duo's status `fraud`. */
  | { readonly kind: 'fraud'; readonly delayMs?: number }
  /** Never answer: Duo ends the transaction with status `timeout` after `duoTimeoutMs`. */
  | { readonly kind: 'no_answer' };

export interface DuoBehaviour {
  /** What preauth says of the user (default `auth`). */
  readonly enroll?: DuoEnrollState;
  /** What the user does with a push or call (default: approve at once). */
  readonly answer?: DuoAnswer;
  /** The user's one device's capabilities (default auto, push, sms, phone, mobile_otp). */
  readonly capabilities?: readonly string[];
}

export interface DuoFakeOptions {
  /** Integration key the fake accepts. */
  readonly ikey: string;
  /** Secret key it verifies signatures with. */
  readonly skey: string;
  /** The API hostname requests are signed for (the provider's `api_host`). */
  readonly host: string;
  /** Duo's push/call lifetime (60 000 ms at Duo; default 60 000). */
  readonly duoTimeoutMs?: number;
  /** Longest an auth_status is held without news before answering `waiting` (default 25 000). */
  readonly longPollMs?: number;
  /** Allowed distance between the request's Date and the fake's clock (default 300 000). */
  readonly maxClockSkewMs?: number;
  /** Keep `records` (default true; the benchmark turns it off). */
  readonly record?: boolean;
}

export interface DuoRecord {
  readonly method: string;
  /** The path without the query: `/auth/v2/auth`. */
  readonly endpoint: string;
  /** The request's parameters as decoded (query or body). */
  readonly params: Readonly<Record<string, string>>;
  /** How it was signed: `v2-sha1`, `v2-sha512`, `v5`, `none` (ping, refused before the check) or `invalid`. */
  readonly signature: 'v2-sha1' | 'v2-sha512' | 'v5' | 'none' | 'invalid';
  /** The HTTP status answered; 0 while held (hang, long poll) or never answered. */
  readonly status: number;
  readonly receivedAt: number;
}

export interface DuoFake {
  /** `http://127.0.0.1:<port>`: the provider's `base_url`. */
  readonly url: string;
  /** Every request, in order of arrival. */
  readonly records: readonly DuoRecord[];
  setBehaviour(username: string, behaviour: DuoBehaviour): void;
  setDefaultBehaviour(behaviour: DuoBehaviour): void;
  /** The next `n` requests answer `status` (default 500) with a FAIL envelope, before any check. */
  failNext(n: number, status?: number): void;
  /** While on, requests get no answer at all (until close). */
  hang(on: boolean): void;
  /** The passcode last "texted" to `username` (factor sms), unused or not. */
  passcodeFor(username: string): string | undefined;
  /** Requests received for `endpoint` (e.g. `/auth/v2/auth`). */
  count(endpoint: string): number;
  /** Push/call transactions still waiting for the user. */
  pendingTransactions(): number;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;
const DEVICE_ID = 'DPFZRS9FB0D46QFTM891';
const DEFAULT_CAPABILITIES = ['auto', 'push', 'sms', 'phone', 'mobile_otp'] as const;
/** How long Duo keeps a finished transaction answerable. */
const KEEP_FINISHED_MS = 60_000;

type Params = Record<string, string>;
type Answer = { readonly status: number; readonly body: unknown };
type Result = 'waiting' | 'allow' | 'deny';

interface Transaction {
  readonly txid: string;
  result: Result;
  status: string;
  statusMsg: string;
  /** Bumped on every status change. */
  version: number;
  /** The version last given to a caller (auth_status answers at once when behind). */
  reported: number;
  readonly waiters: Set<() => void>;
  readonly timers: NodeJS.Timeout[];
}

/** Duo's FAIL answer, thrown by the checks and turned into the envelope by the router. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

export async function startDuoFake(opts: DuoFakeOptions): Promise<DuoFake> {
  const bind = '127.0.0.1';
  assertLoopback(bind);
  const duoTimeoutMs = opts.duoTimeoutMs ?? 60_000;
  const longPollMs = opts.longPollMs ?? 25_000;
  const maxSkewMs = opts.maxClockSkewMs ?? 300_000;
  const keepRecords = opts.record ?? true;
  const records: (DuoRecord & { status: number })[] = [];
  const counts = new Map<string, number>();
  const behaviours = new Map<string, DuoBehaviour>();
  let defaultBehaviour: DuoBehaviour = {};
  const transactions = new Map<string, Transaction>();
  const passcodes = new Map<string, { code: string; used: boolean }>();
  const faults = new InjectedFaults();
  let closed = false;

  const behaviourOf = (username: string): DuoBehaviour => behaviours.get(username) ?? defaultBehaviour;

  const server = createServer((req, res) => {
    const receivedAt = Date.now();
    readBody(req)
      .then(async (body) => {
        if (body === undefined) return send(res, { status: 413, body: fail(41301, 'Request entity too large') });
        const url = new URL(req.url ?? '/', 'http://fake');
        const endpoint = url.pathname;
        counts.set(endpoint, (counts.get(endpoint) ?? 0) + 1);
        const record = { method: req.method ?? '', endpoint, params: {} as Params, signature: 'none' as DuoRecord['signature'], status: 0, receivedAt };
        if (keepRecords) records.push(record);
        const fault = faults.intercept(res);
        if (fault === 'held') return; // no answer until hanging stops or the server closes
        if (fault !== undefined) {
          record.status = fault;
          return send(res, { status: fault, body: fail(fault * 100, fault === 503 ? 'Service unavailable' : 'Internal server error') });
        }
        let answer: Answer;
        try {
          answer = await route(req, url, body, record, res);
        } catch (err) {
          if (!(err instanceof Refusal)) throw err;
          answer = { status: err.status, body: fail(err.code, err.message, err.detail) };
        }
        record.status = answer.status;
        send(res, answer);
      })
      .catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) send(res, { status: 500, body: fail(50000, `fake failure: ${String(err)}`) });
      });
  });
  server.keepAliveTimeout = 60_000;

  const route = async (req: IncomingMessage, url: URL, body: Buffer, record: { params: Params; signature: DuoRecord['signature'] }, res: ServerResponse): Promise<Answer> => {
    const method = req.method ?? '';
    const allowed = ENDPOINTS[url.pathname];
    if (allowed === undefined) throw new Refusal(404, 40401, 'Resource not found');
    if (method !== allowed) throw new Refusal(405, 40501, 'Method not allowed');
    if (url.pathname === '/auth/v2/ping') return ok({ time: Math.floor(Date.now() / 1000) });

    const params = readParams(req, url, body);
    record.params = params.values;
    record.signature = 'invalid';
    record.signature = verifySignature(req, url, body, params);

    switch (url.pathname) {
      case '/auth/v2/check':
        return ok({ time: Math.floor(Date.now() / 1000) });
      case '/auth/v2/preauth':
        return preauth(params.values);
      case '/auth/v2/auth':
        return auth(params.values, res);
      default:
        return authStatus(params.values, res);
    }
  };

  const verifySignature = (req: IncomingMessage, url: URL, body: Buffer, params: ParsedParams): DuoRecord['signature'] => {
    const authorization = header(req, 'authorization');
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization ?? '');
    const decoded = match?.[1] === undefined ? '' : Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new Refusal(401, 40101, 'Missing request credentials');
    const ikey = decoded.slice(0, colon);
    const signature = decoded.slice(colon + 1).toLowerCase();
    const date = header(req, 'x-duo-date') ?? header(req, 'date');
    const when = date === undefined ? NaN : parseRfc2822(date);
    if (Number.isNaN(when) || Math.abs(when - Date.now()) > maxSkewMs) throw new Refusal(401, 40105, 'Request date missing or too far from the current time');
    if (ikey !== opts.ikey) throw new Refusal(401, 40102, 'Invalid integration key in request credentials');

    const method = (req.method ?? '').toUpperCase();
    const lines = [date ?? '', method, opts.host.toLowerCase(), url.pathname];
    const v2 = [...lines, encodeParams(params.signed)].join('\n');
    if (signature.length === 40 && !params.json && equalHex(signature, hmac('sha1', v2))) return 'v2-sha1';
    if (signature.length === 128) {
      const v5 = [...lines, encodeParams(params.query), sha512(body), sha512(duoHeaders(req))].join('\n');
      if (equalHex(signature, hmac('sha512', v5))) return 'v5';
      if (!params.json && equalHex(signature, hmac('sha512', v2))) return 'v2-sha512';
    }
    throw new Refusal(401, 40103, 'Invalid signature in request credentials');
  };
  const hmac = (digest: 'sha1' | 'sha512', text: string): string => createHmac(digest, opts.skey).update(text, 'utf8').digest('hex');

  const preauth = (params: Params): Answer => {
    const username = requireUser(params);
    optionalIp(params);
    const b = behaviourOf(username);
    switch (b.enroll ?? 'auth') {
      case 'allow':
        return ok({ result: 'allow', status_msg: 'Allowing unknown user' });
      case 'deny':
        return ok({ result: 'deny', status_msg: 'Your account is disabled. Please contact your administrator.' });
      case 'enroll':
        return ok({ result: 'enroll', status_msg: 'Enroll an authentication device to proceed', enroll_portal_url: `https://${opts.host}/portal?code=${randomBytes(8).toString('hex')}` });
      default:
        return ok({
          result: 'auth',
          status_msg: 'Account is active',
          devices: [{ device: DEVICE_ID, type: 'phone', number: 'XXX-XXX-0100', name: '', capabilities: [...(b.capabilities ?? DEFAULT_CAPABILITIES)] }],
        });
    }
  };

  const auth = async (params: Params, res: ServerResponse): Promise<Answer> => {
    const username = requireUser(params);
    optionalIp(params);
    const factor = params['factor'];
    if (factor === undefined) throw new Refusal(400, 40001, 'Missing required request parameters', 'factor');
    if (!isFactor(factor)) throw new Refusal(400, 40002, 'Invalid request parameters', 'factor');
    const asyncFlag = params['async'];
    if (asyncFlag !== undefined && !['0', '1', 'true', 'false'].includes(asyncFlag)) throw new Refusal(400, 40002, 'Invalid request parameters', 'async');
    const isAsync = asyncFlag === '1' || asyncFlag === 'true';
    const b = behaviourOf(username);
    const capabilities: readonly string[] = b.capabilities ?? DEFAULT_CAPABILITIES;
    const kind = factor === 'auto' ? (capabilities.includes('push') ? 'push' : 'phone') : factor;
    if (kind === 'passcode') {
      if (params['passcode'] === undefined) throw new Refusal(400, 40001, 'Missing required request parameters', 'passcode');
    } else {
      const device = params['device'] ?? (factor === 'auto' ? 'auto' : undefined);
      if (device === undefined) throw new Refusal(400, 40001, 'Missing required request parameters', 'device');
      if (device !== 'auto' && device !== DEVICE_ID) throw new Refusal(400, 40002, 'Invalid request parameters', 'device');
      if (!capabilities.includes(kind)) throw new Refusal(400, 40002, 'Invalid request parameters', 'device');
    }
    // Duo answers for users it does not know (or who never enrolled) with 40002 on username.
    const state = b.enroll ?? 'auth';
    if (state === 'enroll') throw new Refusal(400, 40002, 'Invalid request parameters', 'username');

    let txn: Transaction;
    if (state === 'allow') txn = finished('allow', 'bypass', 'Allowing unknown user');
    else if (state === 'deny') txn = finished('deny', 'deny', 'Your account is disabled. Please contact your administrator.');
    else if (kind === 'passcode') {
      const sent = passcodes.get(username);
      if (sent !== undefined && !sent.used && params['passcode'] === sent.code) {
        sent.used = true;
        txn = finished('allow', 'allow', 'Success. Logging you in...');
      } else txn = finished('deny', 'deny', 'Incorrect passcode. Please try again.');
    } else if (kind === 'sms') {
      passcodes.set(username, { code: String(randomInt(1_000_000, 10_000_000)), used: false });
      txn = finished('deny', 'sent', 'New SMS passcodes sent.');
    } else txn = startInteractive(kind, b.answer ?? { kind: 'approve' });

    if (isAsync) return ok({ txid: txn.txid });
    // Synchronous: Duo answers when the user has.
    if (txn.result === 'waiting') await untilFinal(txn, res);
    return ok(statusOf(txn));
  };

  const authStatus = async (params: Params, res: ServerResponse): Promise<Answer> => {
    const txid = params['txid'];
    if (txid === undefined) throw new Refusal(400, 40001, 'Missing required request parameters', 'txid');
    const txn = transactions.get(txid);
    if (txn === undefined) throw new Refusal(400, 40002, 'Invalid request parameters', 'txid');
    if (txn.result === 'waiting' && txn.version <= txn.reported) await untilChange(txn, res, longPollMs);
    txn.reported = txn.version;
    return ok(statusOf(txn));
  };

  const newTransaction = (result: Result, status: string, statusMsg: string): Transaction => {
    const txn: Transaction = { txid: randomUUID(), result, status, statusMsg, version: 1, reported: 0, waiters: new Set(), timers: [] };
    transactions.set(txn.txid, txn);
    return txn;
  };
  const finished = (result: Result, status: string, statusMsg: string): Transaction => {
    const txn = newTransaction(result, status, statusMsg);
    forgetLater(txn);
    return txn;
  };
  const update = (txn: Transaction, result: Result, status: string, statusMsg: string): void => {
    if (closed || txn.result !== 'waiting') return;
    txn.result = result;
    txn.status = status;
    txn.statusMsg = statusMsg;
    txn.version++;
    for (const wake of [...txn.waiters]) wake();
    if (result !== 'waiting') {
      for (const timer of txn.timers) clearTimeout(timer);
      txn.timers.length = 0;
      forgetLater(txn);
    }
  };
  const forgetLater = (txn: Transaction): void => {
    setTimeout(() => transactions.delete(txn.txid), KEEP_FINISHED_MS).unref();
  };

  const startInteractive = (kind: 'push' | 'phone', answer: DuoAnswer): Transaction => {
    const txn =
      kind === 'push'
        ? newTransaction('waiting', 'pushed', 'Pushed a login request to your device...')
        : newTransaction('waiting', 'calling', 'Calling XXX-XXX-0100...');
    txn.timers.push(setTimeout(() => update(txn, 'deny', 'timeout', 'Login timed out.'), duoTimeoutMs));
    if (answer.kind === 'no_answer') return txn;
    const delayMs = answer.delayMs ?? 0;
    if (kind === 'phone') txn.timers.push(setTimeout(() => update(txn, 'waiting', 'answered', 'Answered. Press any key on your phone to log in.'), delayMs / 2));
    const final: [Result, string, string] =
      answer.kind === 'approve'
        ? ['allow', 'allow', 'Success. Logging you in...']
        : answer.kind === 'deny'
          ? ['deny', 'deny', 'Login request denied.']
          : ['deny', 'fraud', 'Login request reported as fraudulent.'];
    txn.timers.push(setTimeout(() => update(txn, ...final), delayMs));
    return txn;
  };

  /** Resolves on the next status change, after `maxMs`, or when the caller hangs up. */
  const untilChange = (txn: Transaction, res: ServerResponse, maxMs: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        txn.waiters.delete(done);
        res.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, maxMs);
      txn.waiters.add(done);
      res.on('close', done);
    });
  const untilFinal = async (txn: Transaction, res: ServerResponse): Promise<void> => {
    while (txn.result === 'waiting' && !res.destroyed && !closed) await untilChange(txn, res, duoTimeoutMs);
  };

  const optionalIp = (params: Params): void => {
    const ipaddr = params['ipaddr'];
    if (ipaddr !== undefined && isIP(ipaddr) === 0) throw new Refusal(400, 40002, 'Invalid request parameters', 'ipaddr');
  };
  const requireUser = (params: Params): string => {
    const username = params['username'] ?? params['user_id'];
    if (username === undefined) throw new Refusal(400, 40001, 'Missing required request parameters', 'username');
    if (username === '') throw new Refusal(400, 40002, 'Invalid request parameters', 'username');
    return username;
  };

  const url = await listenLoopback(server, bind);

  return {
    url,
    records,
    setBehaviour: (username, behaviour) => void behaviours.set(username, behaviour),
    setDefaultBehaviour: (behaviour) => {
      defaultBehaviour = behaviour;
    },
    failNext: (n, status) => faults.failNext(n, status),
    hang: (on) => faults.hang(on),
    passcodeFor: (username) => passcodes.get(username)?.code,
    count: (endpoint) => counts.get(endpoint) ?? 0,
    pendingTransactions: () => [...transactions.values()].filter((t) => t.result === 'waiting').length,
    close: async () => {
      closed = true;
      for (const txn of transactions.values()) {
        for (const timer of txn.timers) clearTimeout(timer);
        for (const wake of [...txn.waiters]) wake();
      }
      transactions.clear();
      await closeServer(server);
    },
  };
}

/** The method each endpoint takes. */
const ENDPOINTS: Readonly<Record<string, string>> = {
  '/auth/v2/ping': 'GET',
  '/auth/v2/check': 'GET',
  '/auth/v2/preauth': 'POST',
  '/auth/v2/auth': 'POST',
  '/auth/v2/auth_status': 'GET',
};

interface ParsedParams {
  /** All parameters, for the handlers. */
  readonly values: Params;
  /** The query string's parameters (v5's params line). */
  readonly query: Params;
  /** What v2 signs: the query (GET) or the form body (POST). */
  readonly signed: Params;
  /** Whether the body was JSON (only v5 can sign that). */
  readonly json: boolean;
}

const FACTORS = ['auto', 'push', 'phone', 'sms', 'passcode'] as const;
function isFactor(value: string): value is (typeof FACTORS)[number] {
  return (FACTORS as readonly string[]).includes(value);
}

function readParams(req: IncomingMessage, url: URL, body: Buffer): ParsedParams {
  const query = Object.fromEntries(url.searchParams);
  if (req.method !== 'POST') return { values: query, query, signed: query, json: false };
  const type = (header(req, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    const form = Object.fromEntries(new URLSearchParams(body.toString('utf8')));
    return { values: { ...query, ...form }, query, signed: form, json: false };
  }
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new Refusal(400, 40003, 'Invalid request body', 'body is not JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Refusal(400, 40003, 'Invalid request body', 'body is not a JSON object');
    const values: Params = { ...query };
    for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof value === 'string') values[key] = value;
      else if (typeof value === 'number' || typeof value === 'boolean') values[key] = String(value);
      else throw new Refusal(400, 40002, 'Invalid request parameters', key);
    }
    return { values, query, signed: {}, json: true };
  }
  // Duo: "401 — the Authorization, Date, and/or Content-Type headers were missing or invalid".
  throw new Refusal(401, 40101, 'Missing or invalid Content-Type');
}

/** What each byte encodes to: itself when unreserved (letters, digits, `-._~`), else `%XX` in upper-case hex. */
const BYTE_ENCODING: readonly string[] = Array.from({ length: 256 }, (_, byte) => {
  const c = String.fromCharCode(byte);
  return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** RFC 3986 encoding byte by byte of the UTF-8 text, pairs sorted by encoded key. */
function encodeParams(params: Params): string {
  const encode = (text: string): string => {
    let out = '';
    for (const byte of Buffer.from(text, 'utf8')) out += BYTE_ENCODING[byte] ?? '';
    return out;
  };
  return Object.entries(params)
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort(([ka, va], [kb, vb]) => (ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function duoHeaders(req: IncomingMessage): string {
  const names = Object.keys(req.headers)
    .filter((name) => name.startsWith('x-duo-'))
    .sort();
  return names.flatMap((name) => [name, header(req, name) ?? '']).join('\0');
}

function sha512(text: string | Buffer): string {
  return createHash('sha512').update(text).digest('hex');
}

function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** RFC 2822 with an explicit zone (`Tue, 21 Aug 2012 17:29:18 -0000`); NaN otherwise. */
function parseRfc2822(text: string): number {
  if (!/^(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})? (?:[+-]\d{4}|GMT|UT|UTC)$/.test(text)) return NaN;
  return Date.parse(text);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function statusOf(txn: Transaction): Record<string, string> {
  return { result: txn.result, status: txn.status, status_msg: txn.statusMsg };
}

function ok(response: unknown): Answer {
  return { status: 200, body: { stat: 'OK', response } };
}

function fail(code: number, message: string, detail?: string): Record<string, unknown> {
  return { stat: 'FAIL', code, message, ...(detail === undefined ? {} : { message_detail: detail }) };
}

function send(res: ServerResponse, answer: Answer): void {
  if (res.destroyed || res.headersSent) return;
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooBig ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

