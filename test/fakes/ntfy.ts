import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { assertLoopback } from '../peers/ports.js';
import { closeServer, InjectedFaults, listenLoopback } from './loopback-server.js';

/**
 * A loopback stand-in for an ntfy server plus the phones subscribed to it.
 *
 * Server side, as documented at docs.ntfy.sh ("Publishing": "Publish as JSON", "Action
 * buttons", "Access tokens") and as the server source validates: JSON publish to `/` (and plain
 * `PUT/POST /<topic>`), topic names `[-_A-Za-z0-9]{1,64}`, priority 1..5, at most three actions,
 * `label` always and `url` for view/http actions, no body on GET/HEAD actions, and with an access
 * token configured: a wrong token → 401 (40101), none → 403 (40301), as a server with
 * `auth-default-access: deny-all` answers. Errors are ntfy's JSON `{code, http, error, link}`;
 * success is the message JSON (id, time, expires, event "message", topic, …).
 *
 * Phone side: per topic a behaviour (approve, pick a number, deny, fraud, wrong number, no
 * answer, each after `delayMs`); the phone performs an `http` action the way the ntfy Android app
 * does (UserActionWorker: method default POST, body default "" except for GET/HEAD, the action's
 * headers, its own User-Agent), and "opens" the `click` page like a browser, reads its forms and
 * posts one. With number matching the phone must know the number the login prompt shows: from
 * `numberFor`, from `setBehaviour(topic, {kind: 'pick', number})` or from `showNumber`; until
 * then an `approve` or `wrong_number` push waits (no timer, one array slot).
 */

export type NtfyBehaviour =
  /** Press Approve; with number matching, the right number. */
  | { readonly kind: 'approve'; readonly delayMs?: number }
  /** With number matching: press this number (right or wrong, the test decides). */
  | { readonly kind: 'pick'; readonly number: number; readonly delayMs?: number }
  /** Press Deny, or with number matching use the Deny form on the click page. */
  | { readonly kind: 'deny'; readonly delayMs?: number }
  /** Press "Not me", or with number matching use the fraud form on the click page. */
  | { readonly kind: 'fraud'; readonly delayMs?: number }
  /** With number matching: press a number that is not the right one. */
  | { readonly kind: 'wrong_number'; readonly delayMs?: number }
  | { readonly kind: 'no_answer' };

export interface NtfyAction {
  readonly id: string;
  readonly action: string;
  readonly label: string;
  readonly clear: boolean;
  readonly url?: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** A message as ntfy answers it (and as it is recorded here). */
export interface NtfyMessage {
  readonly id: string;
  readonly time: number;
  readonly expires: number;
  readonly event: 'message';
  readonly topic: string;
  readonly message: string;
  readonly title?: string;
  readonly priority?: number;
  readonly tags?: readonly string[];
  readonly click?: string;
  readonly actions?: readonly NtfyAction[];
}

export interface NtfyPublish extends NtfyMessage {
  /** Whether the publish carried an Authorization header (its value is not kept). */
  readonly authenticated: boolean;
  readonly receivedAt: number;
}

/** One thing the phone did: a button press or a form post, and what the gateway answered. */
export interface NtfyPress {
  readonly messageId: string;
  readonly topic: string;
  /** The action's label, or `page:<answer>` for a form on the click page. */
  readonly label: string;
  readonly method: string;
  readonly url: string;
  /** 0 when the request failed before an answer (the error is in `body`). */
  readonly status: number;
  readonly body: string;
  readonly at: number;
}

export interface NtfyPageForm {
  readonly method: string;
  readonly action: string;
  readonly fields: Readonly<Record<string, string>>;
  readonly button: string;
}

export interface NtfyPage {
  readonly status: number;
  readonly body: string;
  readonly forms: readonly NtfyPageForm[];
}

export interface NtfyFakeOptions {
  /** When set, publishing needs `Authorization: Bearer <accessToken>`. */
  readonly accessToken?: string;
  /** The number the login prompt shows for this push (number matching), when the test knows it. */
  readonly numberFor?: (publish: NtfyPublish) => number | undefined;
  /** Behaviour of topics without their own; default `approve`. */
  readonly defaultBehaviour?: NtfyBehaviour;
}

export interface NtfyFake {
  /** `http://127.0.0.1:<port>`: the provider's base_url. */
  readonly url: string;
  /** Accepted publishes, in order. */
  readonly records: readonly NtfyPublish[];
  /** What the phones did, in order. */
  readonly presses: readonly NtfyPress[];
  /** Publishes refused (status and ntfy error code), in order. */
  readonly refusals: readonly { readonly status: number; readonly code: number }[];
  setBehaviour(topic: string, behaviour: NtfyBehaviour): void;
  setDefaultBehaviour(behaviour: NtfyBehaviour): void;
  /** The number the login prompt shows for the topic's pushes (releases waiting ones). */
  showNumber(topic: string, number: number): void;
  /** The next `n` publishes answer `status` (500: ntfy's internal error, 429: its rate limit). */
  failNext(n: number, status?: number): void;
  /** While on, publishes get no answer at all (the connection stays open). */
  hang(on: boolean): void;
  /** Presses the action labelled `label` of a message, as the app does. */
  press(messageId: string, label: string): Promise<NtfyPress>;
  /** Opens the message's click URL as a browser does (GET) and reads its forms. */
  openPage(messageId: string): Promise<NtfyPage>;
  /** Opens the click page and posts the form whose hidden `answer` is `answer`. */
  submitPageForm(messageId: string, answer: string): Promise<NtfyPress>;
  /** Resolves with the `n`th publish (1-based) to `topic`. */
  waitForPublish(topic: string, n?: number): Promise<NtfyPublish>;
  /** Resolves with the first phone action on a message. */
  waitForPress(messageId: string): Promise<NtfyPress>;
  /** Resolves once every scheduled phone action has finished. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** Like the Android app (ApiService.USER_AGENT). */
const APP_USER_AGENT = 'ntfy/1.16.0 (fake; Android 14; SDK 34)';
/** ntfy's default message-limit is 4096 bytes; the JSON form may take twice that. */
const JSON_LIMIT = 8192;
const TOPIC = /^[-_A-Za-z0-9]{1,64}$/;
const CACHE_SECONDS = 12 * 3600;

interface NtfyError {
  readonly code: number;
  readonly http: number;
  readonly error: string;
  readonly link?: string;
}

const ERR = {
  unauthorized: { code: 40101, http: 401, error: 'unauthorized', link: 'https://ntfy.sh/docs/publish/#authentication' },
  forbidden: { code: 40301, http: 403, error: 'forbidden', link: 'https://ntfy.sh/docs/publish/#authentication' },
  jsonInvalid: { code: 40024, http: 400, error: 'invalid request: request body must be valid JSON' },
  topicInvalid: { code: 40009, http: 400, error: 'invalid request: topic invalid' },
  priorityInvalid: { code: 40007, http: 400, error: 'invalid priority parameter', link: 'https://ntfy.sh/docs/publish/#message-priority' },
  actionsInvalid: { code: 40018, http: 400, error: 'invalid request: actions invalid', link: 'https://ntfy.sh/docs/publish/#action-buttons' },
  tooLarge: { code: 41303, http: 413, error: 'JSON body too large' },
  notFound: { code: 40401, http: 404, error: 'page not found' },
  tooMany: { code: 42901, http: 429, error: 'limit reached: too many requests, please be nice', link: 'https://ntfy.sh/docs/publish/#limitations' },
  internal: { code: 50001, http: 500, error: 'internal server error' },
} as const satisfies Record<string, NtfyError>;

export async function startNtfyFake(opts: NtfyFakeOptions = {}): Promise<NtfyFake> {
  const host = '127.0.0.1';
  assertLoopback(host);
  const records: NtfyPublish[] = [];
  const byId = new Map<string, NtfyPublish>();
  const perTopic = new Map<string, number>();
  const presses: NtfyPress[] = [];
  const refusals: { status: number; code: number }[] = [];
  const behaviours = new Map<string, NtfyBehaviour>();
  const shownNumbers = new Map<string, number>();
  /** Number-matching pushes whose phone waits to learn the right number, per topic. */
  const waitingForNumber = new Map<string, NtfyPublish[]>();
  const publishWaiters = new Map<string, { n: number; resolve: (p: NtfyPublish) => void }[]>();
  const pressWaiters = new Map<string, ((p: NtfyPress) => void)[]>();
  const faults = new InjectedFaults();
  const inFlight = new Set<Promise<unknown>>();
  const timers = new Set<NodeJS.Timeout>();
  let defaultBehaviour: NtfyBehaviour = opts.defaultBehaviour ?? { kind: 'approve' };
  let closed = false;
  const agent = new Agent({ connections: 64, keepAliveTimeout: 2_000 });

  const server = createServer((req, res) => {
    readBody(req, JSON_LIMIT + 1)
      .then((body) => handle(req, res, body))
      .catch(() => {
        if (!res.headersSent) sendError(res, ERR.internal);
      });
  });
  const url = await listenLoopback(server, host);

  function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const fault = faults.intercept(res);
    if (fault === 'held') return;
    if (fault !== undefined) {
      refuse(res, fault === 429 ? ERR.tooMany : { ...ERR.internal, http: fault });
      return;
    }
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method !== 'POST' && req.method !== 'PUT') return refuse(res, ERR.notFound);
    // ntfy authenticates the visitor before anything else: a token it does not know is 401.
    const auth = checkAuth(req.headers.authorization);
    if (auth === 'unauthorized') return refuse(res, ERR.unauthorized);
    if (body.length > JSON_LIMIT) return refuse(res, ERR.tooLarge);
    let input: PublishInput | NtfyError;
    if (path === '/') input = parseJsonPublish(body);
    else if (TOPIC.test(path.slice(1))) input = parsePlainPublish(path.slice(1), req, body);
    else return refuse(res, ERR.notFound);
    if ('code' in input) return refuse(res, input);
    // Then topic access: anonymous publishing to a protected server is forbidden.
    if (auth === 'anonymous') return refuse(res, ERR.forbidden);
    const checked = validate(input);
    if ('code' in checked) return refuse(res, checked);
    const now = Math.floor(Date.now() / 1000);
    const message: NtfyMessage = {
      id: randomId(12),
      time: now,
      expires: now + CACHE_SECONDS,
      event: 'message',
      topic: input.topic,
      message: input.message === '' ? 'triggered' : input.message,
      ...(input.title ? { title: input.title } : {}),
      ...(input.priority ? { priority: input.priority } : {}),
      ...(input.tags && input.tags.length > 0 ? { tags: input.tags } : {}),
      ...(input.click ? { click: input.click } : {}),
      ...(checked.length > 0 ? { actions: checked } : {}),
    };
    const publish: NtfyPublish = { ...message, authenticated: req.headers.authorization !== undefined, receivedAt: Date.now() };
    records.push(publish);
    byId.set(publish.id, publish);
    perTopic.set(publish.topic, (perTopic.get(publish.topic) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(message)}\n`);
    notifyPublish(publish);
    deliver(publish);
  }

  function checkAuth(header: string | undefined): 'ok' | 'anonymous' | 'unauthorized' {
    if (opts.accessToken === undefined) return 'ok';
    if (header === undefined) return 'anonymous';
    const m = /^Bearer (.+)$/i.exec(header);
    if (m?.[1] === undefined) return 'unauthorized';
    const given = Buffer.from(m[1]);
    const expected = Buffer.from(opts.accessToken);
    return given.length === expected.length && timingSafeEqual(given, expected) ? 'ok' : 'unauthorized';
  }

  function refuse(res: ServerResponse, err: NtfyError): void {
    refusals.push({ status: err.http, code: err.code });
    sendError(res, err);
  }

  // --- the phone ------------------------------------------------------------------------------

  function deliver(publish: NtfyPublish): void {
    const behaviour = behaviours.get(publish.topic) ?? defaultBehaviour;
    if (behaviour.kind === 'no_answer') return;
    const delay = behaviour.delayMs ?? 0;
    if (delay <= 0) {
      act(publish, behaviour);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      act(publish, behaviour);
    }, delay);
    timers.add(timer);
  }

  function act(publish: NtfyPublish, behaviour: NtfyBehaviour): void {
    if (closed) return;
    const numbers = numberLabels(publish);
    switch (behaviour.kind) {
      case 'no_answer':
        return;
      case 'pick':
        track(press(publish.id, String(behaviour.number)));
        return;
      case 'deny':
      case 'fraud': {
        const label = behaviour.kind === 'deny' ? 'Deny' : 'Not me';
        if (publish.actions?.some((a) => a.label === label)) track(press(publish.id, label));
        else track(submitPageForm(publish.id, behaviour.kind));
        return;
      }
      case 'approve':
      case 'wrong_number': {
        if (numbers.length === 0) {
          if (behaviour.kind === 'approve') track(press(publish.id, 'Approve'));
          return;
        }
        const right = rightNumber(publish);
        if (right === undefined) {
          const list = waitingForNumber.get(publish.topic) ?? [];
          list.push(publish);
          waitingForNumber.set(publish.topic, list);
          return;
        }
        pickFor(publish, behaviour.kind, right);
        return;
      }
    }
  }

  function pickFor(publish: NtfyPublish, kind: 'approve' | 'wrong_number', right: number): void {
    const label = kind === 'approve' ? String(right) : numberLabels(publish).find((l) => l !== String(right));
    if (label !== undefined) track(press(publish.id, label));
  }

  function rightNumber(publish: NtfyPublish): number | undefined {
    return opts.numberFor?.(publish) ?? shownNumbers.get(publish.topic);
  }

  function releaseWaiting(topic: string, pick: (publish: NtfyPublish) => void): void {
    const list = waitingForNumber.get(topic);
    if (list === undefined) return;
    waitingForNumber.delete(topic);
    for (const publish of list) pick(publish);
  }

  function track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }

  async function press(messageId: string, label: string): Promise<NtfyPress> {
    const publish = byId.get(messageId);
    if (publish === undefined) throw new Error(`ntfy fake: no message ${messageId}`);
    const action = publish.actions?.find((a) => a.label === label);
    if (action?.url === undefined) throw new Error(`ntfy fake: message ${messageId} has no action '${label}'`);
    if (action.action !== 'http') throw new Error(`ntfy fake: action '${label}' is a ${action.action} action, not http`);
    const method = action.method ?? 'POST';
    const body = action.body ?? (method === 'GET' || method === 'HEAD' ? undefined : '');
    return perform(publish, label, method, action.url, { ...action.headers, 'user-agent': APP_USER_AGENT }, body);
  }

  async function openPage(messageId: string): Promise<NtfyPage> {
    const publish = byId.get(messageId);
    if (publish?.click === undefined) throw new Error(`ntfy fake: message ${messageId} has no click URL`);
    const res = await request(publish.click, { method: 'GET', headers: { accept: 'text/html', 'user-agent': 'Mozilla/5.0 (fake browser)' }, dispatcher: agent });
    const body = await res.body.text();
    return { status: res.statusCode, body, forms: parseForms(body, publish.click) };
  }

  async function submitPageForm(messageId: string, answer: string): Promise<NtfyPress> {
    const publish = byId.get(messageId);
    if (publish === undefined) throw new Error(`ntfy fake: no message ${messageId}`);
    const page = await openPage(messageId);
    const form = page.forms.find((f) => f.fields.answer === answer);
    if (form === undefined) throw new Error(`ntfy fake: the click page (HTTP ${page.status}) has no '${answer}' form`);
    if (form.method !== 'POST') throw new Error(`ntfy fake: the '${answer}' form does not post`);
    return perform(
      publish,
      `page:${answer}`,
      'POST',
      form.action,
      { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', 'user-agent': 'Mozilla/5.0 (fake browser)' },
      new URLSearchParams(form.fields).toString(),
    );
  }

  async function perform(publish: NtfyPublish, label: string, method: string, target: string, headers: Record<string, string>, body: string | undefined): Promise<NtfyPress> {
    let status = 0;
    let text: string;
    try {
      const res = await request(target, { method: method as 'POST', headers, body: body ?? null, dispatcher: agent });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      text = err instanceof Error ? err.message : String(err);
    }
    const done: NtfyPress = { messageId: publish.id, topic: publish.topic, label, method, url: target, status, body: text, at: Date.now() };
    presses.push(done);
    const waiters = pressWaiters.get(publish.id);
    if (waiters !== undefined) {
      pressWaiters.delete(publish.id);
      for (const w of waiters) w(done);
    }
    return done;
  }

  function notifyPublish(publish: NtfyPublish): void {
    const waiters = publishWaiters.get(publish.topic);
    if (waiters === undefined) return;
    const count = perTopic.get(publish.topic) ?? 0;
    const rest = waiters.filter((w) => {
      if (w.n > count) return true;
      w.resolve(publish);
      return false;
    });
    if (rest.length === 0) publishWaiters.delete(publish.topic);
    else publishWaiters.set(publish.topic, rest);
  }

  return {
    url,
    records,
    presses,
    refusals,
    setBehaviour(topic, behaviour) {
      behaviours.set(topic, behaviour);
      if (behaviour.kind === 'pick') {
        const n = behaviour.number;
        releaseWaiting(topic, (publish) => track(press(publish.id, String(n))));
      }
    },
    setDefaultBehaviour(behaviour) {
      defaultBehaviour = behaviour;
    },
    showNumber(topic, number) {
      shownNumbers.set(topic, number);
      releaseWaiting(topic, (publish) => {
        const behaviour = behaviours.get(topic) ?? defaultBehaviour;
        pickFor(publish, behaviour.kind === 'wrong_number' ? 'wrong_number' : 'approve', number);
      });
    },
    failNext: (n, status) => faults.failNext(n, status),
    hang: (on) => faults.hang(on),
    press,
    openPage,
    submitPageForm,
    waitForPublish(topic, n = 1) {
      let seen = 0;
      for (const r of records) if (r.topic === topic && ++seen === n) return Promise.resolve(r);
      return new Promise((resolve) => {
        const list = publishWaiters.get(topic) ?? [];
        list.push({ n, resolve });
        publishWaiters.set(topic, list);
      });
    },
    waitForPress(messageId) {
      const done = presses.find((p) => p.messageId === messageId);
      if (done !== undefined) return Promise.resolve(done);
      return new Promise((resolve) => {
        const list = pressWaiters.get(messageId) ?? [];
        list.push(resolve);
        pressWaiters.set(messageId, list);
      });
    },
    async idle() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      faults.cutHeld();
      await Promise.all([...inFlight]);
      await closeServer(server);
      await agent.close();
    },
  };
}

// --- ntfy's parsing and validation ------------------------------------------------------------

/** What a publish asks for: the message's own fields, its actions not yet checked. */
type PublishInput = Omit<NtfyMessage, 'id' | 'time' | 'expires' | 'event' | 'actions'> & { readonly actions: readonly unknown[] };

/** Go's json.Decode into ntfy's publishMessage: a field of the wrong type fails the whole body. */
function parseJsonPublish(body: Buffer): PublishInput | NtfyError {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    return ERR.jsonInvalid;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ERR.jsonInvalid;
  const v = value as Record<string, unknown>;
  const str = (k: string) => v[k] === undefined || typeof v[k] === 'string';
  if (!str('topic') || !str('message') || !str('title') || !str('click')) return ERR.jsonInvalid;
  if (v.priority !== undefined && (typeof v.priority !== 'number' || !Number.isInteger(v.priority))) return ERR.jsonInvalid;
  if (v.tags !== undefined && (!Array.isArray(v.tags) || !v.tags.every((t) => typeof t === 'string'))) return ERR.jsonInvalid;
  if (v.actions !== undefined && !Array.isArray(v.actions)) return ERR.jsonInvalid;
  const topic = (v.topic as string | undefined) ?? '';
  if (!TOPIC.test(topic)) return ERR.topicInvalid;
  return {
    topic,
    message: (v.message as string | undefined) ?? '',
    ...(v.title === undefined ? {} : { title: v.title as string }),
    ...(v.priority === undefined ? {} : { priority: v.priority }),
    ...(v.tags === undefined ? {} : { tags: v.tags }),
    ...(v.click === undefined ? {} : { click: v.click as string }),
    actions: (v.actions as unknown[] | undefined) ?? [],
  };
}

/** `PUT/POST /<topic>` with the message as the body and the rest in headers (JSON actions only). */
function parsePlainPublish(topic: string, req: IncomingMessage, body: Buffer): PublishInput | NtfyError {
  const header = (...names: string[]) => {
    for (const n of names) {
      const value = req.headers[n];
      if (typeof value === 'string') return value;
    }
    return undefined;
  };
  const title = header('x-title', 'title', 't');
  const priorityText = header('x-priority', 'priority', 'prio', 'p');
  const tags = header('x-tags', 'tags', 'tag', 'ta');
  const click = header('x-click', 'click');
  const actionsText = header('x-actions', 'actions', 'action');
  let priority: number | undefined;
  if (priorityText !== undefined) {
    const named: Record<string, number> = { min: 1, low: 2, default: 3, high: 4, max: 5, urgent: 5 };
    priority = named[priorityText.toLowerCase()] ?? (/^\d+$/.test(priorityText) ? Number(priorityText) : -1);
  }
  let actions: unknown[] = [];
  if (actionsText !== undefined) {
    try {
      const parsed: unknown = JSON.parse(actionsText);
      if (!Array.isArray(parsed)) return ERR.actionsInvalid;
      actions = parsed;
    } catch {
      return ERR.actionsInvalid;
    }
  }
  return {
    topic,
    message: body.toString('utf8'),
    ...(title === undefined ? {} : { title }),
    ...(priority === undefined ? {} : { priority }),
    ...(tags === undefined ? {} : { tags: tags.split(',').map((t) => t.trim()) }),
    ...(click === undefined ? {} : { click }),
    actions,
  };
}

/** server/actions.go parseActions: ids, lower-case action, upper-case method, then the checks. */
function validate(input: PublishInput): NtfyAction[] | NtfyError {
  if (input.priority !== undefined && (input.priority < 0 || input.priority > 5)) return ERR.priorityInvalid;
  if (input.actions.length > 3) return { ...ERR.actionsInvalid, error: `${ERR.actionsInvalid.error}, only 3 actions allowed` };
  const out: NtfyAction[] = [];
  for (const raw of input.actions) {
    if (typeof raw !== 'object' || raw === null) return ERR.jsonInvalid;
    const a = raw as Record<string, unknown>;
    const str = (k: string) => a[k] === undefined || typeof a[k] === 'string';
    if (!str('action') || !str('label') || !str('url') || !str('method') || !str('body')) return ERR.jsonInvalid;
    if (a.clear !== undefined && typeof a.clear !== 'boolean') return ERR.jsonInvalid;
    if (a.headers !== undefined && (typeof a.headers !== 'object' || a.headers === null || !Object.values(a.headers).every((h) => typeof h === 'string'))) {
      return ERR.jsonInvalid;
    }
    const action = ((a.action as string | undefined) ?? '').toLowerCase();
    const label = (a.label as string | undefined) ?? '';
    const url = (a.url as string | undefined) ?? '';
    const method = ((a.method as string | undefined) ?? '').toUpperCase();
    const body = (a.body as string | undefined) ?? '';
    const invalid = (why: string): NtfyError => ({ ...ERR.actionsInvalid, error: `${ERR.actionsInvalid.error}, ${why}` });
    if (!['view', 'broadcast', 'http'].includes(action)) return invalid(`action '${action}' unknown`);
    if (label === '') return invalid("parameter 'label' is required");
    if ((action === 'view' || action === 'http') && url === '') return invalid(`parameter 'url' is required for action '${action}'`);
    if (action === 'http' && (method === 'GET' || method === 'HEAD') && body !== '') return invalid(`parameter 'body' cannot be set if method is ${method}`);
    out.push({
      id: randomId(10),
      action,
      label,
      clear: a.clear === true,
      ...(url === '' ? {} : { url }),
      ...(action === 'http' ? { method: method === '' ? 'POST' : method } : {}),
      ...(a.headers === undefined ? {} : { headers: a.headers as Record<string, string> }),
      ...(body === '' ? {} : { body }),
    });
  }
  return out;
}

// --- helpers -------------------------------------------------------------------------------------

function numberLabels(publish: NtfyPublish): string[] {
  return (publish.actions ?? []).map((a) => a.label).filter((l) => /^\d+$/.test(l));
}

function parseForms(html: string, base: string): NtfyPageForm[] {
  const forms: NtfyPageForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const attrs = m[1] ?? '';
    const inner = m[2] ?? '';
    const method = (attr(attrs, 'method') ?? 'GET').toUpperCase();
    const action = new URL(attr(attrs, 'action') ?? '', base).toString();
    const fields: Record<string, string> = {};
    for (const input of inner.matchAll(/<input\b([^>]*)>/gi)) {
      const name = attr(input[1] ?? '', 'name');
      if (name !== undefined) fields[name] = attr(input[1] ?? '', 'value') ?? '';
    }
    const button = /<button\b[^>]*>([\s\S]*?)<\/button>/i.exec(inner)?.[1] ?? '';
    forms.push({ method, action, fields, button: decodeEntities(button.trim()) });
  }
  return forms;
}

function attr(attrs: string, name: string): string | undefined {
  const m = new RegExp(`\\b${name}="([^"]*)"`, 'i').exec(attrs);
  return m?.[1] === undefined ? undefined : decodeEntities(m[1]);
}

function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function sendError(res: ServerResponse, err: NtfyError): void {
  res.writeHead(err.http, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify({ code: err.code, http: err.http, error: err.error, ...(err.link === undefined ? {} : { link: err.link }) })}\n`);
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomId(length: number): string {
  const bytes = randomBytes(length);
  let id = '';
  for (const b of bytes) id += ALPHANUMERIC[b % ALPHANUMERIC.length] ?? 'x';
  return id;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
