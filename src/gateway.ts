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
    this.firstFactors = new FirstFactorRegistry(log.child({ module: 'directory' }));
    this.firstFactors.apply(initial);
    const flow = new AuthFlow({ store, keys, log: log.child({ module: 'auth' }), config, firstFactors: this.firstFactors });
    this.sync = new DirectorySync({ store, directories: Object.values(initial.directories), log });
    this.radius = new RadiusServer({ flow, store, log, config });
  }

  static async start(config: GatewayConfig, log: Logger): Promise<Gateway> {
    const releaseLock = await acquireLiveLock(config.store.sqlite.path);
    let store: Store | undefined;
    try {
      const opened = await openStore(config.store, log.child({ module: 'store' }));
      store = opened;
      const gateway = new Gateway(config, opened, log, releaseLock);
      await gateway.radius.start();
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

  get counters(): RadiusServer['counters'] {
    return this.radius.counters;
  }

  /**
   * Re-reads the config file. Clients and policies change at once for new attempts; listeners,
   * the store and keys need a restart (said in the log when they differ).
   */
  async reload(): Promise<void> {
    const { config, generated } = await loadConfig(this.config.file);
    const needsRestart: string[] = [];
    if (JSON.stringify(config.radius.listen) !== JSON.stringify(this.config.radius.listen)) needsRestart.push('radius.listen');
    if (JSON.stringify(config.radius.accounting_listen) !== JSON.stringify(this.config.radius.accounting_listen)) needsRestart.push('radius.accounting_listen');
    if (config.store.sqlite.path !== this.config.store.sqlite.path) needsRestart.push('store');
    if (!config.masterKey.equals(this.config.masterKey)) needsRestart.push('keys.master_key');
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
      const left = await this.radius.drain(DRAIN_TIMEOUT_MS);
      if (left > 0) this.log.warn({ left }, 'attempts still in flight after the drain timeout');
      if (this.pruneTimer) clearInterval(this.pruneTimer);
      await this.radius.close();
      await this.sync.stop();
      await this.syncRetiring;
      await this.firstFactors.close();
      await this.store.close();
      this.releaseLock();
    })();
    return this.stopping;
  }
}
