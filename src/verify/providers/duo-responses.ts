import { z } from 'zod';
import { ProviderUnavailableError } from '../../errors.js';

/**
 * The `response` members of Duo Auth API v2 answers that the provider reads. Duo documents that
 * properties may be added at any time, so unknown keys are ignored; what we rely on is checked.
 */

export const preauthResponse = z.object({
  /** `auth`: a second factor is needed; `allow`: bypass user; `deny`: refused; `enroll`: no device yet. */
  result: z.string(),
  status_msg: z.string().optional(),
  devices: z
    .array(z.object({ device: z.string(), capabilities: z.array(z.string()).optional() }))
    .optional(),
});

/** `/auth/v2/auth` with `async=1`. */
export const asyncAuthResponse = z.object({ txid: z.string().min(1) });

/** `/auth/v2/auth` without `async`, and `/auth/v2/auth_status`. */
export const authResultResponse = z.object({
  /** `allow`, `deny`, or (auth_status only) `waiting`. */
  result: z.string(),
  status: z.string().optional(),
  status_msg: z.string().optional(),
});
export type AuthResult = z.infer<typeof authResultResponse>;

/** Parses Duo's `response`; a shape we do not understand is an outage, not a refusal. */
export function readResponse<T>(schema: z.ZodType<T>, value: unknown, what: string, provider: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ProviderUnavailableError(`${provider}: unexpected Duo answer to ${what}`);
  return parsed.data;
}

/** `duo pushed: Pushed a login request to your device...`, for logs and audit. */
export function describe(res: AuthResult): string {
  const status = res.status ?? res.result;
  return res.status_msg === undefined || res.status_msg === '' ? `duo ${status}` : `duo ${status}: ${res.status_msg}`;
}
