import type { ResolvedProvider } from '../../config/config.js';
import { InternalError, errorMessage } from '../../errors.js';
import { providerClient, type CloudClient } from '../cloud-client.js';
import type {
  ApprovalChannel,
  ApprovalRequest,
  CallbackRequest,
  CallbackResponse,
  CallbackRoutes,
  CodeChannel,
  CodeMessage,
  Provider,
  ProviderDeps,
  SentMessage,
  StartedApproval,
} from './provider.js';
import { maskPhone } from '../masking.js';
import { TwilioApi } from './twilio-api.js';
import { PhoneApprovals, REFUSED, isGatherStep } from './twilio-phone.js';
import { formPairs, verifyTwilioSignature } from './twilio-signature.js';
import { SmsReplies } from './twilio-sms-reply.js';
import { codeCallTwiml } from './twilio-twiml.js';

/**
 * Twilio (https://www.twilio.com/docs/usage/api): one-time codes by SMS and by voice call, and
 * approvals by phone call (press # or key in the PIN) and by two-way SMS.
 *
 * Callback routes, under `<public URL>/callbacks/<name>`:
 *   POST /voice/:token          first TwiML page of an approval call
 *   POST /gather/:step/:token   keys of one <Gather> (single use)
 *   POST /status/:token         final call status
 *   POST /sms                   inbound-message webhook of the Twilio number (set by the admin)
 * Each checks X-Twilio-Signature over `<public URL><path and query>` and the form parameters,
 * and that AccountSid is ours, before anything else; a failure is a 403 with nothing settled.
 * That URL must therefore be exactly the one Twilio calls: `http.public_url` as Twilio reaches it.
 */

export type TwilioProviderConfig = Extract<ResolvedProvider, { type: 'twilio' }>;

export class TwilioProvider implements Provider {
  readonly name: string;
  readonly type = 'twilio' as const;
  readonly codeChannels: ReadonlySet<CodeChannel> = new Set<CodeChannel>(['sms', 'voice']);
  readonly approvalChannels: ReadonlySet<ApprovalChannel> = new Set<ApprovalChannel>(['phone', 'sms_reply']);
  readonly numberMatching = false;

  private readonly client: CloudClient;
  private readonly api: TwilioApi;
  private readonly phone: PhoneApprovals | undefined;
  private readonly replies: SmsReplies;

  constructor(
    private readonly config: TwilioProviderConfig,
    private readonly deps: ProviderDeps,
  ) {
    this.name = config.name;
    this.client = providerClient(config, config.base_url, deps.log);
    this.api = new TwilioApi({ name: config.name, accountSid: config.account_sid, authToken: config.auth_token, client: this.client });
    this.phone =
      deps.publicUrl === undefined
        ? undefined
        : new PhoneApprovals({
            name: config.name,
            from: config.from,
            language: config.voice_language,
            api: this.api,
            tokens: deps.tokens,
            log: deps.log,
            now: deps.now,
            callbackBase: `${deps.publicUrl}/callbacks/${config.name}`,
          });
    this.replies = new SmsReplies({ name: config.name, from: config.from, api: this.api, log: deps.log, now: deps.now });
  }

  /** The URL to set as the Twilio number's "A message comes in" webhook (HTTP POST). */
  get inboundSmsUrl(): string | undefined {
    return this.deps.publicUrl === undefined ? undefined : `${this.deps.publicUrl}/callbacks/${this.name}/sms`;
  }

  async sendCode(message: CodeMessage): Promise<SentMessage> {
    let sid: string;
    switch (message.channel) {
      case 'sms':
        sid = await this.api.sendMessage({ to: message.to, from: this.config.from, body: `Your verification code is ${message.code}. It expires in ${describeTtl(message.ttlSeconds)}.` }, message.signal);
        break;
      case 'voice':
        sid = await this.api.createCall({ To: message.to, From: this.config.from, Twiml: codeCallTwiml(message.code, this.config.voice_language) }, message.signal);
        break;
      case 'email':
        throw new InternalError(`${this.name}: Twilio does not send codes by email`);
    }
    this.deps.log.info({ provider: this.name, attemptId: message.login.attemptId, channel: message.channel, to: maskPhone(message.to), sid }, 'code sent');
    return { messageId: sid };
  }

  async startApproval(request: ApprovalRequest): Promise<StartedApproval> {
    switch (request.channel) {
      case 'phone':
        if (this.phone === undefined) throw new InternalError(`${this.name}: phone approvals need http.public_url (Twilio must reach the gateway)`);
        return this.phone.start(request);
      case 'sms_reply':
        if (this.deps.publicUrl === undefined) throw new InternalError(`${this.name}: two-way SMS needs http.public_url (Twilio must reach the gateway)`);
        return this.replies.start(request);
      case 'push':
        throw new InternalError(`${this.name}: Twilio has no push approvals`);
    }
  }

  routes(routes: CallbackRoutes): void {
    routes.add('POST', '/voice/:token', (req) => this.authenticated(req, 'voice', (phone) => phone.voice(req.params.token ?? '', req.form)));
    routes.add('POST', '/gather/:step/:token', (req) =>
      this.authenticated(req, 'gather', (phone) => {
        const step = req.params.step ?? '';
        return isGatherStep(step) ? phone.gather(step, req.params.token ?? '', req.form) : REFUSED;
      }),
    );
    routes.add('POST', '/status/:token', (req) => this.authenticated(req, 'status', (phone) => phone.status(req.params.token ?? '', req.form)));
    routes.add('POST', '/sms', (req) => this.authenticated(req, 'sms', () => this.replies.inbound(req.form)));
  }

  async close(): Promise<void> {
    await Promise.all([this.phone?.close(), this.replies.close()]);
    await this.client.close();
  }

  /** Runs `handler` only for a request Twilio signed for this account; 403 otherwise. */
  private async authenticated(
    req: CallbackRequest,
    route: string,
    handler: (phone: PhoneApprovals) => CallbackResponse | Promise<CallbackResponse>,
  ): Promise<CallbackResponse> {
    const refusal = this.refusal(req);
    if (refusal !== undefined || this.phone === undefined) {
      this.deps.log.warn({ provider: this.name, route, remote: req.remoteAddress, reason: refusal ?? 'no public URL configured' }, 'Twilio callback refused');
      return REFUSED;
    }
    try {
      return await handler(this.phone);
    } catch (err) {
      this.deps.log.error({ provider: this.name, route, err: errorMessage(err) }, 'Twilio callback failed');
      return { status: 500, contentType: 'text/plain; charset=utf-8', body: 'internal error\n' };
    }
  }

  private refusal(req: CallbackRequest): string | undefined {
    if (this.deps.publicUrl === undefined) return 'no public URL configured';
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const params = type === 'application/x-www-form-urlencoded' ? formPairs(req.rawBody) : [];
    if (!verifyTwilioSignature(this.config.auth_token, req.headers['x-twilio-signature'], `${this.deps.publicUrl}${req.url}`, params)) {
      return req.headers['x-twilio-signature'] === undefined ? 'no X-Twilio-Signature' : 'X-Twilio-Signature does not match (is http.public_url the address Twilio calls?)';
    }
    if (req.form.AccountSid !== this.config.account_sid) return 'AccountSid is not this account';
    return undefined;
  }
}

/** "5 minutes", "1 minute", "90 seconds". */
function describeTtl(seconds: number): string {
  if (seconds >= 60 && seconds % 60 === 0) return seconds === 60 ? '1 minute' : `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}
