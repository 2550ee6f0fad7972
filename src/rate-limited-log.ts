import type { Logger } from './log.js';

/** The default budget: enough lines to show what is happening, then only a count. */
export const LINES_PER_MINUTE = 10;

/**
 * At most `perMinute` lines per key per minute, then one line saying how many were suppressed:
 * a flood of bad packets, or of requests that all fail the same way, must not become a flood of
 * log lines.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    this.line('warn', key, obj, msg);
  }

  error(key: string, obj: Record<string, unknown>, msg: string): void {
    this.line('error', key, obj, msg);
  }

  private line(level: 'warn' | 'error', key: string, obj: Record<string, unknown>, msg: string): void {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= 60_000) {
      // `kind`, not `key`: the logger redacts every field named key.
      if (w && w.suppressed > 0) this.log[level]({ kind: key, suppressed: w.suppressed }, `${msg} (suppressed lines in the last minute)`);
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.count < this.perMinute) {
      w.count++;
      this.log[level](obj, msg);
    } else {
      w.suppressed++;
    }
  }
}
