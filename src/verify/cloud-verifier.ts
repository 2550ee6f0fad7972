import { ProviderRejectedError, ProviderUnavailableError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { PendingApprovals } from './pending-approvals.js';
import type { Provider } from './providers/provider.js';

/**
 * The cloud client as the flow sees it: the running providers by name, the ordered failover over
 * a method's provider list, and the pushes and calls in progress. Which provider is tried for
 * what is the configuration's `methods.<method>.providers`; this only walks the list.
 */

export interface ProviderAttemptFailure {
  readonly provider: string;
  readonly code: string;
  readonly message: string;
}

export class CloudVerifier {
  readonly approvals = new PendingApprovals();

  constructor(
    private readonly providers: ReadonlyMap<string, Provider>,
    private readonly log: Logger,
  ) {}

  get(name: string): Provider | undefined {
    return this.providers.get(name);
  }

  /** Providers of a type, in configuration order (the smtp one that mails admins, say). */
  ofType(type: Provider['type']): Provider[] {
    return [...this.providers.values()].filter((p) => p.type === type);
  }

  /**
   * Runs `fn` for each target (a provider name, with what that provider needs: a device, a
   * number) in order until one succeeds. A provider that is down (ProviderUnavailableError) or
   * refuses (ProviderRejectedError) hands over to the next. When all failed:
   * ProviderUnavailableError if any was down (the fail mode decides), else ProviderRejectedError
   * (nothing could deliver: a bad number, say).
   */
  async firstThatWorks<T, Target extends { readonly provider: string }>(
    targets: readonly Target[],
    attemptId: string,
    fn: (provider: Provider, target: Target) => Promise<T> | undefined,
  ): Promise<{ provider: Provider; target: Target; value: T }> {
    const failures: ProviderAttemptFailure[] = [];
    for (const target of targets) {
      const provider = this.providers.get(target.provider);
      if (provider === undefined) continue;
      const pending = fn(provider, target);
      if (pending === undefined) continue;
      try {
        return { provider, target, value: await pending };
      } catch (err) {
        if (!(err instanceof ProviderUnavailableError) && !(err instanceof ProviderRejectedError)) throw err;
        failures.push({ provider: provider.name, code: err.code, message: err.message });
        this.log.warn({ attemptId, provider: provider.name, errorCode: err.code, err: err.message }, 'provider failed, trying the next');
      }
    }
    // Nothing tried (no running provider can do it: a configuration matter) is no outage: it must
    // never become fail_mode safe's accept.
    if (failures.length === 0) throw new ProviderRejectedError('no running provider can do this');
    const summary = failures.map((f) => `${f.provider}: ${f.message}`).join('; ');
    if (failures.some((f) => f.code === 'GW_ERR_PROVIDER_UNAVAILABLE')) throw new ProviderUnavailableError(summary);
    throw new ProviderRejectedError(summary);
  }

  async close(): Promise<void> {
    this.approvals.abortAll();
    for (const provider of this.providers.values()) {
      await provider.close().catch((err: unknown) => this.log.warn({ provider: provider.name, err: errorMessage(err) }, 'provider close failed'));
    }
  }
}
