import { StoreError } from '../errors.js';
import type { Logger } from '../log.js';
import { openSqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** The `store` section of the configuration, as far as opening a store needs it. */
export type StoreSettings =
  | { readonly engine: 'sqlite'; readonly sqlite: { readonly path: string; readonly fsync_before_reply?: boolean } }
  | { readonly engine: 'postgres' };

export interface OpenStoreOptions {
  /** Open for reading only (audit verify/export); writes throw StoreReadOnlyError. */
  readonly readonly?: boolean;
}

/** Opens the configured engine. Nothing outside src/store/ names an engine. */
export function openStore(config: StoreSettings, logger?: Logger, options: OpenStoreOptions = {}): Promise<Store> {
  switch (config.engine) {
    case 'sqlite':
      return openSqliteStore({
        path: config.sqlite.path,
        ...(config.sqlite.fsync_before_reply === undefined ? {} : { fsyncBeforeReply: config.sqlite.fsync_before_reply }),
        ...(logger !== undefined ? { logger } : {}),
        ...(options.readonly !== undefined ? { readonly: options.readonly } : {}),
      });
    case 'postgres':
      return Promise.reject(new StoreError('the postgres store engine is not available in this build'));
    default: {
      const engine: never = config;
      return Promise.reject(new StoreError(`unknown store engine ${String((engine as { engine: unknown }).engine)}`));
    }
  }
}
