import type { ResolvedDirectory } from '../../config/config.js';
import { InvalidInputError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Store } from '../../store/store.js';
import { syncPlan, type SyncPlan } from './config.js';
import { runDirectorySync, type SyncReport } from './engine.js';
import { SyncScheduler } from './scheduler.js';

export type { SyncReport } from './engine.js';
export { syncPlan, type SyncPlan, type SyncItem } from './config.js';

/**
 * Directory sync, as Azure MFA Server's directory integration did it: the gateway keeps a local
 * copy of every in-scope directory user in its store, on a schedule per directory (a delta each
 * time, a full reconcile every full_every_hours), and on demand (`mfa-gateway sync run`).
 * Runs of one directory never overlap within a process: a second request waits for the first.
 */

export interface DirectorySyncOptions {
  readonly store: Store;
  readonly directories: readonly ResolvedDirectory[];
  readonly log: Logger;
  /** First scheduled run this long after start() (default 15 s). */
  readonly firstRunDelayMs?: number;
}

export interface SyncRunRequest {
  /** Only this directory (its `directories.<name>` key). */
  readonly directory?: string;
  /** Only this item (of the named directory, or of whichever directory has it). */
  readonly item?: string;
  /** Compare and count, change nothing. */
  readonly dryRun?: boolean;
  /** Remove users even beyond max_delete_percent. */
  readonly force?: boolean;
  /** A full run even where a delta would do. */
  readonly full?: boolean;
  /** Entries processed so far over the whole request, and an estimate of the total when known. */
  readonly onProgress?: (done: number, total?: number) => void;
}

export class DirectorySync {
  private readonly plans: readonly SyncPlan[];
  private readonly log: Logger;
  private readonly store: Store;
  private readonly busy = new Map<string, Promise<unknown>>();
  private readonly scheduler: SyncScheduler;

  constructor(opts: DirectorySyncOptions) {
    this.store = opts.store;
    this.log = opts.log.child({ module: 'directory-sync' });
    this.plans = opts.directories.map(syncPlan).filter((p): p is SyncPlan => p !== undefined);
    this.scheduler = new SyncScheduler(
      this.plans
        .filter((p) => p.settings.enabled)
        .map((p) => ({ name: p.name, intervalMs: p.settings.interval_minutes * 60_000, run: () => this.exclusive(p, {}) })),
      { log: this.log, ...(opts.firstRunDelayMs === undefined ? {} : { firstRunDelayMs: opts.firstRunDelayMs }) },
    );
  }

  /** Names of the directories that have a sync section. */
  get directoryNames(): string[] {
    return this.plans.map((p) => p.name);
  }

  /** Runs now; one report per item run. Throws InvalidInputError for an unknown directory or item. */
  async runOnce(opts: SyncRunRequest = {}): Promise<SyncReport[]> {
    const targets = this.select(opts.directory, opts.item);
    const reports: SyncReport[] = [];
    let before = 0;
    for (const plan of targets) {
      let last = 0;
      const onProgress = opts.onProgress === undefined ? undefined : (done: number, total?: number): void => {
        last = done;
        opts.onProgress?.(before + done, total === undefined ? undefined : before + total);
      };
      reports.push(
        ...(await this.exclusive(plan, {
          ...(opts.item === undefined ? {} : { item: opts.item }),
          ...(opts.dryRun === undefined ? {} : { dryRun: opts.dryRun }),
          ...(opts.force === undefined ? {} : { force: opts.force }),
          ...(opts.full === undefined ? {} : { full: opts.full }),
          ...(onProgress === undefined ? {} : { onProgress }),
        })),
      );
      before += last;
    }
    return reports;
  }

  /** Schedules every directory whose sync is enabled; the first run follows soon after. */
  start(): void {
    this.scheduler.start();
  }

  /** Stops scheduling and waits for runs in progress. */
  async stop(): Promise<void> {
    await this.scheduler.stop();
    await Promise.all([...this.busy.values()].map((p) => p.catch(() => undefined)));
  }

  private select(directory: string | undefined, item: string | undefined): SyncPlan[] {
    let plans = [...this.plans];
    if (directory !== undefined) {
      plans = plans.filter((p) => p.name === directory);
      if (plans.length === 0) throw new InvalidInputError(`no directory '${directory}' with a sync section (have: ${this.names()})`);
    }
    if (item !== undefined) {
      plans = plans.filter((p) => p.items.some((i) => i.name === item));
      if (plans.length === 0) throw new InvalidInputError(`no sync item '${item}'${directory === undefined ? '' : ` in directory '${directory}'`}`);
    }
    if (plans.length === 0) throw new InvalidInputError('no directory has a sync section');
    return plans;
  }

  private names(): string {
    return this.plans.length === 0 ? 'none' : this.plans.map((p) => p.name).join(', ');
  }

  /** One run of a directory at a time: a request for a busy directory waits for the run in progress. */
  private exclusive(plan: SyncPlan, opts: Parameters<typeof runDirectorySync>[3]): Promise<SyncReport[]> {
    const previous = this.busy.get(plan.name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => runDirectorySync(plan, this.store, this.log, opts));
    this.busy.set(plan.name, next);
    void next.finally(() => {
      if (this.busy.get(plan.name) === next) this.busy.delete(plan.name);
    }).catch(() => undefined);
    return next;
  }
}
