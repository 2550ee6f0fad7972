import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { GatewayConfig } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { DataKeys } from '../crypto/keys.js';
import { silentLogger } from '../log.js';
import { openStore } from '../store/open-store.js';
import type { Store } from '../store/store.js';

/** The package root: bin/, conf/ and src/ live under it. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `--config F`, else $MFA_GATEWAY_CONFIG, else the checkout's conf/gateway.yaml. */
export function configPath(option: string | undefined): string {
  return path.resolve(option ?? process.env.MFA_GATEWAY_CONFIG ?? path.join(PACKAGE_ROOT, 'conf', 'gateway.yaml'));
}

export interface CommandContext {
  readonly config: GatewayConfig;
  readonly store: Store;
  readonly keys: DataKeys;
}

/** Loads the config and opens the store (shared with a running gateway), runs `fn`, closes. */
export async function withStore<T>(configOption: string | undefined, fn: (ctx: CommandContext) => Promise<T>): Promise<T> {
  const { config, generated } = await loadConfig(configPath(configOption));
  for (const line of generated) process.stderr.write(`${line}\n`);
  const store = await openStore(config.store, silentLogger());
  try {
    return await fn({ config, store, keys: new DataKeys(config.masterKey) });
  } finally {
    await store.close();
  }
}

/** Reads a secret from stdin (first line), or prompts without echo on a terminal. */
export async function readSecret(prompt: string, fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const line = text.split(/\r?\n/)[0] ?? '';
    return line;
  }
  return promptHidden(prompt);
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const onData = (data: Buffer): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
