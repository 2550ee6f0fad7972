import type { ResolvedProvider } from '../../config/config.js';
import { DuoProvider } from './duo.js';
import { NtfyProvider } from './ntfy.js';
import type { Provider, ProviderDeps } from './provider.js';
import { SmtpProvider } from './smtp.js';
import { TwilioProvider } from './twilio.js';
import { WebhookProvider } from './webhook.js';

/** Builds the provider a `providers.<name>` entry describes. */
export function createProvider(config: ResolvedProvider, deps: ProviderDeps): Provider {
  switch (config.type) {
    case 'twilio':
      return new TwilioProvider(config, deps);
    case 'duo':
      return new DuoProvider(config, deps);
    case 'ntfy':
      return new NtfyProvider(config, deps);
    case 'webhook':
      return new WebhookProvider(config, deps);
    case 'smtp':
      return new SmtpProvider(config, deps);
  }
}
