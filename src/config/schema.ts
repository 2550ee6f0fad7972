import { isIP } from 'node:net';
import { z } from 'zod';
import { methodsSchema, providerSchema, providerUrl, PROVIDER_CAPABILITIES } from './providers-schema.js';
import { replyAttributesSchema } from './reply-attributes-schema.js';
import { secretRefSchema } from './secret-ref-schema.js';
import { syncSchema } from './sync-schema.js';

/**
 * The one configuration schema. YAML keys are snake_case (what admins write); everything is
 * validated here once, defaults applied, then the result is frozen and handed out typed.
 */

export { secretRefSchema, type SecretRef } from './secret-ref-schema.js';

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

/**
 * Second-factor methods. `totp`/`hotp`: local OATH tokens. `push`: app push (ntfy, Duo). `phone`:
 * a call to approve (#) or key in the PIN. `sms`, `voice`, `email`: a one-time code sent that
 * way and typed back (or, for `sms` in two-way mode, replied to the SMS).
 */
export const methodSchema = z.enum(['totp', 'hotp', 'push', 'phone', 'sms', 'voice', 'email']);
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
  /** Accept a user's later logins from the same client address without a second factor for this long after a success (0: off). */
  remember_seconds: z.number().int().min(0).max(86400).default(0),
  /** Let users pick a method from a numbered menu (clients that show challenges) when they have no default method. */
  method_menu: z.boolean().default(true),
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
  /**
   * How long a login waits for a push or call to be answered. The NAS's own RADIUS timeout
   * (timeout × retries) must be longer, or it gives up first (README: "Timeouts").
   */
  approval_timeout_seconds: z.number().int().min(5).max(300).default(60),
});
export type ClientConfig = z.infer<typeof clientSchema>;

const NAME = /^[A-Za-z0-9_-]+$/;

/** `ldap://host[:port]` or `ldaps://host[:port]` (no DN, no query: the base DN is its own key). */
const ldapUrl = z.string().refine((u) => /^ldaps?:\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?\/?$/.test(u), 'must be ldap://host[:port] or ldaps://host[:port]');

export const directorySchema = z.strictObject({
  /** `ad` (Active Directory, Samba AD): sAMAccountName/UPN lookups and AD's bind diagnostics. `ldap`: uid lookups (OpenLDAP). */
  flavour: z.enum(['ad', 'ldap']),
  /** Servers in order of preference; the next is tried when one does not answer. */
  urls: z.array(ldapUrl).min(1),
  /** StartTLS on ldap:// URLs. Plain ldap:// without it only with `insecure: true`. */
  start_tls: z.boolean().default(true),
  /** Allow ldap:// without StartTLS: passwords cross the network in clear text. Warned at every start. */
  insecure: z.boolean().default(false),
  /** PEM file of the CA that signed the directory's certificate (relative to data_dir); default: the system's CAs. */
  ca_file: z.string().min(1).optional(),
  /** Service account used to find users (its DN or, on AD, its UPN). */
  bind_dn: z.string().min(1),
  bind_password: secretRefSchema,
  base_dn: z.string().min(1),
  timeout_ms: z.number().int().min(100).max(60000).default(5000),
  /** Concurrent connections per server for user binds. */
  pool_size: z.number().int().min(1).max(256).default(8),
  /** Keep a local copy of this directory's users (directory sync); absent: no sync. */
  sync: syncSchema.optional(),
  /** RADIUS reply attributes by directory group (nested groups count); the first matching entry wins. See reply-attributes-schema.ts. */
  reply_attributes: replyAttributesSchema.optional(),
});
export type DirectoryConfig = z.infer<typeof directorySchema>;

const upstreamServer = z.strictObject({
  address: z.string().refine((a) => isIP(a) !== 0, 'must be an IP address'),
  port: z.number().int().min(1).max(65535).default(1812),
  secret: secretRefSchema,
});

export const upstreamSchema = z.strictObject({
  /** Tried in order; the next one when a server does not answer (and that server is skipped for dead_time_seconds). */
  servers: z.array(upstreamServer).min(1),
  /** Wait per try; NPS with its own MFA extension may need more. */
  timeout_ms: z.number().int().min(100).max(120000).default(3000),
  /** Tries per server (the same packet retransmitted). */
  tries: z.number().int().min(1).max(10).default(2),
  dead_time_seconds: z.number().int().min(0).max(3600).default(30),
  /**
   * Accept only replies with a valid Message-Authenticator (Blast-RADIUS). false only for an
   * upstream that cannot send one (FreeRADIUS before 3.2.5 on PAP); warned at every start.
   */
  require_message_authenticator: z.boolean().default(true),
});
export type UpstreamConfig = z.infer<typeof upstreamSchema>;

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
        sqlite: z
          .strictObject({
            path: z.string().default('gateway.db'),
            /**
             * true: no reply leaves before its audit record is fsync'd (survives a power loss).
             * false: before it is committed (survives a crash or kill -9; a power loss may lose
             * the last moments of records), which saves the fsync wait (small on SSDs, large on slow disks).
             */
            fsync_before_reply: z.boolean().default(true),
          })
          .prefault({}),
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
    /** Directories for first factors `ldap:<name>`. */
    directories: z.record(z.string().regex(NAME, 'letters, digits, _ - only'), directorySchema).default({}),
    /** Upstream RADIUS servers (NPS, FreeRADIUS) for first factors `radius:<name>`. */
    upstreams: z.record(z.string().regex(NAME, 'letters, digits, _ - only'), upstreamSchema).default({}),
    /** Accounts at second-factor services (Twilio, Duo, ntfy, webhook, SMTP): see providers-schema.ts. */
    providers: z.record(z.string().regex(NAME, 'letters, digits, _ - only'), providerSchema).default({}),
    /** Which providers serve each cloud method, in order (the next is tried when one fails), and its limits. */
    methods: methodsSchema,
    /** The HTTP listener for provider callbacks (and later the portal). */
    http: z
      .strictObject({
        /** At most one address: put a reverse proxy in front to serve more. */
        listen: z.array(listenAddress).max(1, 'one address at most (a reverse proxy can serve others)').default([]),
        /** The URL providers call back (what the Internet sees, e.g. behind a reverse proxy): https:// always. */
        public_url: providerUrl.optional(),
        /** Certificate and key (PEM, relative to data_dir) to serve HTTPS. Without them plain HTTP only with insecure: true. */
        tls: z.strictObject({ cert_file: z.string().min(1), key_file: z.string().min(1) }).optional(),
        /** Serve plain HTTP (behind a TLS-terminating reverse proxy on the same host). */
        insecure: z.boolean().default(false),
        /** Requests per minute per source address on the callback routes. */
        rate_limit_per_minute: z.number().int().min(1).max(100000).default(300),
        /**
         * Reverse proxies (addresses or CIDR blocks) whose X-Forwarded-For names the real client:
         * the rate limit then counts each client, not the proxy. Empty: the connection's address.
         */
        trust_proxy: z.array(cidr).default([]),
      })
      .prefault({}),
    /** What a fraud report (push "this wasn't me", 0 on a call) does. */
    fraud: z
      .strictObject({
        block_user: z.boolean().default(true),
        /** Admins mailed on every report (through the first smtp provider). */
        notify: z.array(z.string().regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address')).default([]),
      })
      .prefault({}),
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
      const [kind, target] = policy.first_factor.split(':');
      if (kind === 'ldap' && target !== undefined && !(target in cfg.directories)) {
        ctx.addIssue({ code: 'custom', path: ['policies', name, 'first_factor'], message: `no directory named '${target}' in directories` });
      }
      if (kind === 'radius' && target !== undefined && !(target in cfg.upstreams)) {
        ctx.addIssue({ code: 'custom', path: ['policies', name, 'first_factor'], message: `no upstream named '${target}' in upstreams` });
      }
    }
    for (const [method, settings] of Object.entries(cfg.methods)) {
      if (settings === undefined) continue;
      settings.providers.forEach((provider, i) => {
        const defined = cfg.providers[provider];
        if (defined === undefined) {
          ctx.addIssue({ code: 'custom', path: ['methods', method, 'providers', i], message: `no provider named '${provider}' in providers` });
        } else if (!PROVIDER_CAPABILITIES[defined.type].methods.includes(method)) {
          ctx.addIssue({ code: 'custom', path: ['methods', method, 'providers', i], message: `provider '${provider}' (${defined.type}) cannot do ${method}` });
        } else if (defined.type === 'webhook' && !(defined.channels as readonly string[]).includes(method)) {
          ctx.addIssue({ code: 'custom', path: ['methods', method, 'providers', i], message: `webhook provider '${provider}' does not list ${method} in its channels` });
        }
      });
    }
    // Modes only Twilio implements: a reply to the SMS, a PIN keyed in on the call. Another provider
    // would silently do something weaker (Duo's call asks for no PIN).
    const twilioOnly = (method: 'sms' | 'phone', why: string): void => {
      cfg.methods[method]?.providers.forEach((provider, i) => {
        const type = cfg.providers[provider]?.type;
        if (type !== undefined && type !== 'twilio') ctx.addIssue({ code: 'custom', path: ['methods', method, 'providers', i], message: `${why} needs a twilio provider, not ${type}` });
      });
    };
    if (cfg.methods.sms?.mode === 'two_way') twilioOnly('sms', 'mode two_way');
    if (cfg.methods.phone?.mode === 'pin') twilioOnly('phone', 'mode pin');
    for (const [name, policy] of Object.entries(cfg.policies)) {
      policy.methods.forEach((method, i) => {
        if (method !== 'totp' && method !== 'hotp' && cfg.methods[method] === undefined) {
          ctx.addIssue({ code: 'custom', path: ['policies', name, 'methods', i], message: `method '${method}' needs methods.${method}.providers` });
        }
      });
    }
    // Providers that call the gateway back (call keypresses, push buttons, SMS replies) need the listener and its public URL.
    const callbacks = Object.entries(cfg.providers).some(([, p]) => p.type === 'twilio' || p.type === 'ntfy');
    if (callbacks && (cfg.http.listen.length === 0 || cfg.http.public_url === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['http'], message: 'twilio and ntfy providers call the gateway back: set http.listen and http.public_url' });
    }
    if (cfg.http.listen.length > 0 && cfg.http.tls === undefined && !cfg.http.insecure) {
      ctx.addIssue({ code: 'custom', path: ['http', 'tls'], message: 'set tls.cert_file and tls.key_file, or insecure: true behind a TLS-terminating proxy' });
    }
    for (const [name, p] of Object.entries(cfg.providers)) {
      if (p.type === 'smtp' && p.tls === 'none' && !p.insecure) {
        ctx.addIssue({ code: 'custom', path: ['providers', name, 'tls'], message: "tls: none sends codes in clear text; use starttls or implicit, or insecure: true" });
      }
    }
    if (cfg.fraud.notify.length > 0 && !Object.values(cfg.providers).some((p) => p.type === 'smtp')) {
      ctx.addIssue({ code: 'custom', path: ['fraud', 'notify'], message: 'mailing admins needs an smtp provider in providers' });
    }
    for (const [name, dir] of Object.entries(cfg.directories)) {
      dir.urls.forEach((url, i) => {
        if (url.startsWith('ldap://') && !dir.start_tls && !dir.insecure) {
          ctx.addIssue({
            code: 'custom',
            path: ['directories', name, 'urls', i],
            message: 'ldap:// without start_tls sends passwords in clear text; use ldaps://, start_tls: true, or insecure: true',
          });
        }
      });
    }
  });

export type RawConfig = z.infer<typeof configSchema>;
