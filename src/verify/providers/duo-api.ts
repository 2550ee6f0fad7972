import { z } from 'zod';
import { ProviderRejectedError, ProviderUnavailableError } from '../../errors.js';
import type { CloudClient } from '../cloud-client.js';
import { signV5, type DuoParams } from './duo-signature.js';

/**
 * One signed call to Duo's Auth API and its answer, unwrapped from Duo's envelope:
 * `{stat: 'OK', response: …}` on success, `{stat: 'FAIL', code, message, message_detail?}`
 * otherwise, where the HTTP status is the first three digits of `code` (40002 → 400).
 *
 * Faults: transport failures and 5xx are the CloudClient's ProviderUnavailableError; a FAIL
 * with a 4xx code (40002 invalid parameters, 40103 invalid signature, …) is Duo refusing the
 * request: ProviderRejectedError with Duo's code. An answer that is not Duo's envelope is treated
 * as an outage (something between us and Duo answered), not as a refusal.
 */

const failSchema = z.object({
  stat: z.literal('FAIL'),
  code: z.number().int(),
  message: z.string(),
  message_detail: z.string().optional(),
});
const okSchema = z.object({ stat: z.literal('OK'), response: z.unknown() });
const envelopeSchema = z.discriminatedUnion('stat', [okSchema, failSchema]);

export interface DuoCredentials {
  /** Provider name, for errors. */
  readonly name: string;
  readonly integrationKey: string;
  readonly secretKey: string;
  /** The API hostname as Duo signs it (not the relay's, when base_url points elsewhere). */
  readonly apiHost: string;
  readonly now: () => number;
}

export interface DuoCallOptions {
  /** Safe to send twice (reads, and nothing that makes Duo push, call or text). */
  readonly idempotent: boolean;
  readonly signal?: AbortSignal;
}

export class DuoApi {
  constructor(
    private readonly creds: DuoCredentials,
    private readonly client: CloudClient,
  ) {}

  /** The `response` member of an OK answer (shape checked by the caller). */
  async call(method: 'GET' | 'POST', path: string, params: DuoParams, opts: DuoCallOptions): Promise<unknown> {
    const signed = signV5({
      integrationKey: this.creds.integrationKey,
      secretKey: this.creds.secretKey,
      host: this.creds.apiHost,
      method,
      path,
      params,
      now: this.creds.now(),
    });
    const res = await this.client.request({
      method,
      path: `${this.client.basePath}${signed.path}`,
      headers: { ...signed.headers, accept: 'application/json' },
      ...(signed.body === undefined ? {} : { body: signed.body }),
      idempotent: opts.idempotent,
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
    const envelope = parseEnvelope(res.body);
    if (envelope === undefined) {
      if (res.status >= 400 && res.status < 500) throw new ProviderRejectedError(`${this.creds.name}: Duo answered HTTP ${res.status} on ${path}`, String(res.status));
      throw new ProviderUnavailableError(`${this.creds.name}: Duo answered HTTP ${res.status} on ${path} without its JSON envelope`);
    }
    if (envelope.stat === 'OK') {
      if (res.status !== 200) throw new ProviderUnavailableError(`${this.creds.name}: Duo answered HTTP ${res.status} with stat OK on ${path}`);
      return envelope.response;
    }
    const detail = envelope.message_detail === undefined ? '' : ` (${envelope.message_detail})`;
    const text = `${this.creds.name}: Duo ${envelope.code} ${envelope.message}${detail} on ${path}`;
    // The code's first three digits are the HTTP status; go by the code, which a FAIL always has.
    if (envelope.code >= 50000 || res.status >= 500) throw new ProviderUnavailableError(text);
    throw new ProviderRejectedError(text, String(envelope.code));
  }
}

function parseEnvelope(body: Buffer): z.infer<typeof envelopeSchema> | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = envelopeSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
