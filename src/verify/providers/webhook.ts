import { randomUUID } from 'node:crypto';
import type { ResolvedProvider } from '../../config/config.js';
import { ProviderRejectedError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { providerClient, type CloudClient } from '../cloud-client.js';
import type { ApprovalChannel, CodeChannel, CodeMessage, Provider, ProviderDeps, SentMessage } from './provider.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, webhookSignature } from './webhook-signature.js';
import { maskPhone } from '../masking.js';

/**
 * A generic HTTPS webhook for admins with any SMS or voice gateway: the gateway makes the code,
 * the receiver only delivers the text. One signed JSON POST per message (README "Webhook
 * provider" is the contract). Each message carries an `Idempotency-Key`, so a 5xx or a lost
 * answer is retried: a receiver that de-duplicates on the key never sends the code twice.
 */

type WebhookConfig = Extract<ResolvedProvider, { type: 'webhook' }>;

const E164 = /^\+[1-9]\d{6,14}$/;

export class WebhookProvider implements Provider {
  readonly name: string;
  readonly type = 'webhook' as const;
  readonly codeChannels: ReadonlySet<CodeChannel>;
  readonly approvalChannels: ReadonlySet<ApprovalChannel> = new Set<ApprovalChannel>();
  readonly numberMatching = false;

  private readonly client: CloudClient;
  private readonly path: string;
  private readonly secret: string;
  private readonly log: Logger;

  constructor(
    config: WebhookConfig,
    private readonly deps: ProviderDeps,
  ) {
    this.name = config.name;
    this.codeChannels = new Set<CodeChannel>(config.channels);
    this.secret = config.secret;
    const url = new URL(config.url);
    this.path = `${url.pathname}${url.search}`;
    this.log = deps.log.child({ module: 'webhook', provider: config.name });
    this.client = providerClient(config, config.url, deps.log);
  }

  async sendCode(message: CodeMessage): Promise<SentMessage> {
    const channel = message.channel;
    if ((channel !== 'sms' && channel !== 'voice') || !this.codeChannels.has(channel)) {
      throw new ProviderRejectedError(`${this.name}: this webhook does not deliver ${channel}`, 'channel');
    }
    if (!E164.test(message.to)) throw new ProviderRejectedError(`${this.name}: not an E.164 phone number`, 'to');
    const id = randomUUID();
    const timestamp = Math.floor(this.deps.now() / 1000);
    // Key order is the documented one; receivers verify the signature over these exact bytes.
    const body = JSON.stringify({
      id,
      channel,
      to: message.to,
      message: codeText(message.code, message.ttlSeconds),
      code: message.code,
      ttl_seconds: message.ttlSeconds,
      user: message.recipient.username,
      timestamp,
    });
    const res = await this.client.request({
      method: 'POST',
      path: this.path,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: webhookSignature(this.secret, timestamp, body),
        'Idempotency-Key': id,
      },
      body,
      idempotent: true,
      signal: message.signal,
    });
    if (res.status >= 200 && res.status < 300) {
      const messageId = receiverId(res.body) ?? id;
      this.log.debug({ messageId, channel, to: maskPhone(message.to), tries: res.tries }, 'code handed to the webhook');
      return { messageId };
    }
    this.log.warn({ status: res.status, channel, to: maskPhone(message.to) }, 'webhook refused the message');
    throw new ProviderRejectedError(`${this.name}: the webhook refused the message (HTTP ${res.status})`, String(res.status));
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** "Your verification code is 123456. It expires in 5 minutes." */
export function codeText(code: string, ttlSeconds: number): string {
  const expiry =
    ttlSeconds % 60 === 0 ? `${ttlSeconds / 60} minute${ttlSeconds === 60 ? '' : 's'}` : `${ttlSeconds} second${ttlSeconds === 1 ? '' : 's'}`;
  return `Your verification code is ${code}. It expires in ${expiry}.`;
}


/** The receiver's own message id (`{"id": "..."}`), when it answered with one. */
function receiverId(body: Buffer): string | null {
  if (body.length === 0) return null;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) return null;
    const id = (parsed as { id?: unknown }).id;
    return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : typeof id === 'number' ? String(id) : null;
  } catch {
    return null;
  }
}
