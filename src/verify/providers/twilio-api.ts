import { ProviderRejectedError } from '../../errors.js';
import type { CloudClient, CloudResponse } from '../cloud-client.js';
import { maskPhone } from '../masking.js';

/**
 * The three Twilio REST calls the provider makes (API version 2010-04-01, form-encoded bodies,
 * HTTP Basic with Account SID and Auth Token):
 *   POST /Accounts/{AccountSid}/Messages.json        send an SMS
 *   POST /Accounts/{AccountSid}/Calls.json           start a call (Url or inline Twiml)
 *   POST /Accounts/{AccountSid}/Calls/{CallSid}.json Status=completed: end a call
 *
 * Sending a message or starting a call is not idempotent and Twilio documents no idempotency key
 * for its REST API, so those are never retried once they may have reached Twilio (CloudClient
 * retries only what never left). Ending a call is idempotent.
 *
 * A 4xx answer carries Twilio's JSON error (`code`, `message`, `more_info`, `status`) and becomes
 * a ProviderRejectedError with that code; 5xx and transport failures are CloudClient's
 * ProviderUnavailableError.
 */

export interface TwilioApiOptions {
  readonly name: string;
  readonly accountSid: string;
  readonly authToken: string;
  readonly client: CloudClient;
}

export type FormParams = Readonly<Record<string, string | readonly string[]>>;

export class TwilioApi {
  private readonly authorization: string;
  private readonly accountPath: string;

  constructor(private readonly opts: TwilioApiOptions) {
    this.authorization = `Basic ${Buffer.from(`${opts.accountSid}:${opts.authToken}`, 'utf8').toString('base64')}`;
    this.accountPath = `${opts.client.basePath}/2010-04-01/Accounts/${encodeURIComponent(opts.accountSid)}`;
  }

  /** Sends an SMS; resolves to the Message SID. */
  async sendMessage(params: { to: string; from: string; body: string }, signal?: AbortSignal): Promise<string> {
    return this.create('Messages.json', { To: params.to, From: params.from, Body: params.body }, signal);
  }

  /** Starts a call; resolves to the Call SID. */
  async createCall(params: FormParams, signal?: AbortSignal): Promise<string> {
    return this.create('Calls.json', params, signal);
  }

  /** Hangs up (or cancels, if not answered yet) a call. */
  async endCall(callSid: string): Promise<void> {
    const res = await this.opts.client.request({
      method: 'POST',
      path: `${this.accountPath}/Calls/${encodeURIComponent(callSid)}.json`,
      headers: this.headers(),
      body: encodeForm({ Status: 'completed' }),
      idempotent: true,
    });
    if (res.status >= 300) throw this.rejected(res);
  }

  private async create(resource: string, params: FormParams, signal: AbortSignal | undefined): Promise<string> {
    const res = await this.opts.client.request({
      method: 'POST',
      path: `${this.accountPath}/${resource}`,
      headers: this.headers(),
      body: encodeForm(params),
      idempotent: false,
      ...(signal === undefined ? {} : { signal }),
    });
    if (res.status !== 200 && res.status !== 201) throw this.rejected(res);
    const sid = (parseJson(res.body) as { sid?: unknown } | undefined)?.sid;
    if (typeof sid !== 'string' || !/^[A-Z]{2}[0-9a-fA-F]{32}$/.test(sid)) {
      throw new ProviderRejectedError(`${this.opts.name}: Twilio answered HTTP ${res.status} without a resource SID`, String(res.status));
    }
    return sid;
  }

  private headers(): Record<string, string> {
    return { authorization: this.authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  }

  private rejected(res: CloudResponse): ProviderRejectedError {
    const error = parseJson(res.body) as { code?: unknown; message?: unknown } | undefined;
    const code = typeof error?.code === 'number' || typeof error?.code === 'string' ? String(error.code) : undefined;
    const message = typeof error?.message === 'string' ? this.scrub(error.message) : 'no error message';
    return new ProviderRejectedError(`${this.opts.name}: Twilio refused the request (HTTP ${res.status}${code === undefined ? '' : `, error ${code}`}): ${message}`, code ?? String(res.status));
  }

  /** Twilio's messages may quote the request: keep the token (never expected) and full numbers out of our logs. */
  private scrub(message: string): string {
    const short = message.slice(0, 300);
    const clean = this.opts.authToken === '' ? short : short.split(this.opts.authToken).join('[redacted]');
    return clean.replace(/\+\d{5,15}/g, (n) => maskPhone(n));
  }
}

export function encodeForm(params: FormParams): string {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string') form.append(name, value);
    else for (const v of value) form.append(name, v);
  }
  return form.toString();
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
