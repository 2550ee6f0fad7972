import type { ClientConfig, PolicyConfig, RawConfig } from './schema.js';

/** A RADIUS client after its secret reference was resolved. */
export interface ResolvedClient extends Omit<ClientConfig, 'secret'> {
  readonly secret: Buffer;
}

/**
 * The validated, resolved and frozen configuration that modules receive. Paths are absolute,
 * secret references resolved to bytes; nothing downstream reads YAML or process.env.
 */
export interface GatewayConfig {
  /** Absolute path of the file this was loaded from. */
  readonly file: string;
  readonly gatewayName: string;
  readonly dataDir: string;
  readonly masterKey: Buffer;
  readonly store: { readonly engine: 'sqlite'; readonly sqlite: { readonly path: string } };
  readonly log: RawConfig['log'];
  readonly radius: RawConfig['radius'];
  readonly clients: readonly ResolvedClient[];
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
