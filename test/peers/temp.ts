import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onProcessEnd, watchTempDir } from './process-reaper.js';

/**
 * Private temp directories (mode 0700) for peers, configs and packet files. Whatever a test
 * does not clean up itself is removed when the process exits; MFA_KEEP_TEMP=1 keeps everything
 * for a post-mortem (the paths are in the peers' error messages).
 */

export interface TempDir {
  readonly path: string;
  cleanup(): void;
}

const live = new Set<string>();
let hookInstalled = false;

export function tempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), `mfa-${prefix.replace(/[^A-Za-z0-9_.-]/g, '_')}-`));
  live.add(path);
  watchTempDir(path);
  if (!hookInstalled) {
    hookInstalled = true;
    onProcessEnd(() => {
      for (const dir of live) removeDir(dir);
      live.clear();
    });
  }
  return {
    path,
    cleanup() {
      live.delete(path);
      removeDir(path);
    },
  };
}

function removeDir(path: string): void {
  if (process.env.MFA_KEEP_TEMP === '1') return;
  rmSync(path, { recursive: true, force: true });
}
