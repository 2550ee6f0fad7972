import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';

/**
 * Runs a job per directory: first soon after start, then every interval, measured from the start
 * of the previous run; a run never overlaps the previous one of the same directory (a slow run
 * delays the next instead). Timers are unref'd: they never keep a process alive by themselves.
 */

export interface ScheduledJob {
  readonly name: string;
  readonly intervalMs: number;
  readonly run: () => Promise<unknown>;
}

export interface SchedulerOptions {
  /** Delay of every job's first run (default 15 s; spread by up to 5 s more so directories do not start together). */
  readonly firstRunDelayMs?: number;
  readonly log: Logger;
}

const DEFAULT_FIRST_RUN_DELAY_MS = 15_000;
const FIRST_RUN_SPREAD_MS = 5_000;

export class SyncScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Map<string, Promise<void>>();
  private stopped = true;

  constructor(
    private readonly jobs: readonly ScheduledJob[],
    private readonly opts: SchedulerOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const first = this.opts.firstRunDelayMs ?? DEFAULT_FIRST_RUN_DELAY_MS;
    this.jobs.forEach((job, i) => {
      const spread = this.jobs.length > 1 ? Math.round((FIRST_RUN_SPREAD_MS * i) / this.jobs.length) : 0;
      this.schedule(job, first + spread);
      this.opts.log.info({ directory: job.name, intervalMinutes: job.intervalMs / 60_000, firstRunInMs: first + spread }, 'directory sync scheduled');
    });
  }

  /** Clears the timers and waits for runs in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.running.values()]);
  }

  private schedule(job: ScheduledJob, delayMs: number): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(job.name);
      const started = Date.now();
      const run = job
        .run()
        .then(
          () => undefined,
          (err: unknown) => this.opts.log.error({ directory: job.name, err: errorMessage(err) }, 'scheduled directory sync failed'),
        )
        .finally(() => {
          this.running.delete(job.name);
          this.schedule(job, Math.max(0, started + job.intervalMs - Date.now()));
        });
      this.running.set(job.name, run);
    }, delayMs);
    timer.unref();
    this.timers.set(job.name, timer);
  }
}
