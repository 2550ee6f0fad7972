import type { ResolvedProvider } from '../../config/config.js';
import { ProviderRejectedError, ProviderUnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { CallbackTokens } from '../callback-tokens.js';
import { providerClient, type CloudClient } from '../cloud-client.js';
import { messagePage, pendingPage } from './ntfy-page.js';
import { PendingPushes } from './ntfy-pending.js';
import { NTFY_MAX_ACTIONS, NTFY_TOPIC, PAGE_PURPOSE, answerPurpose, errorText, loginSummary, pickPurpose, publishBody, publishedId } from './ntfy-publish.js';
import type {
  ApprovalChannel,
  ApprovalOutcome,
  ApprovalRequest,
  CallbackRequest,
  CallbackResponse,
  CallbackRoutes,
  CodeChannel,
  Provider,
  ProviderDeps,
  StartedApproval,
} from './provider.js';

/**
 * Push through ntfy (https://ntfy.sh or a self-hosted server): the user subscribes the ntfy app
 * to a long random topic (their device address) and gets a notification whose buttons post the
 * answer straight back to the gateway's callback listener.
 *
 * The topic is the only secret on ntfy's side (anyone who knows it can read the pushes), so it
 * is never logged. The answer URLs carry signed tokens (src/verify/callback-tokens.ts) that all
 * share one id per push and are redeemed in one claim group: the first press of one push counts,
 * a replay or the push's other button is refused with 409.
 */

type NtfyConfig = Extract<ResolvedProvider, { type: 'ntfy' }>;

const FIXED_ANSWERS = ['approve', 'deny', 'fraud'] as const;

export class NtfyProvider implements Provider {
  readonly name: string;
  readonly type = 'ntfy' as const;
  readonly codeChannels: ReadonlySet<CodeChannel> = new Set<CodeChannel>();
  readonly approvalChannels: ReadonlySet<ApprovalChannel> = new Set<ApprovalChannel>(['push']);
  readonly numberMatching = true;

  private readonly client: CloudClient;
  private readonly pending: PendingPushes;
  private readonly log: Logger;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly priority: number;

  constructor(
    config: NtfyConfig,
    private readonly deps: ProviderDeps,
  ) {
    this.name = config.name;
    this.log = deps.log.child({ module: 'ntfy', provider: config.name });
    this.client = providerClient(config, config.base_url, deps.log);
    this.pending = new PendingPushes(deps.now);
    this.priority = config.priority;
    this.headers = {
      'content-type': 'application/json',
      accept: 'application/json',
      ...(config.access_token === undefined ? {} : { authorization: `Bearer ${config.access_token}` }),
    };
  }

  /** Pushes waiting for an answer (for tests and metrics). */
  get pendingCount(): number {
    return this.pending.size;
  }

  async startApproval(request: ApprovalRequest): Promise<StartedApproval> {
    if (request.channel !== 'push') throw new ProviderRejectedError(`${this.name}: ntfy only sends push notifications`, 'channel');
    if (!NTFY_TOPIC.test(request.to)) throw new ProviderRejectedError(`${this.name}: the device address is not an ntfy topic name`, 'topic');
    const match = request.numberMatch;
    if (match !== undefined && (match.choices.length === 0 || match.choices.length > NTFY_MAX_ACTIONS || !match.choices.includes(match.correct))) {
      throw new ProviderRejectedError(`${this.name}: number matching needs 1..${NTFY_MAX_ACTIONS} choices including the right one`, 'choices');
    }
    const base = this.callbackBase();
    if (request.signal.aborted) throw new ProviderUnavailableError(`${this.name}: request abandoned`);

    const id = CallbackTokens.newId();
    const summary = loginSummary(request.recipient, request.login);
    const tokens = this.deps.tokens;
    const body = publishBody({
      topic: request.to,
      summary,
      priority: this.priority,
      pageUrl: `${base}/page/${tokens.issue(id, PAGE_PURPOSE, request.expiresAt)}`,
      answerUrl: (purpose) => `${base}/answer/${tokens.issue(id, purpose, request.expiresAt)}`,
      numberMatch: match,
    });

    // Registered before publishing: the phone can answer before ntfy's reply reaches us.
    const entry = this.pending.add(id, match?.correct, summary, request.expiresAt, request.signal);
    let status: number;
    let answer: Buffer;
    try {
      const res = await this.client.request({ method: 'POST', path: `${this.client.basePath}/`, headers: this.headers, body: JSON.stringify(body), signal: request.signal });
      status = res.status;
      answer = res.body;
    } catch (err) {
      this.pending.forget(id);
      throw err;
    }
    if (status < 200 || status >= 300) {
      this.pending.forget(id);
      const error = errorText(status, answer);
      this.log.warn({ status, ntfyError: error.code }, 'ntfy refused the push');
      throw new ProviderRejectedError(`${this.name}: ntfy refused the push (HTTP ${status}): ${error.text}`, error.code);
    }
    entry.messageId = publishedId(answer);
    this.log.debug({ messageId: entry.messageId, attemptId: request.login.attemptId, numberMatching: match !== undefined }, 'push published');
    return { messageId: entry.messageId, outcome: entry.outcome };
  }

  routes(routes: CallbackRoutes): void {
    routes.add('POST', '/answer/:token', (req) => this.answer(req));
    routes.add('GET', '/page/:token', (req) => Promise.resolve(this.page(req)));
  }

  async close(): Promise<void> {
    this.pending.settleAll({ result: 'timeout', detail: 'the gateway is shutting down' });
    await this.client.close();
  }

  /** A button press (the ntfy app) or a form post (the page). */
  private async answer(req: CallbackRequest): Promise<CallbackResponse> {
    const html = wantsHtml(req);
    const token = req.params.token ?? '';
    // The pick's number is a hint only: the token's MAC covers it, so another number fails.
    const pick = req.form.pick;
    const purposes = FIXED_ANSWERS.map(answerPurpose);
    if (pick !== undefined && /^\d{1,9}$/.test(pick)) purposes.unshift(pickPurpose(Number(pick)));
    let purpose: string | undefined;
    let id: string | undefined;
    for (const candidate of purposes) {
      const verified = this.deps.tokens.verify(token, candidate);
      if (verified !== undefined) {
        purpose = candidate;
        id = verified.id;
        break;
      }
    }
    if (purpose === undefined || id === undefined) return this.refuse(req, 403, 'forged or expired token', 'This link is not valid or has expired.', html);
    const claimed = await this.deps.tokens.redeem(token, purpose, id);
    if (claimed === undefined) return this.refuse(req, 409, 'push already answered', 'This sign-in request was already answered.', html);
    const entry = this.pending.get(id);
    if (entry === undefined) return this.refuse(req, 409, 'push no longer pending', 'This sign-in request is no longer waiting for an answer.', html);

    const outcome = decide(purpose, entry.correct);
    this.pending.settle(id, outcome);
    this.log.info({ messageId: entry.messageId, result: outcome.result }, 'push answered');
    return reply(200, RESULT_TEXT[outcome.result], html);
  }

  /** The notification's `click` page: shows the login and the Deny / "Not me" forms. Never changes state. */
  private page(req: CallbackRequest): CallbackResponse {
    const verified = this.deps.tokens.verify(req.params.token ?? '', PAGE_PURPOSE);
    if (verified === undefined) return this.refuse(req, 403, 'forged or expired page token', 'This link is not valid or has expired.', true);
    const entry = this.pending.get(verified.id);
    if (entry === undefined) return reply(410, 'This sign-in request is no longer waiting for an answer.', true);
    const base = this.callbackBase();
    // The same tokens the push was issued with: issue() is a pure function of id, purpose and expiry.
    const formUrl = (answer: 'deny' | 'fraud') => `${base}/answer/${this.deps.tokens.issue(verified.id, answerPurpose(answer), verified.expiresAt)}`;
    const body = pendingPage(entry.summary, [
      { label: 'Deny', action: formUrl('deny'), answer: 'deny' },
      { label: 'Not me: report fraud', action: formUrl('fraud'), answer: 'fraud' },
    ]);
    return { status: 200, contentType: 'text/html; charset=utf-8', body };
  }

  private refuse(req: CallbackRequest, status: number, reason: string, text: string, html: boolean): CallbackResponse {
    // The path holds the token: log the route's name only.
    this.log.warn({ remote: req.remoteAddress, method: req.method, status, reason }, 'ntfy callback refused');
    return reply(status, text, html);
  }

  private callbackBase(): string {
    if (this.deps.publicUrl === undefined) throw new ProviderRejectedError(`${this.name}: ntfy needs http.public_url for its answer buttons`, 'public_url');
    return `${this.deps.publicUrl}/callbacks/${this.name}`;
  }
}

function decide(purpose: string, correct: number | undefined): ApprovalOutcome {
  switch (purpose) {
    case answerPurpose('approve'):
      return { result: 'approved', detail: 'approved in the ntfy app' };
    case answerPurpose('deny'):
      return { result: 'denied', detail: 'denied in the ntfy app' };
    case answerPurpose('fraud'):
      return { result: 'fraud', detail: 'reported as not me in the ntfy app' };
    default:
      return correct !== undefined && purpose === pickPurpose(correct)
        ? { result: 'approved', detail: 'right number picked in the ntfy app' }
        : { result: 'wrong_number', detail: 'wrong number picked in the ntfy app' };
  }
}

const RESULT_TEXT: Record<ApprovalOutcome['result'], string> = {
  approved: 'Approved. You can close this.',
  denied: 'Denied.',
  fraud: 'Reported: the sign-in was refused and your administrator is told.',
  wrong_number: 'Wrong number: the sign-in was refused.',
  bad_pin: 'Refused.',
  timeout: 'This sign-in request has expired.',
};

function wantsHtml(req: CallbackRequest): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}

function reply(status: number, text: string, html: boolean): CallbackResponse {
  return html ? { status, contentType: 'text/html; charset=utf-8', body: messagePage(text) } : { status, contentType: 'text/plain; charset=utf-8', body: `${text}\n` };
}
