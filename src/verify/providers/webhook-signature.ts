import { createHmac } from 'node:crypto';

/**
 * The webhook's signature (README "Webhook provider"), after Stripe's scheme: HMAC-SHA256 under
 * the shared secret over `<timestamp>.<raw body>`, sent as `v1=<hex>`. The timestamp is inside
 * the MAC, so a receiver that refuses timestamps older than five minutes refuses replays too; the
 * `v1=` prefix leaves room for a second scheme during a key or algorithm change.
 */

export const TIMESTAMP_HEADER = 'X-MFA-Gateway-Timestamp';
export const SIGNATURE_HEADER = 'X-MFA-Gateway-Signature';

export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}
