import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * The one configuration schema. YAML keys are snake_case (what admins write); everything is
 * validated here once, defaults applied, then the result is frozen and handed out typed.
 */

/** `{file: path}` (optionally `generate: true` to create a random secret on first start) or `{env: NAME}`. */
export const secretRefSchema = z.union([
  z.strictObject({
    file: z.string().min(1),
    generate: z.boolean().default(false),
  }),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') }),
]);
export type SecretRef = z.infer<typeof secretRefSchema>;

const cidr = z.string().refine(isCidrOrAddress, 'must be an IP address or CIDR block (e.g. 127.0.0.1 or 10.1.0.0/16)');

function isCidrOrAddress(value: string): boolean {
  const [addr, bits, ...rest] = value.split('/');
  if (rest.length > 0 || addr === undefined) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

const listenAddress = z.strictObject({
  address: z.string().refine((a) => isIP(a) !== 0, 'must be an IP address'),
  port: z.number().int().min(1).max(65535),
});

export const firstFactorSchema = z
  .string()
  .regex(/^(local|none|ldap:[A-Za-z0-9_-]+|radius:[A-Za-z0-9_-]+)$/, "must be 'local', 'none', 'ldap:<directory>' or 'radius:<upstream>'");

export const methodSchema = z.enum(['totp', 'hotp']);
export type MethodName = z.infer<typeof methodSchema>;

export const policySchema = z.strictObject({
  /** Which first factor checks the password. `none`: the NAS checked it already (RD Gateway via NPS). */
  first_factor: firstFactorSchema.default('local'),
  /** Second-factor methods allowed for this policy, in order of preference. */
  methods: z.array(methodSchema).min(1).default(['totp']),
  /** What to do with a user who has no second factor enrolled: reject, or accept on the first factor alone (audited). */
  unenrolled: z.enum(['reject', 'allow']).default('reject'),
  /** What to do with a name the gateway does not know. `reject`, or `pass` for 'MFA only for known users' (first factor alone). */
  unknown_users: z.enum(['reject', 'pass']).default('reject'),
  /** `secure`: a second-factor service fault rejects. `safe`: it accepts (audited as accepted_fail_open). */
  fail_mode: z.enum(['secure', 'safe']).default('secure'),
});
export type PolicyConfig = z.infer<typeof policySchema>;

export const clientSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  /** Source addresses this client sends from: addresses or CIDR blocks. The most specific match wins. */
  addresses: z.array(cidr).min(1),
  secret: secretRefSchema,
  /** Policy name from `policies`. */
  policy: z.string().default('default'),
  /** Drop Access-Requests without a valid Message-Authenticator (RFC 3579; Blast-RADIUS). */
  require_message_authenticator: z.boolean().default(true),
  /** Separates an inline code from the password: `password,123456`. */
  inline_delimiter: z.string().min(1).max(4).default(','),
  /** Whether this NAS can show an Access-Challenge prompt (most VPNs can; RD Gateway cannot). */
  challenge: z.boolean().default(true),
});
export type ClientConfig = z.infer<typeof clientSchema>;

export const configSchema = z
  .strictObject({
    gateway: z
      .strictObject({
        /** Name written into every audit record; defaults to the host name. */
        name: z.string().min(1).optional(),
      })
      .prefault({}),
    /** Resolved against the config file's directory; other relative paths (store, secret files) against data_dir. */
    data_dir: z.string().default('../data'),
    keys: z
      .strictObject({
        /** 32 random bytes (hex or base64 in the file): encrypts OATH secrets at rest and seals challenge State. */
        master_key: secretRefSchema.default({ file: 'master.key', generate: true }),
      })
      .prefault({}),
    store: z
      .strictObject({
        engine: z.literal('sqlite').default('sqlite'),
        sqlite: z.strictObject({ path: z.string().default('gateway.db') }).prefault({}),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .prefault({}),
    radius: z
      .strictObject({
        listen: z.array(listenAddress).default([{ address: '127.0.0.1', port: 1812 }]),
        accounting_listen: z.array(listenAddress).default([{ address: '127.0.0.1', port: 1813 }]),
        /** SO_RCVBUF per socket: a burst of Access-Requests must not overflow the kernel's default. */
        receive_buffer_bytes: z.number().int().min(65536).max(268435456).default(8388608),
        /** How long a reply is kept to answer retransmissions byte-identically (RFC 5080 §2.2.2). */
        duplicate_window_seconds: z.number().int().min(1).max(300).default(30),
        /** Unknown-client log lines are limited to this many per minute. */
        unknown_client_log_per_minute: z.number().int().min(1).default(10),
      })
      .prefault({}),
    clients: z.array(clientSchema).min(1),
    policies: z.record(z.string(), policySchema).default({ default: policySchema.parse({}) }),
    challenge: z
      .strictObject({
        /** How long the user has to answer an Access-Challenge. */
        ttl_seconds: z.number().int().min(10).max(900).default(120),
        prompt: z.string().min(1).max(200).default('Enter your verification code'),
      })
      .prefault({}),
    lockout: z
      .strictObject({
        /** Consecutive failed attempts (bad password or code) that lock a user. 0 disables lockout. */
        max_failures: z.number().int().min(0).max(1000).default(5),
        lock_minutes: z.number().min(0.1).max(10080).default(15),
      })
      .prefault({}),
    totp: z
      .strictObject({
        /** Time steps accepted on each side of now, for clock drift. */
        window: z.number().int().min(0).max(10).default(1),
        issuer: z.string().min(1).default('mfa-gateway'),
      })
      .prefault({}),
    hotp: z
      .strictObject({
        /** How many counters ahead a code may be (the user pressed the button without logging in). */
        look_ahead: z.number().int().min(0).max(100).default(10),
      })
      .prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.clients.forEach((client, i) => {
      if (names.has(client.name)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'name'], message: `duplicate client name '${client.name}'` });
      names.add(client.name);
      if (!(client.policy in cfg.policies)) {
        ctx.addIssue({ code: 'custom', path: ['clients', i, 'policy'], message: `no policy named '${client.policy}' in policies` });
      }
    });
    for (const [name, policy] of Object.entries(cfg.policies)) {
      if (policy.first_factor.startsWith('ldap:') || policy.first_factor.startsWith('radius:')) {
        ctx.addIssue({
          code: 'custom',
          path: ['policies', name, 'first_factor'],
          message: `'${policy.first_factor}' needs a directory or upstream, which this version does not support yet; use 'local' or 'none'`,
        });
      }
    }
  });

export type RawConfig = z.infer<typeof configSchema>;
