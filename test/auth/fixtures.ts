import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TOTP, Secret } from 'otpauth';
import type { AuthAttempt } from '../../src/auth/attempt.js';
import { AuthFlow } from '../../src/auth/flow.js';
import type { GatewayConfig, ResolvedProvider } from '../../src/config/config.js';
import type { CloudVerifier } from '../../src/verify/cloud-verifier.js';
import { configSchema } from '../../src/config/schema.js';
import { DataKeys } from '../../src/crypto/keys.js';
import { hashPassword } from '../../src/crypto/password-hash.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import type { User } from '../../src/store/types.js';
import type { FirstFactorTargets } from '../../src/auth/first-factor-target.js';
import { enrolOathToken } from '../../src/verify/oath.js';

/** A GatewayConfig as the loader would produce it, from a partial raw (snake_case) config. */
export function testConfig(raw: Record<string, unknown> = {}, dataDir = '/nonexistent'): GatewayConfig {
  const parsed = configSchema.parse({
    clients: [
      { name: 'vpn', addresses: ['127.0.0.1'], secret: { env: 'UNUSED' } },
      { name: 'rdgw', addresses: ['127.0.0.2'], secret: { env: 'UNUSED' }, policy: 'nps', challenge: false },
    ],
    policies: { default: {}, nps: { first_factor: 'none' } },
    ...raw,
  });
  return {
    file: path.join(dataDir, 'gateway.yaml'),
    gatewayName: 'gw-test',
    dataDir,
    masterKey: randomBytes(32),
    store: { engine: 'sqlite', sqlite: { path: path.join(dataDir, 'gateway.db'), fsync_before_reply: true } },
    log: parsed.log,
    radius: parsed.radius,
    clients: parsed.clients.map((c) => ({ ...c, secret: Buffer.from('0123456789abcdef') })),
    directories: {},
    upstreams: {},
    // Secrets are not needed by the flow: every provider a test uses is a test double.
    providers: Object.fromEntries(Object.entries(parsed.providers).map(([name, p]) => [name, { ...p, name, ca: undefined } as unknown as ResolvedProvider])),
    methods: parsed.methods,
    http: { ...parsed.http, tls: undefined },
    fraud: parsed.fraud,
    policies: parsed.policies,
    challenge: parsed.challenge,
    lockout: parsed.lockout,
    totp: parsed.totp,
    hotp: parsed.hotp,
  };
}

export interface FlowHarness {
  readonly flow: AuthFlow;
  readonly store: Store;
  readonly keys: DataKeys;
  config: GatewayConfig;
  /** The flow's clock (epoch ms); tests move it. */
  now: number;
  addUser(name: string, opts?: { password?: string; upn?: string; totp?: boolean; hotp?: boolean }): Promise<{ user: User; secret: string }>;
  code(secretBase32: string, at?: number): string;
  attempt(fields: Partial<AuthAttempt> & { username: string }): AuthAttempt;
  cleanup(): Promise<void>;
}

export const SEED = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

export async function flowHarness(
  raw: Record<string, unknown> = {},
  wrapStore?: (s: Store) => Store,
  firstFactors?: FirstFactorTargets,
  verifier?: CloudVerifier,
  log: Logger = silentLogger(),
): Promise<FlowHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mfa-flow-'));
  const config = testConfig(raw, dir);
  const realStore = await openSqliteStore({ path: config.store.sqlite.path });
  const store = wrapStore ? wrapStore(realStore) : realStore;
  const keys = new DataKeys(config.masterKey);
  const h: FlowHarness = {
    config,
    now: Date.parse('2026-11-25T10:00:10Z'),
    store,
    keys,
    flow: undefined as unknown as AuthFlow,
    async addUser(name, opts = {}) {
      const user = await realStore.createUser({
        username: name,
        passwordHash: opts.password === undefined ? null : await hashPassword(opts.password, { log2N: 10, r: 8, p: 1 }),
        ...(opts.upn === undefined ? {} : { upn: opts.upn }),
        firstName: 'First',
        lastName: 'Last',
        email: `${name}@example.test`,
      });
      if (opts.totp !== false) await enrolOathToken(realStore, keys, user, { issuer: 'test', secretBase32: SEED, kind: opts.hotp ? 'hotp' : 'totp' });
      return { user, secret: SEED };
    },
    code(secret, at = h.now) {
      return new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: at });
    },
    attempt(fields) {
      return {
        id: randomUUID(),
        protocol: 'radius',
        client: { name: 'vpn', ip: '127.0.0.1' },
        password: undefined,
        state: undefined,
        response: undefined,
        nas: { identifier: 'nas-1', ipAddress: '127.0.0.1', callingStationId: '198.51.100.7', calledStationId: null },
        localAddress: '127.0.0.1',
        receivedAt: h.now,
        ...fields,
      };
    },
    async cleanup() {
      await realStore.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  (h as { flow: AuthFlow }).flow = new AuthFlow({
    store,
    keys,
    log,
    config: () => h.config,
    now: () => h.now,
    ...(firstFactors === undefined ? {} : { firstFactors }),
    ...(verifier === undefined ? {} : { verifier }),
  });
  return h;
}

/** The audit records written so far, in order. */
export async function auditRecords(store: Store): Promise<Array<{ result: string; reason: string; method: string | null; firstFactor: string | null; username: string; userId: string | null }>> {
  const out = [];
  for await (const r of store.queryAudit()) out.push(r);
  return out;
}
