import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANCHOR_RECEIVE_BUFFER_BYTES, anchorPassword, anchorUser, makePacketFiles, radclientLoad, startAnchor, udpRcvbufErrors } from './anchor-freeradius.js';
import type { LoadResult } from './anchor-freeradius.js';
import { closedLoop } from './latency-client.js';
import type { ClosedLoopResult } from './latency-client.js';
import { freeradiusVersion, machine, median, ms, rate, summaryLine, waitForQuiet } from './report.js';
import type { Quiet } from './report.js';

/**
 * FreeRADIUS alone, through both load views of BENCHMARKS.md, to prove the anchor works before
 * the gateway rows are added beside it:
 *   node --import=tsx bench/freeradius-self.ts
 * Environment: BENCH_USERS (20000), BENCH_PER_FILE (5000), BENCH_RUNS (3), BENCH_QUIET_WAIT_MS (30000),
 * BENCH_RECV_BUFF=default.
 */

const USERS = Number(process.env.BENCH_USERS ?? 20000);
const PER_FILE = Number(process.env.BENCH_PER_FILE ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT_MS ?? 30000);
/** BENCH_RECV_BUFF=default: FreeRADIUS with the kernel's default receive buffer instead of 8 MiB. */
const KERNEL_RECV_BUFF = process.env.BENCH_RECV_BUFF === 'default';

/** Per view: the runs that started on a busy machine (BENCHMARKS.md: say so). */
const noisy = new Map<string, string[]>();

async function quietly<T>(view: string, run: number, fn: () => Promise<T>): Promise<T> {
  const quiet: Quiet = await waitForQuiet(5, QUIET_WAIT_MS);
  if (!quiet.quiet) {
    const notes = noisy.get(view) ?? [];
    notes.push(`run ${run} started with the machine ${quiet.busyPct.toFixed(0)}% busy`);
    noisy.set(view, notes);
  }
  return fn();
}

async function main(): Promise<void> {
  const version = freeradiusVersion();
  process.stderr.write(`starting FreeRADIUS ${version} with ${USERS} users…\n`);
  const anchor = await startAnchor(USERS, KERNEL_RECV_BUFF ? { receiveBufferBytes: null } : {});
  const recvBuff = KERNEL_RECV_BUFF ? 'kernel default recv_buff' : `recv_buff ${ANCHOR_RECEIVE_BUFFER_BYTES >> 20} MiB`;
  try {
    const files = makePacketFiles(USERS, PER_FILE);
    const target = { host: anchor.host, port: anchor.port, secret: anchor.secret };
    const request = (i: number): { user: string; password: string } => {
      const n = (i % USERS) + 1;
      return { user: anchorUser(n), password: anchorPassword(n) };
    };

    // Unmeasured warm-up: thread pool spun up, users file paged in, caches warm.
    const firstFile = files[0];
    if (firstFile !== undefined) await radclientLoad({ ...target, files: [firstFile], parallel: 250 });
    await closedLoop({ ...target, concurrency: 20, requests: Math.min(USERS, 5000), request });

    // View 1: radclient -p 250, files of PER_FILE one after another.
    const radclientRuns: Array<LoadResult & { rcvbufErrors: number }> = [];
    for (let run = 1; run <= RUNS; run++) {
      const result = await quietly('radclient', run, async () => {
        const before = udpRcvbufErrors();
        const load = await radclientLoad({ ...target, files, parallel: 250 });
        return { ...load, rcvbufErrors: udpRcvbufErrors() - before };
      });
      process.stderr.write(`radclient run ${run}: ${rate(result.reqPerSec)}, lost ${result.lost}, RcvbufErrors +${result.rcvbufErrors}\n`);
      radclientRuns.push(result);
    }

    // View 2: our closed-loop client at 1 and 20 in flight.
    const closed: Record<string, ClosedLoopResult[]> = { '1': [], '20': [] };
    for (const concurrency of [1, 20]) {
      for (let run = 1; run <= RUNS; run++) {
        const result = await quietly(`c=${concurrency}`, run, () =>
          closedLoop({ ...target, concurrency, requests: USERS, request }),
        );
        process.stderr.write(`closed loop c=${concurrency} run ${run}: ${rate(result.reqPerSec)}, p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}, lost ${result.lost}\n`);
        closed[String(concurrency)]?.push(result);
      }
    }

    const radclientMedian = median(radclientRuns.map((r) => r.reqPerSec));
    const lost = radclientRuns.reduce((n, r) => n + r.lost, 0);
    const rcvbuf = radclientRuns.reduce((n, r) => n + r.rcvbufErrors, 0);
    const rejected = radclientRuns.reduce((n, r) => n + r.rejected, 0);
    const lines = [
      summaryLine({
        what: `freeradius-self radclient -p 250 (${files.length} files × ${PER_FILE}, ${USERS} users, ${recvBuff})`,
        anchor: `FreeRADIUS ${version} PAP ${rate(radclientMedian)} (median of ${RUNS}: ${radclientRuns.map((r) => rate(r.reqPerSec)).join(', ')}; rejected ${rejected}, lost ${lost}, Udp RcvbufErrors +${rcvbuf})`,
        notes: noisy.get('radclient') ?? [],
      }),
    ];
    for (const concurrency of ['1', '20']) {
      const runs = closed[concurrency] ?? [];
      lines.push(
        summaryLine({
          what: `freeradius-self closed loop, ${concurrency} in flight (${USERS} requests, distinct users, ${recvBuff})`,
          anchor: `FreeRADIUS ${version} PAP ${rate(median(runs.map((r) => r.reqPerSec)))}, p50 ${ms(median(runs.map((r) => r.p50Ms)))}, p99 ${ms(median(runs.map((r) => r.p99Ms)))} (median of ${RUNS}; lost ${runs.reduce((n, r) => n + r.lost, 0)})`,
          notes: noisy.get(`c=${concurrency}`) ?? [],
        }),
      );
    }
    for (const line of lines) process.stdout.write(`${line}\n`);

    const resultsDir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(
      join(resultsDir, 'freeradius-self.json'),
      JSON.stringify({ at: new Date().toISOString(), machine: machine(), freeradius: version, users: USERS, perFile: PER_FILE, radclientRuns, closed, noisy: Object.fromEntries(noisy), lines }, null, 2),
    );
  } finally {
    await anchor.stop();
  }
}

await main();
