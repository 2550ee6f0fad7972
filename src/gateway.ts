import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { AuthFlow } from './auth/flow.js';
import type { GatewayConfig } from './config/config.js';
import { loadConfig } from './config/load.js';
import { DataKeys } from './crypto/keys.js';
import { errorMessage } from './errors.js';
import { DirectorySync } from './directory/sync/index.js';
import { FirstFactorRegistry } from './first-factors.js';
import type { Logger } from './log.js';
import { RadiusServer } from './radius/server.js';
import { acquireLiveLock } from './store/sqlite/live-lock.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { CallbackServer } from './verify/callback-server.js';
import { CallbackTokens } from './verify/callback-tokens.js';
import { CloudVerifier } from './verify/cloud-verifier.js';
import { createProvider } from './verify/providers/index.js';
import type { Provider } from './verify/providers/provider.js';

/** How long SIGTERM waits for attempts in flight before closing anyway. */
const DRAIN_TIMEOUT_MS = 30_000;
const PRUNE_INTERVAL_MS = 60_000;

/**
 * One running gateway: the store, the flow and the listeners, wired together, with the process
 * lifecycle (SIGHUP reload, SIGTERM drain).
 */
export class Gateway {
  private config: GatewayConfig;
  private readonly radius: RadiusServer;
  private readonly firstFactors: FirstFactorRegistry;
  private sync: DirectorySync;
  /** Syncs replaced by a reload, finishing a run in progress. */
  private syncRetiring: Promise<void> = Promise.resolve();
  private pruneTimer: NodeJS.Timeout | undefined;
  /** Provider callbacks (and later the portal); undefined when http.listen is empty. */
  private readonly http: CallbackServer | undefined;
  private readonly verifier: CloudVerifier | undefined;
  /** Event-loop delay since the last /health read: what a login waiting on a push feels. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private stopping: Promise<void> | undefined;

  private constructor(
    initial: GatewayConfig,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly releaseLock: () => void,
  ) {
    this.config = initial;
    const keys = new DataKeys(initial.masterKey);
    const config = (): GatewayConfig => this.config;
    this.firstFactors = new FirstFactorRegistry(log);
    this.firstFactors.apply(initial);
    if (initial.http.listen.length > 0) {
      this.loopDelay.enable();
      this.http = new CallbackServer({ http: initial.http, log: log.child({ module: 'http' }), health: () => this.health() });
    }
    if (Object.keys(initial.providers).length > 0) {
      const tokens = new CallbackTokens(keys, store);
      const providers = new Map<string, Provider>();
      for (const [name, settings] of Object.entries(initial.providers)) {
        const provider = createProvider(settings, { log, tokens, publicUrl: initial.http.public_url?.replace(/\/+$/, ''), now: Date.now });
        if (this.http !== undefined) provider.routes?.(this.http.routesFor(name));
        providers.set(name, provider);
      }
      this.verifier = new CloudVerifier(providers, log.child({ module: 'verify' }));
    }
    const flow = new AuthFlow({
      store,
      keys,
      log: log.child({ module: 'auth' }),
      config,
      firstFactors: this.firstFactors,
      ...(this.verifier === undefined ? {} : { verifier: this.verifier }),
    });
    this.sync = new DirectorySync({ store, directories: Object.values(initial.directories), log });
    this.radius = new RadiusServer({ flow, store, log, config });
  }

  static async start(config: GatewayConfig, log: Logger): Promise<Gateway> {
    const releaseLock = await acquireLiveLock(config.store.sqlite.path);
    let store: Store | undefined;
    try {
      const opened = await openStore(config.store, log);
      store = opened;
      // Before the first request: logins then find users by name in memory.
      const index = await opened.indexUserNames();
      log.info({ users: index.users, names: index.names, indexMiB: +(index.bytes / 1048576).toFixed(1), ms: Math.round(index.ms) }, 'user names indexed');
      const gateway = new Gateway(config, opened, log, releaseLock);
      try {
        await gateway.http?.start();
        await gateway.radius.start();
      } catch (err) {
        await gateway.http?.close().catch(() => undefined);
        await gateway.verifier?.close();
        throw err;
      }
      gateway.sync.start();
      gateway.pruneTimer = setInterval(() => {
        opened.prune(Date.now()).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'prune failed'));
      }, PRUNE_INTERVAL_MS);
      gateway.pruneTimer.unref();
      return gateway;
    } catch (err) {
      await store?.close().catch(() => undefined);
      releaseLock();
      throw err;
    }
  }

  addresses(): ReturnType<RadiusServer['addresses']> {
    return this.radius.addresses();
  }

  /** The HTTP listener's bound address, when one is configured. */
  httpAddresses(): { address: string; port: number }[] {
    return this.http?.addresses() ?? [];
  }

  /**
   * What GET /health adds: attempts and approvals in flight, memory, and the event-loop delay
   * since the previous read (p50/p99/max in ms; each read starts a new window).
   */
  private health(): Record<string, unknown> {
    const h = this.loopDelay;
    const toMs = (ns: number): number => Math.round(ns / 1e4) / 100;
    const delay = h.count === 0 ? null : { p50Ms: toMs(h.percentile(50)), p99Ms: toMs(h.percentile(99)), maxMs: toMs(h.max), samples: h.count };
    h.reset();
    return { pendingApprovals: this.pendingApprovals, rssBytes: process.memoryUsage.rss(), eventLoopDelay: delay };
  }

  /** Pushes and calls in progress (for the benchmark and health). */
  get pendingApprovals(): number {
    return this.verifier?.approvals.size ?? 0;
  }

  get counters(): RadiusServer['counters'] {
    return this.radius.counters;
  }

  /**
   * Re-reads the config file. Clients and policies change at once for new attempts; listeners,
   * the store and keys need a restart (said in the log when they differ).
   */
  async reload(): Promise<void> {
    const loaded = await loadConfig(this.config.file);
    const { generated } = loaded;
    let config = loaded.config;
    const needsRestart: string[] = [];
    if (JSON.stringify(config.radius.listen) !== JSON.stringify(this.config.radius.listen)) needsRestart.push('radius.listen');
    if (JSON.stringify(config.radius.accounting_listen) !== JSON.stringify(this.config.radius.accounting_listen)) needsRestart.push('radius.accounting_listen');
    if (config.store.sqlite.path !== this.config.store.sqlite.path) needsRestart.push('store');
    if (!config.masterKey.equals(this.config.masterKey)) needsRestart.push('keys.master_key');
    // Providers hold connection pools and callback routes: changed ones wait for a restart, and so
    // do the method settings that name them (a method must never point at a provider not running).
    if (JSON.stringify(config.providers) !== JSON.stringify(this.config.providers)) {
      needsRestart.push('providers', 'methods');
      config = Object.freeze({ ...config, providers: this.config.providers, methods: this.config.methods });
    }
    if (JSON.stringify(config.http) !== JSON.stringify(this.config.http)) needsRestart.push('http');
    this.firstFactors.apply(config);
    this.config = config;
    this.radius.reload();
    // Sync schedules follow the new directories; a run in progress finishes first (stop() waits for it too).
    const previous = this.sync;
    const next = new DirectorySync({ store: this.store, directories: Object.values(config.directories), log: this.log });
    this.sync = next;
    const retired = previous.stop().then(() => {
      if (this.sync === next && this.stopping === undefined) next.start();
    });
    this.syncRetiring = Promise.all([this.syncRetiring, retired]).then(() => undefined);
    for (const line of generated) this.log.warn({ notice: line }, 'generated on reload');
    this.log.info({ clients: config.clients.length, policies: Object.keys(config.policies), needsRestart }, 'configuration reloaded');
  }

  /** Drains attempts in flight, then closes listeners and the store. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      let left = await this.radius.drain(DRAIN_TIMEOUT_MS);
      if (left > 0 && this.verifier !== undefined && this.verifier.approvals.size > 0) {
        // Logins still waiting on a push or call end now (approval_timeout), audited and answered.
        this.verifier.approvals.abortAll();
        left = await this.radius.drain(5_000);
      }
      if (left > 0) this.log.warn({ left }, 'attempts still in flight after the drain timeout');
      if (this.pruneTimer) clearInterval(this.pruneTimer);
      await this.radius.close();
      await this.verifier?.close();
      await this.http?.close();
      this.loopDelay.disable();
      await this.sync.stop();
      await this.syncRetiring;
      await this.firstFactors.close();
      await this.store.close();
      this.releaseLock();
    })();
    return this.stopping;
  }
}
