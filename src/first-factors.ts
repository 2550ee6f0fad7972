import type { FirstFactorTarget, FirstFactorTargets } from './auth/first-factor-target.js';
import type { GatewayConfig } from './config/config.js';
import { DirectoryFirstFactor } from './directory/first-factor.js';
import { errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { UpstreamFirstFactor } from './radius/upstream-first-factor.js';

/**
 * The directories and upstream RADIUS servers of the running configuration, by first-factor
 * name (`ldap:corp`, `radius:nps`). A reload keeps the targets whose settings did not change
 * (their pooled connections with them), starts new ones, and closes the replaced ones only after
 * the attempts that may still use them had time to finish.
 */
export class FirstFactorRegistry implements FirstFactorTargets {
  private targets = new Map<string, { target: FirstFactorTarget; fingerprint: string }>();
  /** This registry's own lines; each target binds its own `module` on `log` (one `module` per line). */
  private readonly own: Logger;

  constructor(
    private readonly log: Logger,
    private readonly retireAfterMs = 120_000,
  ) {
    this.own = log.child({ module: 'first-factors' });
  }

  get(name: string): FirstFactorTarget | undefined {
    return this.targets.get(name)?.target;
  }

  /** Brings the targets in line with `config`. */
  apply(config: GatewayConfig): void {
    const next = new Map<string, { target: FirstFactorTarget; fingerprint: string }>();
    const wanted: Array<[string, string, () => FirstFactorTarget]> = [
      ...Object.values(config.directories).map((d): [string, string, () => FirstFactorTarget] => [`ldap:${d.name}`, fingerprint(d), () => new DirectoryFirstFactor(d, this.log)]),
      ...Object.values(config.upstreams).map((u): [string, string, () => FirstFactorTarget] => [`radius:${u.name}`, fingerprint(u), () => new UpstreamFirstFactor(u, this.log)]),
    ];
    for (const [name, print, make] of wanted) {
      const current = this.targets.get(name);
      next.set(name, current !== undefined && current.fingerprint === print ? current : { target: make(), fingerprint: print });
    }
    const retired = [...this.targets].filter(([name, entry]) => next.get(name) !== entry).map(([, entry]) => entry.target);
    this.targets = next;
    if (retired.length > 0) {
      const timer = setTimeout(() => void this.closeAll(retired), this.retireAfterMs);
      timer.unref();
    }
  }

  async close(): Promise<void> {
    const all = [...this.targets.values()].map((e) => e.target);
    this.targets = new Map();
    await this.closeAll(all);
  }

  private async closeAll(targets: readonly FirstFactorTarget[]): Promise<void> {
    await Promise.all(
      targets.map((t) => t.close().catch((err: unknown) => this.own.warn({ target: t.name, err: errorMessage(err) }, 'closing a first-factor target failed'))),
    );
  }
}

/** Settings as comparable text (Buffers as hex); never logged, as it holds secrets. */
function fingerprint(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data).toString('hex') : v));
}
