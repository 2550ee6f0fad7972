import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { DirectoryUserData, UserIndexStats } from '../src/store/types.js';
import { gatewayConfig, startGateway } from '../test/peers/gateway.js';
import { freePort } from '../test/peers/ports.js';
import { tempDir } from '../test/peers/temp.js';
import { closedLoop } from './latency-client.js';
import { summaryLine } from './report.js';

/**
 * BENCHMARKS.md, "Directory and memory": the RSS of a gateway whose store holds N synced
 * directory users, minus the RSS of the same gateway with none, each after the same few thousand
 * logins (unknown users on a `none` first factor: a user lookup each). The gateway keeps users in
 * its SQLite store and finds them through its indexes; what stays in memory is SQLite's page
 * cache, not a copy of every user. RSS is read from /proc/PID/status after 2 s idle (the
 * gateway has no forced-GC hook; V8's heap barely moves here).
 */

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

async function gatewayRss(users: number): Promise<{ rssKb: number; loginsPerSec: number; storeMb: number; index: UserIndexStats }> {
  const dir = tempDir('bench-user-memory-');
  try {
    const dataDir = join(dir.path, 'data');
    const dbPath = join(dataDir, 'gateway.db');
    const store = await openSqliteStore({ path: dbPath });
    const PAGE = 20_000;
    for (let first = 0; first < users; first += PAGE) {
      const batch: DirectoryUserData[] = [];
      for (let i = first; i < Math.min(users, first + PAGE); i++) {
        batch.push({
          externalId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
          dn: `uid=u${String(i).padStart(7, '0')},ou=people,dc=example,dc=test`,
          username: `u${String(i).padStart(7, '0')}`,
          upn: `u${String(i).padStart(7, '0')}@example.test`,
          firstName: 'Given',
          lastName: `Family${i}`,
          email: `u${i}@example.test`,
          phone: `+1 555 ${String(i).padStart(7, '0')}`,
          mobile: null,
          defaultMethod: 'totp',
          language: 'en',
          enabled: true,
        });
      }
      await store.upsertDirectoryUsers('directory:corp', batch, { item: 'all', now: Date.now() });
    }
    // What the gateway builds at start, built here once more to report its size and load time.
    const index = await store.indexUserNames();
    await store.close();
    const storeMb = users === 0 ? 0 : Number((readFileSync(dbPath).length / 2 ** 20).toFixed(0));
    const radiusPort = await freePort('udp');
    const gw = await startGateway({
      dir: dir.path,
      configYaml: gatewayConfig({ radiusPort, acctPort: await freePort('udp'), dataDir, firstFactor: 'none', logLevel: 'warn', unenrolled: 'allow' }),
    });
    try {
      const loop = await closedLoop({
        host: '127.0.0.1',
        port: radiusPort,
        secret: gw.secret(),
        concurrency: 20,
        requests: 5000,
        // Spread over the whole user range (users without a token, `unenrolled: allow`): every lookup a different page.
        request: (i) => ({ user: `u${String(users === 0 ? i : (i * 7919) % users).padStart(7, '0')}`, password: '123456' }),
      });
      await sleep(2000);
      return { rssKb: rssKb(gw.pid), loginsPerSec: loop.reqPerSec, storeMb, index };
    } finally {
      await gw.stop();
    }
  } finally {
    dir.cleanup();
  }
}

export async function userMemoryBench(users: number): Promise<string[]> {
  process.stderr.write(`user memory: a store of ${users} synced users…\n`);
  const empty = await gatewayRss(0);
  const full = await gatewayRss(users);
  const addedMb = (full.rssKb - empty.rssKb) / 1024;
  return [
    summaryLine({
      what: `gateway RSS holding ${users.toLocaleString('en-US')} synced users (store ${full.storeMb} MiB on disk), after 5 000 logins spread over them`,
      gateway: `${(full.rssKb / 1024).toFixed(0)} MiB (+${addedMb.toFixed(0)} MiB over an empty store), ${full.loginsPerSec.toFixed(0)} logins/s`,
      anchor: `same gateway, no users: ${(empty.rssKb / 1024).toFixed(0)} MiB`,
      notes: [
        `goal < 400 MB added: ${addedMb < 400 ? 'met' : 'NOT met'}`,
        `users found by name through the in-memory name index: ${full.index.names.toLocaleString('en-US')} names in ${(full.index.bytes / 2 ** 20).toFixed(0)} MiB (${(full.index.bytes / Math.max(1, users)).toFixed(1)} bytes per user), loaded in ${full.index.ms.toFixed(0)} ms; the user read from SQLite by row`,
      ],
    }),
  ];
}
