import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { directorySyncBench } from './directory-sync.js';
import { firstFactorBench } from './first-factor.js';
import { pendingPushesBench } from './pending-pushes.js';
import { gatewayCost } from './radius-gateway.js';
import { userMemoryBench } from './user-memory.js';
import { freeradiusVersion, machine } from './report.js';

/**
 * `npm run bench`: every benchmark beside its anchor, in one run (BENCHMARKS.md). One summary
 * line each on stdout; the lines and the machine also go to bench/results/latest.json.
 * Environment: BENCH_USERS (20000), BENCH_PER_FILE (5000), BENCH_RUNS (3), BENCH_CLOSED (5000),
 * BENCH_QUIET_WAIT_MS (30000), BENCH_FIRST_FACTOR_REQUESTS (5000),
 * BENCH_SYNC_USERS (100000), BENCH_SYNC_CHANGED (1000), BENCH_MEMORY_USERS (1000000), BENCH_GATEWAY_NODE_ARGS (Node.js options for the gateway of the gateway-cost and first-factor runs, e.g. to profile it),
 * BENCH_FSYNC_BEFORE_REPLY=0 (the gateway answers at commit, without waiting for the fsync).
 * BENCH_PUSHES (10000: logins waiting on a push at once).
 * BENCH_ONLY=gateway | pushes | first-factor | sync | memory: only that benchmark.
 */
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);

async function main(): Promise<void> {
  const started = new Date();
  const only = process.env.BENCH_ONLY;
  const fsync = process.env.BENCH_FSYNC_BEFORE_REPLY === '0' ? { fsyncBeforeReply: false } : {};
  const quietWaitMs = env('BENCH_QUIET_WAIT_MS', 30000);
  const nodeArgs = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const gatewayNodeArgs = nodeArgs.length > 0 ? { gatewayNodeArgs: nodeArgs } : {};
  /** The benchmarks in the order they run; BENCH_ONLY picks one. */
  const sections: Array<[string, () => Promise<string[]>]> = [
    [
      'gateway',
      () =>
        gatewayCost({
          users: env('BENCH_USERS', 20000),
          perFile: env('BENCH_PER_FILE', 5000),
          runs: env('BENCH_RUNS', 3),
          closedRequests: env('BENCH_CLOSED', 5000),
          quietWaitMs,
          ...gatewayNodeArgs,
          ...fsync,
        }),
    ],
    ['pushes', () => pendingPushesBench(env('BENCH_PUSHES', 10_000))],
    ['first-factor', () => firstFactorBench({ requests: env('BENCH_FIRST_FACTOR_REQUESTS', 5000), quietWaitMs, ...gatewayNodeArgs, ...fsync })],
    ['sync', () => directorySyncBench()],
    ['memory', () => userMemoryBench(env('BENCH_MEMORY_USERS', 1_000_000))],
  ];
  const lines: string[] = [];
  for (const [name, run] of sections) {
    if (only !== undefined && only !== name) continue;
    const more = await run();
    for (const line of more) process.stdout.write(`${line}\n`);
    lines.push(...more);
  }
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), JSON.stringify({ at: started.toISOString(), machine: machine(), freeradius: freeradiusVersion(), lines }, null, 2));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
