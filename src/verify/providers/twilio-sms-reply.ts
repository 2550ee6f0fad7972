import { LRUCache } from 'lru-cache';
import { InternalError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ApprovalRequest, CallbackResponse, StartedApproval } from './provider.js';
import { maskPhone } from '../masking.js';
import type { TwilioApi } from './twilio-api.js';
import { sameSecret } from './twilio-signature.js';
import { EMPTY_TWIML } from './twilio-twiml.js';
import { ApprovalWaiter } from './twilio-waiter.js';

/**
 * Two-way SMS approvals: the gateway texts the user a code, the user answers the text with it.
 * Replies reach the gateway through the inbound-message webhook the admin sets on the Twilio
 * number (`<public URL>/callbacks/<provider>/sms`, HTTP POST); the provider checks
 * X-Twilio-Signature and AccountSid before `inbound` runs.
 *
 * A reply is matched by its sender (From, E.164) to the pending requests sent to that number:
 * the code (constant-time compare) approves the request it belongs to; `0` reports the newest
 * request as fraud; anything else denies the newest. A message SID is acted on once (Twilio may
 * deliver a webhook twice), and an unknown sender changes nothing.
 */

export interface SmsRepliesOptions {
  readonly name: string;
  /** The Twilio number texts come from, and replies go to. */
  readonly from: string;
  readonly api: TwilioApi;
  readonly log: Logger;
  readonly now: () => number;
}

interface PendingReply {
  readonly to: string;
  /** Never logged. */
  readonly code: string;
  readonly waiter: ApprovalWaiter;
  readonly attemptId: string;
}

/** Inbound messages whose SID was seen recently (duplicate deliveries). */
const SEEN_MAX = 10_000;
const SEEN_TTL_MS = 60 * 60_000;

export class SmsReplies {
  private readonly byNumber = new Map<string, PendingReply[]>();
  private readonly seen = new LRUCache<string, true>({ max: SEEN_MAX, ttl: SEEN_TTL_MS });

  constructor(private readonly opts: SmsRepliesOptions) {}

  get pending(): number {
    let n = 0;
    for (const list of this.byNumber.values()) n += list.length;
    return n;
  }

  async start(request: ApprovalRequest): Promise<StartedApproval> {
    const code = request.code;
    if (code === undefined || !/^\d{4,10}$/.test(code)) throw new InternalError(`${this.opts.name}: a two-way SMS needs the code it carries (4 to 10 digits)`);
    const holder: { entry?: PendingReply } = {};
    const waiter = new ApprovalWaiter(request.expiresAt, request.signal, this.opts.now, () => {
      if (holder.entry !== undefined) this.remove(holder.entry);
    });
    const entry: PendingReply = { to: request.to, code, waiter, attemptId: request.login.attemptId };
    holder.entry = entry;
    const list = this.byNumber.get(request.to);
    if (list === undefined) this.byNumber.set(request.to, [entry]);
    else list.push(entry);

    let sid: string;
    try {
      sid = await this.opts.api.sendMessage(
        { to: request.to, from: this.opts.from, body: `Reply with ${code} to approve the sign-in to ${request.login.clientName}. Reply 0 to report fraud.` },
        request.signal,
      );
    } catch (err) {
      waiter.dispose();
      this.remove(entry);
      throw err;
    }
    const logFields = { provider: this.opts.name, attemptId: request.login.attemptId, to: maskPhone(request.to), messageSid: sid };
    this.opts.log.info(logFields, 'two-way SMS sent');
    void waiter.outcome.then((outcome) => this.opts.log.info({ ...logFields, result: outcome.result, detail: outcome.detail }, 'two-way SMS settled'));
    return { messageId: sid, outcome: waiter.outcome };
  }

  /** The inbound-message webhook (already authenticated): always answers empty TwiML. */
  inbound(form: Readonly<Record<string, string>>): CallbackResponse {
    const answer: CallbackResponse = { status: 200, contentType: 'text/xml; charset=utf-8', body: EMPTY_TWIML };
    const messageSid = form.MessageSid ?? form.SmsSid ?? '';
    const from = form.From ?? '';
    const fields = { provider: this.opts.name, from: maskPhone(from), messageSid };
    if (messageSid !== '') {
      if (this.seen.has(messageSid)) {
        this.opts.log.info(fields, 'SMS reply delivered twice, ignored');
        return answer;
      }
      this.seen.set(messageSid, true);
    }
    if (form.To !== undefined && form.To !== this.opts.from) {
      this.opts.log.info(fields, 'SMS to another number than ours, ignored');
      return answer;
    }
    const list = this.byNumber.get(from);
    const newest = list?.[list.length - 1];
    if (list === undefined || newest === undefined) {
      this.opts.log.info(fields, 'SMS reply from a number with no pending request, ignored');
      return answer;
    }
    const body = (form.Body ?? '').trim();
    // Every pending code is compared, so the time taken does not tell which (if any) matched.
    let match: PendingReply | undefined;
    for (const entry of list) if (sameSecret(body, entry.code)) match ??= entry;
    if (match !== undefined) match.waiter.settle({ result: 'approved', detail: 'replied with the code' });
    else if (body === '0') newest.waiter.settle({ result: 'fraud', detail: 'replied 0 (fraud)' });
    else newest.waiter.settle({ result: 'denied', detail: 'reply did not match the code' });
    this.remove(match ?? newest);
    return answer;
  }

  close(): Promise<void> {
    for (const list of this.byNumber.values()) for (const entry of list) entry.waiter.settle({ result: 'timeout', detail: 'gateway shutting down' });
    this.byNumber.clear();
    return Promise.resolve();
  }

  private remove(entry: PendingReply): void {
    entry.waiter.dispose();
    const list = this.byNumber.get(entry.to);
    if (list === undefined) return;
    const i = list.indexOf(entry);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byNumber.delete(entry.to);
  }
}
