import { isIP } from 'node:net';
import { z } from 'zod';
import { secretRefSchema } from './secret-ref-schema.js';

/**
 * `providers.<name>`: accounts at the cloud services the second-factor methods use, and
 * `methods.<method>`: which providers serve a method, in order, with its limits.
 */

/** https:// always; http:// only to a loopback address (a local relay or a test double). */
export const providerUrl = z.string().refine((value) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return url.protocol === 'http:' && (host === 'localhost' || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1');
}, 'must be an https:// URL (http:// only to a loopback address)');

const common = {
  /** Per HTTP try. */
  timeout_ms: z.number().int().min(100).max(60000).default(10000),
  /** Extra tries for requests the provider cannot have acted on (and for idempotent ones). */
  retries: z.number().int().min(0).max(5).default(2),
  /** Failures in a row that open the circuit breaker, and how long it stays open. */
  breaker_failures: z.number().int().min(1).max(100).default(5),
  breaker_cooldown_seconds: z.number().int().min(1).max(3600).default(30),
  /** PEM CA file (relative to data_dir) for a provider behind a private CA. */
  ca_file: z.string().min(1).optional(),
};

const e164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 phone number (+ and 7 to 15 digits)');

export const twilioSchema = z.strictObject({
  type: z.literal('twilio'),
  account_sid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio Account SID (AC + 32 hex digits)'),
  auth_token: secretRefSchema,
  /** The Twilio number messages and calls come from. */
  from: e164,
  base_url: providerUrl.default('https://api.twilio.com'),
  /** Language of the voice prompts (TwiML <Say language>). */
  voice_language: z.string().min(2).max(10).default('en-US'),
  ...common,
});

export const duoSchema = z.strictObject({
  type: z.literal('duo'),
  /** `api-XXXXXXXX.duosecurity.com`: part of every signature. */
  api_host: z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be a host name (api-XXXXXXXX.duosecurity.com)'),
  integration_key: z.string().regex(/^DI[A-Z0-9]{18}$/, 'must be a Duo integration key (DI + 18 characters)'),
  secret_key: secretRefSchema,
  /** Default https://<api_host>; set only to reach it through a relay. */
  base_url: providerUrl.optional(),
  ...common,
});

export const ntfySchema = z.strictObject({
  type: z.literal('ntfy'),
  /** The ntfy server the users' apps subscribe to (self-hosted or https://ntfy.sh). */
  base_url: providerUrl.default('https://ntfy.sh'),
  /** Access token for servers with access control (Authorization: Bearer). */
  access_token: secretRefSchema.optional(),
  /** ntfy priority 1..5 (5: urgent, breaks through do-not-disturb on Android). */
  priority: z.number().int().min(1).max(5).default(5),
  ...common,
});

export const webhookSchema = z.strictObject({
  type: z.literal('webhook'),
  /** Receives `POST` JSON messages (see README: "Webhook provider"). */
  url: providerUrl,
  /** HMAC-SHA256 key for the signature header. At least 32 characters. */
  secret: secretRefSchema,
  /** What the receiving side can deliver. */
  channels: z.array(z.enum(['sms', 'voice'])).min(1).default(['sms']),
  ...common,
});

export const smtpSchema = z.strictObject({
  type: z.literal('smtp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(587),
  /** `starttls` (587), `implicit` (465), or `none` (only with insecure: true: codes cross the network in clear). */
  tls: z.enum(['starttls', 'implicit', 'none']).default('starttls'),
  insecure: z.boolean().default(false),
  user: z.string().min(1).optional(),
  password: secretRefSchema.optional(),
  /** Sender: `MFA Gateway <mfa@example.com>`. */
  from: z.string().min(3),
  ...common,
});

export const providerSchema = z.discriminatedUnion('type', [twilioSchema, duoSchema, ntfySchema, webhookSchema, smtpSchema]);
export type ProviderConfig = z.infer<typeof providerSchema>;
export type TwilioConfig = z.infer<typeof twilioSchema>;
export type DuoConfig = z.infer<typeof duoSchema>;
export type NtfyConfig = z.infer<typeof ntfySchema>;
export type WebhookConfig = z.infer<typeof webhookSchema>;
export type SmtpConfig = z.infer<typeof smtpSchema>;

/** Which keys of each provider type hold secret references (resolved to text at load). */
export const PROVIDER_SECRET_KEYS = {
  twilio: ['auth_token'],
  duo: ['secret_key'],
  ntfy: ['access_token'],
  webhook: ['secret'],
  smtp: ['password'],
} as const satisfies Record<ProviderConfig['type'], readonly string[]>;

/** What each provider type can do: code channels, approval channels (src/verify/providers/provider.ts). */
export const PROVIDER_CAPABILITIES: Record<ProviderConfig['type'], { readonly methods: readonly string[] }> = {
  twilio: { methods: ['sms', 'voice', 'phone'] },
  duo: { methods: ['push', 'phone', 'sms'] },
  ntfy: { methods: ['push'] },
  webhook: { methods: ['sms', 'voice'] },
  smtp: { methods: ['email'] },
};

const providerList = z.array(z.string().regex(/^[A-Za-z0-9_-]+$/)).min(1);

const codeMethod = {
  providers: providerList,
  /** Digits of the code (6..8). */
  code_length: z.number().int().min(6).max(8).default(6),
  /** How long a sent code stays valid. */
  ttl_seconds: z.number().int().min(30).max(3600).default(300),
};

/** Toll-fraud protection: sends per user per hour and for the whole gateway per hour. */
const sendLimits = (perUser: number, global: number) => ({
  per_user_per_hour: z.number().int().min(1).max(1000).default(perUser),
  global_per_hour: z.number().int().min(1).max(1_000_000).default(global),
});

export const methodsSchema = z
  .strictObject({
    sms: z
      .strictObject({
        ...codeMethod,
        /** `one_way`: the code is typed at the login prompt. `two_way`: the user replies to the SMS with it (Twilio). */
        mode: z.enum(['one_way', 'two_way']).default('one_way'),
        ...sendLimits(5, 500),
      })
      .optional(),
    /** Voice one-time code: a call reads the code out. */
    voice: z.strictObject({ ...codeMethod, ...sendLimits(3, 200) }).optional(),
    /** Phone call: press # to approve, or (mode pin) key in the PIN. */
    phone: z
      .strictObject({
        providers: providerList,
        mode: z.enum(['approve', 'pin']).default('approve'),
        pin_min_length: z.number().int().min(4).max(12).default(4),
        pin_max_length: z.number().int().min(4).max(12).default(8),
        ...sendLimits(3, 200),
      })
      .refine((p) => p.pin_min_length <= p.pin_max_length, { message: 'pin_min_length must not exceed pin_max_length', path: ['pin_min_length'] })
      .optional(),
    push: z
      .strictObject({
        providers: providerList,
        /** Show a number at the login prompt that the user picks among three in the app (where the client can show a challenge). */
        number_matching: z.boolean().default(true),
        /** Push-fatigue limit: pushes per user in 10 minutes; beyond it only code methods are offered. */
        max_per_10_minutes: z.number().int().min(1).max(100).default(5),
      })
      .optional(),
    email: z.strictObject({ ...codeMethod, ttl_seconds: z.number().int().min(30).max(3600).default(600), ...sendLimits(10, 1000) }).optional(),
  })
  .prefault({});
export type MethodsConfig = z.infer<typeof methodsSchema>;
