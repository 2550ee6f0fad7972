import type { RadiusAttribute } from '../radius/codec/packet.js';
import type { DuoConfig, MethodsConfig, NtfyConfig, SmtpConfig, TwilioConfig, WebhookConfig } from './providers-schema.js';
import type { ClientConfig, DirectoryConfig, PolicyConfig, RawConfig, UpstreamConfig } from './schema.js';

/** A RADIUS client after its secret reference was resolved. */
export interface ResolvedClient extends Omit<ClientConfig, 'secret'> {
  readonly secret: Buffer;
}

/**
 * The validated, resolved and frozen configuration that modules receive. Paths are absolute,
 * secret references resolved to bytes; nothing downstream reads YAML or process.env.
 */
/** A directory with its service-account password read and its CA file loaded. */
export interface ResolvedDirectory extends Omit<DirectoryConfig, 'bind_password' | 'ca_file'> {
  readonly name: string;
  readonly bind_password: string;
  /** PEM bytes of ca_file, when set. */
  readonly ca: Buffer | undefined;
  /** reply_attributes with every attribute encoded at load, in the configured order (the first matching entry wins). */
  readonly encoded_reply_attributes?: readonly ReplyAttributeMapping[];
}

/** One `reply_attributes` entry, ready to send: the group as configured and its attributes' wire form. */
export interface ReplyAttributeMapping {
  /** A DN or a group name (cn / sAMAccountName), as written in the configuration. */
  readonly group: string;
  readonly attributes: readonly RadiusAttribute[];
}

export interface ResolvedUpstream extends Omit<UpstreamConfig, 'servers'> {
  readonly name: string;
  readonly servers: readonly { readonly address: string; readonly port: number; readonly secret: Buffer }[];
}

/** What every resolved provider has besides its own keys: its name and its CA file's PEM bytes. */
interface ProviderBase {
  readonly name: string;
  readonly ca: Buffer | undefined;
}

/** A provider with its secret references resolved to text (see PROVIDER_SECRET_KEYS). */
export type ResolvedProvider =
  | (Omit<TwilioConfig, 'auth_token' | 'ca_file'> & ProviderBase & { readonly auth_token: string })
  | (Omit<DuoConfig, 'secret_key' | 'ca_file'> & ProviderBase & { readonly secret_key: string })
  | (Omit<NtfyConfig, 'access_token' | 'ca_file'> & ProviderBase & { readonly access_token: string | undefined })
  | (Omit<WebhookConfig, 'secret' | 'ca_file'> & ProviderBase & { readonly secret: string })
  | (Omit<SmtpConfig, 'password' | 'ca_file'> & ProviderBase & { readonly password: string | undefined });

export interface ResolvedHttp extends Omit<RawConfig['http'], 'tls'> {
  /** PEM bytes of tls.cert_file and tls.key_file. */
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
}

export interface GatewayConfig {
  /** Absolute path of the file this was loaded from. */
  readonly file: string;
  readonly gatewayName: string;
  readonly dataDir: string;
  readonly masterKey: Buffer;
  readonly store: { readonly engine: 'sqlite'; readonly sqlite: { readonly path: string; readonly fsync_before_reply: boolean } };
  readonly log: RawConfig['log'];
  readonly radius: RawConfig['radius'];
  readonly clients: readonly ResolvedClient[];
  readonly directories: Readonly<Record<string, ResolvedDirectory>>;
  readonly upstreams: Readonly<Record<string, ResolvedUpstream>>;
  readonly providers: Readonly<Record<string, ResolvedProvider>>;
  readonly methods: MethodsConfig;
  readonly http: ResolvedHttp;
  readonly fraud: RawConfig['fraud'];
  readonly policies: Readonly<Record<string, PolicyConfig>>;
  readonly challenge: RawConfig['challenge'];
  readonly lockout: RawConfig['lockout'];
  readonly totp: RawConfig['totp'];
  readonly hotp: RawConfig['hotp'];
}

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Human-readable notices of secrets generated during this load ("generated the RADIUS secret for client 'local' in /…/radius-secret"). */
  readonly generated: readonly string[];
}
