import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request as httpRequest } from 'undici';
import { assertLoopback } from '../peers/ports.js';
import { closeServer, InjectedFaults, listenLoopback } from './loopback-server.js';

/**
 * A Twilio double on 127.0.0.1: the REST API the gateway calls (2010-04-01 Messages.json,
 * Calls.json, Calls/{Sid}.json) and the phone user at the other end.
 *
 * API side, as Twilio documents it: HTTP Basic with Account SID and Auth Token (else 401,
 * error 20003), the account SID in the path must be the authenticated one (404, 20404),
 * form-encoded bodies, E.164 `To` (400, 21211), `From` must be the account's number (21606 for
 * messages, 21210 for calls), `Body` required for messages (21602), `Url` or `Twiml` for calls
 * (21205); answers 201 with the JSON resource (`sid` SM…/CA… + 32 hex, `status` queued).
 *
 * User side: a call with `Url` is "answered" per the callee's behaviour: the fake POSTs Twilio's
 * call parameters to Url, signed with X-Twilio-Signature exactly as Twilio signs (HMAC-SHA1 of
 * the URL and the sorted parameters under the Auth Token), runs the TwiML it gets back (<Say>,
 * <Pause>, <Gather>, <Redirect>, <Hangup>), "presses keys" by POSTing Digits to a Gather's action
 * (applying numDigits and finishOnKey as Twilio does: with finishOnKey="#" a lone # submits
 * nothing), follows the TwiML answers, and finally POSTs the StatusCallback (signed). A two-way
 * SMS (a text that asks for a reply) is answered through the inbound-message webhook when one is
 * set (`smsWebhookUrl`), per the same behaviour; `replySms` does it by hand.
 *
 * Modes: failNext(n, status) answers the next n API requests with a Twilio 5xx error;
 * hang(true) accepts requests and never answers them.
 */

export type TwilioBehaviour =
  | 'approve'
  | 'deny'
  | 'fraud'
  | 'no-answer'
  | 'busy'
  | 'failed'
  | 'hangup'
  | TwilioBehaviourSpec;

export type TwilioBehaviourSpec =
  /** Presses `digits` at the first <Gather> (`#` approves, `0` is fraud, `1` denies). */
  | { readonly kind: 'press'; readonly digits: string; readonly delayMs?: number }
  /** Keys in `pin` + #; when asked for a new PIN, keys `newPin` + # then `confirmPin ?? newPin` + # (and again if asked again). */
  | { readonly kind: 'pin'; readonly pin: string; readonly newPin?: string; readonly confirmPin?: string; readonly delayMs?: number }
  /** Raw keys per <Gather>, in order (`['1234#', '5678#', '5678#']`); missing entries press nothing. */
  | { readonly kind: 'keys'; readonly sequence: readonly string[]; readonly delayMs?: number }
  /** Two-way SMS: answers with this text (calls: like 'hangup'). */
  | { readonly kind: 'reply'; readonly body: string; readonly delayMs?: number }
  /** Never picks up / line busy / call fails / picks up and hangs up at the first prompt. `delayMs` is the ringing time. */
  | { readonly kind: 'no-answer' | 'busy' | 'failed' | 'hangup'; readonly delayMs?: number };

export interface TwilioFakeOptions {
  readonly accountSid: string;
  readonly authToken: string;
  /** The account's number (messages and calls must come from it). Default +15005550006. */
  readonly from?: string;
  /** The gateway's inbound-message webhook; when set, two-way SMS are answered automatically. */
  readonly smsWebhookUrl?: string;
  /** Keep every callback the fake made (for replays). Default true; benchmarks turn it off. */
  readonly keepCallbacks?: boolean;
  readonly host?: string;
}

export interface FakeMessage {
  readonly kind: 'message';
  readonly sid: string;
  readonly to: string;
  readonly from: string;
  readonly body: string;
  readonly at: number;
}

export type FakeCallStatus = 'queued' | 'in-progress' | 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';

export interface FakeCall {
  readonly kind: 'call';
  readonly sid: string;
  readonly to: string;
  readonly from: string;
  readonly url: string | undefined;
  readonly method: string;
  readonly twiml: string | undefined;
  readonly statusCallback: string | undefined;
  readonly statusCallbackEvents: readonly string[];
  /** Ring timeout the caller asked for (seconds). */
  readonly timeout: number;
  readonly at: number;
  status: FakeCallStatus;
  /** Text of every <Say> the callee heard, in order. */
  readonly said: string[];
  /** Keys pressed at each <Gather> that got input. */
  readonly keys: string[];
  /** Who ended it: the callee (behaviour), the TwiML (<Hangup> or end of document), or the API. */
  endedBy: 'callee' | 'twiml' | 'api' | 'error' | undefined;
  /** Problems Twilio would have reported (callback answered non-200, TwiML unparsable). */
  readonly errors: string[];
}

export interface FakeCallUpdate {
  readonly kind: 'call-update';
  readonly sid: string;
  readonly status: string;
  readonly at: number;
}

export interface FakeRefusal {
  readonly kind: 'refused';
  readonly path: string;
  readonly status: number;
  readonly code: number;
  readonly message: string;
  readonly at: number;
}

export type TwilioFakeRecord = FakeMessage | FakeCall | FakeCallUpdate | FakeRefusal;

/** One request the fake made to the gateway (as Twilio), and the answer. */
export interface FakeCallback {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly params: Readonly<Record<string, string>>;
  readonly signature: string;
  readonly status: number;
  readonly body: string;
}

export interface FakeHttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface TwilioFake {
  /** Base URL for the provider's `base_url`. */
  readonly url: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly from: string;
  /** Everything the API received, in order. */
  readonly records: readonly TwilioFakeRecord[];
  messages(): FakeMessage[];
  calls(): FakeCall[];
  callbacks(): readonly FakeCallback[];
  /** API requests received (answered or not). */
  readonly requestCount: number;
  /** The code in the last SMS or voice-code call to `number`. */
  lastCodeSentTo(number: string): string | undefined;
  setBehaviour(number: string, behaviour: TwilioBehaviour): void;
  setDefaultBehaviour(behaviour: TwilioBehaviour): void;
  setSmsWebhook(url: string | undefined): void;
  failNext(n: number, status?: number): void;
  hang(on: boolean): void;
  /** Resolves once the simulated call ended and its status callback was delivered. */
  callEnded(sid: string): Promise<FakeCall>;
  /** Resolves once every simulated call and SMS reply in flight is done. */
  idle(): Promise<void>;
  /** Sends a signed inbound-message webhook, as when `from` texts `body` to the account's number. */
  replySms(from: string, body: string, url?: string): Promise<FakeHttpAnswer>;
  /** POSTs `params` to `url` signed as Twilio would. */
  postSigned(url: string, params: Readonly<Record<string, string>>): Promise<FakeHttpAnswer>;
  /** Re-sends a callback the fake made, byte for byte (replay). */
  replay(callback: FakeCallback): Promise<FakeHttpAnswer>;
  /** POSTs `params` with a wrong signature (default: signed under another token; null: no header). */
  forgeCallback(url: string, params: Readonly<Record<string, string>>, signature?: string | null): Promise<FakeHttpAnswer>;
  close(): Promise<void>;
}

const API_VERSION = '2010-04-01';

/** Twilio's webhook signature, written independently of the provider's to cross-check it. */
export function twilioSignature(authToken: string, url: string, params: Readonly<Record<string, string>>): string {
  let data = url;
  for (const key of Object.keys(params).sort()) data += key + params[key];
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
}

export async function startTwilioFake(opts: TwilioFakeOptions): Promise<TwilioFake> {
  const host = opts.host ?? '127.0.0.1';
  assertLoopback(host);
  const fake = new TwilioFakeServer(opts);
  await fake.listen(host);
  return fake;
}

interface SimCall {
  readonly record: FakeCall;
  readonly behaviour: TwilioBehaviourSpec;
  readonly ended: AbortController;
  answered: boolean;
  finished: boolean;
  gathers: number;
  readonly done: Promise<FakeCall>;
  resolveDone(call: FakeCall): void;
}

class TwilioFakeServer implements TwilioFake {
  url = '';
  readonly accountSid: string;
  readonly authToken: string;
  readonly from: string;
  readonly records: TwilioFakeRecord[] = [];
  requestCount = 0;
  private readonly callbackLog: FakeCallback[] = [];
  private readonly sims = new Map<string, SimCall>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly behaviours = new Map<string, TwilioBehaviourSpec>();
  private defaultBehaviour: TwilioBehaviourSpec = { kind: 'press', digits: '#' };
  private smsWebhookUrl: string | undefined;
  private readonly faults = new InjectedFaults();
  private closed = false;
  private readonly server = createServer((req, res) => this.handle(req, res));
  private readonly agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 });

  constructor(private readonly opts: TwilioFakeOptions) {
    this.accountSid = opts.accountSid;
    this.authToken = opts.authToken;
    this.from = opts.from ?? '+15005550006';
    this.smsWebhookUrl = opts.smsWebhookUrl;
  }

  async listen(host: string): Promise<void> {
    this.url = await listenLoopback(this.server, host);
  }

  messages(): FakeMessage[] {
    return this.records.filter((r): r is FakeMessage => r.kind === 'message');
  }

  calls(): FakeCall[] {
    return this.records.filter((r): r is FakeCall => r.kind === 'call');
  }

  callbacks(): readonly FakeCallback[] {
    return this.callbackLog;
  }

  lastCodeSentTo(number: string): string | undefined {
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i];
      if (r === undefined || !('to' in r) || r.to !== number) continue;
      if (r.kind === 'message') return /\d{4,10}/.exec(r.body)?.[0];
      if (r.kind === 'call' && r.twiml !== undefined) {
        const said = collectSay(parseTwiml(r.twiml));
        const spelled = /\d(?:[\s,.]+\d)+/.exec(said.join(' '))?.[0];
        return spelled?.replace(/\D/g, '');
      }
    }
    return undefined;
  }

  setBehaviour(number: string, behaviour: TwilioBehaviour): void {
    this.behaviours.set(number, normalise(behaviour));
  }

  setDefaultBehaviour(behaviour: TwilioBehaviour): void {
    this.defaultBehaviour = normalise(behaviour);
  }

  setSmsWebhook(url: string | undefined): void {
    this.smsWebhookUrl = url;
  }

  failNext(n: number, status = 500): void {
    this.faults.failNext(n, status);
  }

  hang(on: boolean): void {
    this.faults.hang(on);
  }

  callEnded(sid: string): Promise<FakeCall> {
    const sim = this.sims.get(sid);
    return sim === undefined ? Promise.reject(new Error(`no simulated call ${sid}`)) : sim.done;
  }

  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  replySms(from: string, body: string, url = this.smsWebhookUrl): Promise<FakeHttpAnswer> {
    if (url === undefined) throw new Error('replySms: no inbound-message webhook URL');
    const sid = newSid('SM');
    return this.post(url, 'POST', {
      AccountSid: this.accountSid,
      ApiVersion: API_VERSION,
      Body: body,
      From: from,
      MessageSid: sid,
      NumMedia: '0',
      NumSegments: '1',
      SmsMessageSid: sid,
      SmsSid: sid,
      SmsStatus: 'received',
      To: this.from,
    });
  }

  postSigned(url: string, params: Readonly<Record<string, string>>): Promise<FakeHttpAnswer> {
    return this.post(url, 'POST', params);
  }

  replay(callback: FakeCallback): Promise<FakeHttpAnswer> {
    return this.send(callback.url, callback.method, callback.params, callback.signature);
  }

  forgeCallback(url: string, params: Readonly<Record<string, string>>, signature?: string | null): Promise<FakeHttpAnswer> {
    const forged = signature === undefined ? twilioSignature(`${this.authToken}x`, url, params) : signature;
    return this.send(url, 'POST', params, forged);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sim of this.sims.values()) sim.ended.abort();
    await closeServer(this.server);
    await Promise.allSettled([...this.inFlight]);
    await this.agent.close().catch(() => undefined);
  }

  // --- API side ---------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= 1 << 20) chunks.push(chunk);
    });
    req.on('end', () => {
      this.requestCount++;
      const fault = this.faults.intercept(res);
      if (fault === 'held') return; // no answer until hanging stops or the server closes
      try {
        this.route(req, Buffer.concat(chunks), res, fault);
      } catch (err) {
        this.error(res, req.url ?? '', 500, 20500, `fake failure: ${String(err)}`);
      }
    });
  }

  /** `fault`: the status an injected failure answers this request with. */
  private route(req: IncomingMessage, body: Buffer, res: ServerResponse, fault: number | undefined): void {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (fault !== undefined) {
      const status = fault;
      this.error(res, path, status, status === 503 ? 20503 : 20500, status === 503 ? 'Service Unavailable' : 'Internal Server Error');
      return;
    }
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/(Messages\.json|Calls\.json|Calls\/([^/]+)\.json)$/.exec(path);
    const auth = basicAuth(req.headers.authorization);
    if (auth === undefined || auth.user !== this.accountSid || auth.password !== this.authToken) {
      this.error(res, path, 401, 20003, 'Authenticate');
      return;
    }
    if (m === null || m[1] !== this.accountSid) {
      this.error(res, path, 404, 20404, `The requested resource ${path} was not found`);
      return;
    }
    if (req.method !== 'POST') {
      this.error(res, path, 405, 20004, 'Method not allowed');
      return;
    }
    if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
      this.error(res, path, 400, 20001, 'Content-Type must be application/x-www-form-urlencoded');
      return;
    }
    const form = new URLSearchParams(body.toString('utf8'));
    if (m[2] === 'Messages.json') this.createMessage(res, path, form);
    else if (m[3] === undefined) this.createCall(res, path, form);
    else this.updateCall(res, path, m[3], form);
  }

  private createMessage(res: ServerResponse, path: string, form: URLSearchParams): void {
    const to = form.get('To');
    const from = form.get('From');
    const body = form.get('Body');
    if (to === null || to === '') return this.error(res, path, 400, 21604, "A 'To' phone number is required.");
    if (!isE164(to)) return this.error(res, path, 400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (from === null || from === '') return this.error(res, path, 400, 21603, "A 'From' phone number is required.");
    if (from !== this.from) return this.error(res, path, 400, 21606, `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`);
    if (body === null || body === '') return this.error(res, path, 400, 21602, 'Message body is required.');
    if (body.length > 1600) return this.error(res, path, 400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
    const sid = newSid('SM');
    const record: FakeMessage = { kind: 'message', sid, to, from, body, at: Date.now() };
    this.records.push(record);
    const now = new Date().toUTCString();
    this.json(res, 201, {
      account_sid: this.accountSid,
      api_version: API_VERSION,
      body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from,
      messaging_service_sid: null,
      num_media: '0',
      num_segments: String(Math.max(1, Math.ceil(body.length / 153))),
      price: null,
      price_unit: 'USD',
      sid,
      status: 'queued',
      to,
      uri: `/${API_VERSION}/Accounts/${this.accountSid}/Messages/${sid}.json`,
    });
    if (this.smsWebhookUrl !== undefined && /\breply\b/i.test(body)) this.track(this.autoReply(to, body, this.smsWebhookUrl));
  }

  private createCall(res: ServerResponse, path: string, form: URLSearchParams): void {
    const to = form.get('To');
    const from = form.get('From');
    const url = form.get('Url') ?? undefined;
    const twiml = form.get('Twiml') ?? undefined;
    const statusCallback = form.get('StatusCallback') ?? undefined;
    const method = (form.get('Method') ?? 'POST').toUpperCase();
    if (to === null || to === '') return this.error(res, path, 400, 21201, "No 'To' number is specified");
    if (!isE164(to)) return this.error(res, path, 400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (from === null || from === '') return this.error(res, path, 400, 21213, "No 'From' number is specified");
    if (from !== this.from) return this.error(res, path, 400, 21210, `The source phone number provided, ${from}, is not yet verified for your account.`);
    if (url === undefined && twiml === undefined) return this.error(res, path, 400, 21205, 'Url, Twiml or ApplicationSid is required.');
    if (url !== undefined && !isHttpUrl(url)) return this.error(res, path, 400, 21205, `Url is not a valid URL: ${url}`);
    if (statusCallback !== undefined && !isHttpUrl(statusCallback)) return this.error(res, path, 400, 21205, `StatusCallback is not a valid URL: ${statusCallback}`);
    if (method !== 'GET' && method !== 'POST') return this.error(res, path, 400, 21200, 'Method must be GET or POST');
    if (twiml !== undefined) {
      if (twiml.length > 4000) return this.error(res, path, 400, 21232, 'Twiml exceeds 4000 characters');
      try {
        parseTwiml(twiml);
      } catch (err) {
        return this.error(res, path, 400, 12100, `Document parse failure: ${String(err)}`);
      }
    }
    const timeout = Math.min(600, Math.max(1, Number.parseInt(form.get('Timeout') ?? '60', 10) || 60));
    const sid = newSid('CA');
    const record: FakeCall = {
      kind: 'call',
      sid,
      to,
      from,
      url,
      method,
      twiml,
      statusCallback,
      statusCallbackEvents: form.getAll('StatusCallbackEvent').flatMap((e) => e.split(/\s+/)).filter((e) => e !== ''),
      timeout,
      at: Date.now(),
      status: 'queued',
      said: [],
      keys: [],
      endedBy: undefined,
      errors: [],
    };
    this.records.push(record);
    let resolveDone: (call: FakeCall) => void = () => undefined;
    const done = new Promise<FakeCall>((resolve) => {
      resolveDone = resolve;
    });
    const sim: SimCall = { record, behaviour: this.behaviourFor(to), ended: new AbortController(), answered: false, finished: false, gathers: 0, done, resolveDone };
    this.sims.set(sid, sim);
    this.json(res, 201, this.callResource(record));
    // The call starts after Twilio has answered the API request, as it does.
    this.track(this.runCall(sim));
  }

  private updateCall(res: ServerResponse, path: string, sid: string, form: URLSearchParams): void {
    const sim = this.sims.get(sid);
    if (sim === undefined) return this.error(res, path, 404, 20404, `The requested resource ${path} was not found`);
    const status = form.get('Status');
    if (status !== null) {
      if (status !== 'completed' && status !== 'canceled') return this.error(res, path, 400, 21218, `Invalid Status: ${status}`);
      this.records.push({ kind: 'call-update', sid, status, at: Date.now() });
      if (sim.finished) return this.error(res, path, 400, 21220, 'Call is not in-progress. Cannot redirect.');
      sim.record.endedBy = 'api';
      sim.ended.abort();
    }
    this.json(res, 200, this.callResource(sim.record));
  }

  private callResource(call: FakeCall): Record<string, unknown> {
    const now = new Date().toUTCString();
    return {
      account_sid: this.accountSid,
      answered_by: null,
      api_version: API_VERSION,
      caller_name: null,
      date_created: now,
      date_updated: now,
      direction: 'outbound-api',
      duration: null,
      end_time: null,
      forwarded_from: null,
      from: call.from,
      from_formatted: call.from,
      parent_call_sid: null,
      price: null,
      price_unit: 'USD',
      sid: call.sid,
      start_time: null,
      status: call.status,
      to: call.to,
      to_formatted: call.to,
      uri: `/${API_VERSION}/Accounts/${this.accountSid}/Calls/${call.sid}.json`,
    };
  }

  private error(res: ServerResponse, path: string, status: number, code: number, message: string): void {
    this.records.push({ kind: 'refused', path, status, code, message, at: Date.now() });
    this.json(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  // --- user side --------------------------------------------------------------------------

  private behaviourFor(number: string): TwilioBehaviourSpec {
    return this.behaviours.get(number) ?? this.defaultBehaviour;
  }

  private async runCall(sim: SimCall): Promise<void> {
    const { record, behaviour } = sim;
    try {
      await sleep(behaviour.delayMs ?? 0, undefined, { signal: sim.ended.signal });
      if (behaviour.kind === 'no-answer' || behaviour.kind === 'busy' || behaviour.kind === 'failed') {
        record.endedBy = 'callee';
        return await this.finish(sim, behaviour.kind);
      }
      sim.answered = true;
      record.status = 'in-progress';
      if (record.url === undefined) {
        // Inline TwiML (a voice code): the callee listens to it all.
        await this.execute(sim, parseTwiml(record.twiml ?? '<Response/>'), undefined);
      } else {
        const doc = await this.fetchTwiml(sim, record.url, record.method, {});
        if (doc !== undefined) await this.execute(sim, doc, record.url);
      }
      await this.finish(sim, 'completed');
    } catch (err) {
      if (!sim.ended.signal.aborted) {
        record.errors.push(String(err));
        record.endedBy ??= 'error';
      }
      await this.finish(sim, sim.answered ? 'completed' : 'canceled');
    }
  }

  private async execute(sim: SimCall, root: XmlNode, documentUrl: string | undefined): Promise<void> {
    let verbs = root.children;
    let base = documentUrl;
    for (let i = 0; i < verbs.length; i++) {
      if (sim.ended.signal.aborted) return;
      const verb = verbs[i];
      if (verb === undefined) break;
      let next: { url: string; method: string; params: Record<string, string> } | undefined;
      switch (verb.name) {
        case 'Say':
          sim.record.said.push(verb.text);
          break;
        case 'Pause':
        case 'Play':
          break;
        case 'Gather': {
          for (const child of verb.children) if (child.name === 'Say') sim.record.said.push(child.text);
          const keys = keysFor(sim.behaviour, sim.gathers++);
          if (keys === 'hangup') {
            sim.record.endedBy = 'callee';
            return;
          }
          const input = keys === undefined ? undefined : applyGather(keys, verb.attrs.finishOnKey ?? '#', Number.parseInt(verb.attrs.numDigits ?? '', 10));
          if (input === undefined) break; // timeout: Twilio goes on with the next verb
          if (keys !== undefined) sim.record.keys.push(keys);
          next = {
            url: resolveUrl(verb.attrs.action, base),
            method: (verb.attrs.method ?? 'POST').toUpperCase(),
            params: { Digits: input.digits, FinishedOnKey: input.finishedOnKey, msg: 'Gather End' },
          };
          break;
        }
        case 'Redirect':
          next = { url: resolveUrl(verb.text.trim(), base), method: (verb.attrs.method ?? 'POST').toUpperCase(), params: {} };
          break;
        case 'Hangup':
        case 'Reject':
          sim.record.endedBy = 'twiml';
          return;
        default:
          break;
      }
      if (next !== undefined) {
        const doc = await this.fetchTwiml(sim, next.url, next.method, next.params);
        if (doc === undefined) return;
        verbs = doc.children;
        base = next.url;
        i = -1;
      }
    }
    sim.record.endedBy ??= 'twiml';
  }

  /** Requests a TwiML page as Twilio does; undefined (and an error noted) when there is none to run. */
  private async fetchTwiml(sim: SimCall, url: string, method: string, extra: Record<string, string>): Promise<XmlNode | undefined> {
    const answer = await this.post(url, method === 'GET' ? 'GET' : 'POST', { ...this.callParams(sim.record, 'in-progress'), ...extra });
    if (sim.ended.signal.aborted) return undefined;
    if (answer.status !== 200) {
      sim.record.errors.push(`${url.split('?')[0] ?? url} answered HTTP ${answer.status}`);
      sim.record.endedBy = 'error';
      return undefined;
    }
    try {
      return parseTwiml(answer.body);
    } catch (err) {
      sim.record.errors.push(`unparsable TwiML from ${url}: ${String(err)}`);
      sim.record.endedBy = 'error';
      return undefined;
    }
  }

  private async finish(sim: SimCall, status: FakeCallStatus): Promise<void> {
    if (sim.finished) return;
    sim.finished = true;
    sim.record.status = status;
    const { statusCallback, statusCallbackEvents } = sim.record;
    if (statusCallback !== undefined && (statusCallbackEvents.length === 0 || statusCallbackEvents.includes('completed'))) {
      const params: Record<string, string> = {
        ...this.callParams(sim.record, status),
        CallbackSource: 'call-progress-events',
        SequenceNumber: '0',
        Timestamp: new Date().toUTCString(),
      };
      if (status === 'completed') params.CallDuration = String(Math.max(1, Math.round((Date.now() - sim.record.at) / 1000)));
      await this.post(statusCallback, 'POST', params).catch((err: unknown) => sim.record.errors.push(`status callback: ${String(err)}`));
    }
    sim.resolveDone(sim.record);
  }

  private callParams(call: FakeCall, status: string): Record<string, string> {
    return {
      AccountSid: this.accountSid,
      ApiVersion: API_VERSION,
      CallSid: call.sid,
      CallStatus: status,
      Called: call.to,
      Caller: call.from,
      Direction: 'outbound-api',
      From: call.from,
      To: call.to,
    };
  }

  private async autoReply(to: string, body: string, url: string): Promise<void> {
    const behaviour = this.behaviourFor(to);
    const code = /\d{4,10}/.exec(body)?.[0] ?? '';
    let reply: string | undefined;
    switch (behaviour.kind) {
      case 'press':
        reply = behaviour.digits === '#' ? code : behaviour.digits;
        break;
      case 'pin':
      case 'keys':
        reply = code;
        break;
      case 'reply':
        reply = behaviour.body;
        break;
      default:
        reply = undefined;
    }
    if (reply === undefined) return;
    await sleep(behaviour.delayMs ?? 0, undefined, { ref: false });
    if (!this.closed) await this.replySms(to, reply, url);
  }

  private track(work: Promise<unknown>): void {
    const p = work.catch(() => undefined).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private post(url: string, method: 'GET' | 'POST', params: Readonly<Record<string, string>>): Promise<FakeHttpAnswer> {
    // GET: parameters go in the query and the signature covers the URL alone.
    const target = method === 'GET' ? appendQuery(url, params) : url;
    const signature = twilioSignature(this.authToken, target, method === 'GET' ? {} : params);
    return this.send(target, method, method === 'GET' ? {} : params, signature);
  }

  private async send(url: string, method: 'GET' | 'POST', params: Readonly<Record<string, string>>, signature: string | null): Promise<FakeHttpAnswer> {
    const target = new URL(url);
    assertLoopback(target.hostname.replace(/^\[|\]$/g, ''));
    const headers: Record<string, string> = { 'user-agent': 'TwilioProxy/1.1', 'i-twilio-idempotency-token': randomBytes(16).toString('hex') };
    if (signature !== null) headers['x-twilio-signature'] = signature;
    let body: string | undefined;
    if (method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(params as Record<string, string>).toString();
    }
    const res = await httpRequest(url, { method, headers, ...(body === undefined ? {} : { body }), dispatcher: this.agent });
    const text = await res.body.text();
    if (this.opts.keepCallbacks !== false && signature !== null) {
      this.callbackLog.push({ url, method, params: { ...params }, signature, status: res.statusCode, body: text });
    }
    return { status: res.statusCode, body: text };
  }
}

function normalise(behaviour: TwilioBehaviour): TwilioBehaviourSpec {
  switch (behaviour) {
    case 'approve':
      return { kind: 'press', digits: '#' };
    case 'deny':
      return { kind: 'press', digits: '1' };
    case 'fraud':
      return { kind: 'press', digits: '0' };
    case 'no-answer':
    case 'busy':
    case 'failed':
    case 'hangup':
      return { kind: behaviour };
    default:
      return behaviour;
  }
}

/** The keys the callee presses at its n-th <Gather> (0-based); 'hangup' to hang up there. */
function keysFor(behaviour: TwilioBehaviourSpec, n: number): string | undefined {
  switch (behaviour.kind) {
    case 'press':
      return n === 0 ? behaviour.digits : undefined;
    case 'pin':
      if (n === 0) return `${behaviour.pin}#`;
      if (behaviour.newPin === undefined) return undefined;
      return n % 2 === 1 ? `${behaviour.newPin}#` : `${behaviour.confirmPin ?? behaviour.newPin}#`;
    case 'keys':
      return behaviour.sequence[n];
    case 'hangup':
    case 'reply':
      return 'hangup';
    default:
      return undefined;
  }
}

/**
 * What a <Gather> submits for these keypresses: it ends at finishOnKey (not included; pressed
 * first, it submits nothing), at numDigits, or at the timeout after the last key.
 */
function applyGather(keys: string, finishOnKey: string, numDigits: number): { digits: string; finishedOnKey: string } | undefined {
  let digits = '';
  for (const key of keys) {
    if (finishOnKey !== '' && key === finishOnKey) return digits === '' ? undefined : { digits, finishedOnKey: key };
    digits += key;
    if (Number.isFinite(numDigits) && numDigits > 0 && digits.length >= numDigits) return { digits, finishedOnKey: '' };
  }
  return digits === '' ? undefined : { digits, finishedOnKey: '' };
}

// --- TwiML --------------------------------------------------------------------------------

interface XmlNode {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlNode[];
  text: string;
}

/** A strict little XML reader for TwiML: elements, attributes, text, entities; throws on anything malformed. */
export function parseTwiml(xml: string): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  const token = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<\/([A-Za-z][\w:.-]*)\s*>|<([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|([^<]+)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = token.exec(xml)) !== null) {
    consumed = token.lastIndex;
    const top = stack[stack.length - 1];
    if (top === undefined) throw new Error('content after the root element');
    const [, close, open, attrText, selfClosing, text] = m;
    if (close !== undefined) {
      if (top.name !== close) throw new Error(`</${close}> does not close <${top.name}>`);
      stack.pop();
    } else if (open !== undefined) {
      const attrs: Record<string, string> = {};
      for (const a of (attrText ?? '').matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1] ?? ''] = decodeEntities(a[2] ?? a[3] ?? '');
      const node: XmlNode = { name: open, attrs, children: [], text: '' };
      top.children.push(node);
      if (selfClosing !== '/') stack.push(node);
    } else if (text !== undefined) {
      if (top === root) {
        if (text.trim() !== '') throw new Error('text outside the root element');
      } else {
        top.text += decodeEntities(text);
      }
    }
  }
  if (consumed !== xml.length) throw new Error(`malformed XML at offset ${consumed}`);
  if (stack.length !== 1) throw new Error('unclosed element');
  const response = root.children[0];
  if (root.children.length !== 1 || response?.name !== 'Response') throw new Error('the root element must be <Response>');
  return response;
}

function decodeEntities(text: string): string {
  return text.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[e] ?? '';
  });
}

function collectSay(node: XmlNode): string[] {
  const out: string[] = [];
  for (const child of node.children) {
    if (child.name === 'Say') out.push(child.text);
    else out.push(...collectSay(child));
  }
  return out;
}

// --- small things -------------------------------------------------------------------------

function newSid(prefix: 'SM' | 'CA'): string {
  return prefix + randomBytes(16).toString('hex');
}

function isE164(number: string): boolean {
  return /^\+[1-9]\d{1,14}$/.test(number);
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function resolveUrl(target: string | undefined, base: string | undefined): string {
  if (target === undefined || target === '') {
    if (base === undefined) throw new Error('no URL to request');
    return base;
  }
  return new URL(target, base).toString();
}

function appendQuery(url: string, params: Readonly<Record<string, string>>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.append(k, v);
  return u.toString();
}

function basicAuth(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (m?.[1] === undefined) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
