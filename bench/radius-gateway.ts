import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { DataKeys } from '../src/crypto/keys.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { DirectorySource } from '../src/store/types.js';
import { enrolOathToken } from '../src/verify/oath.js';
import { gatewayConfig, startGateway, type RunningGateway } from '../test/peers/gateway.js';
import { freePort } from '../test/peers/ports.js';
import { tempDir } from '../test/peers/temp.js';
import { makePacketFiles, radclientLoad, startAnchor, udpRcvbufErrors, type Anchor, type LoadResult } from './anchor-freeradius.js';
import { closedLoop, type ClosedLoopResult } from './latency-client.js';
import { DiskSyncProbe } from './disk-sync.js';
import { startNodeFloor, type NodeFloor } from './node-floor.js';
import { median, ms, processCpuMs, rate, stealMeter, stealNote, summaryLine, waitForQuiet } from './report.js';

/**
 * BENCHMARKS.md, RADIUS "gateway cost": the gateway with first factor `none` and an inline TOTP
 * code over N distinct enrolled users, beside FreeRADIUS 3.2 PAP from a users file with the same
 * N, loaded by the same radclient command in the same run; then the closed-loop view (1 and 20
 * in flight) against both.
 *
 * Each TOTP code may be used once per 30 s step, so runs use separate blocks of users: block 0
 * for the warm-up, blocks 1..RUNS for the radclient runs, and one block for the closed loops.
 */

export interface GatewayCostOptions {
  users: number;
  perFile: number;
  runs: number;
  closedRequests: number;
  quietWaitMs: number;
  /** Node.js options for the gateway process (BENCH_GATEWAY_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=DIR`). */
  gatewayNodeArgs?: string[];
  /** store.sqlite.fsync_before_reply of the gateway (BENCH_FSYNC_BEFORE_REPLY=0 to measure without the wait). */
  fsyncBeforeReply?: boolean;
}

const user = (i: number): string => `bench${String(i).padStart(6, '0')}`;
/** Distinct seed per user, derived so codes can be computed without keeping 100 k secrets around. */
const seedOf = (i: number): Secret => new Secret({ buffer: createHash('sha1').update(`bench-seed-${i}`).digest().buffer });
export const totpOf = (i: number): TOTP => new TOTP({ secret: seedOf(i) });

/**
 * Writes a master key into `dataDir` and enrols users 1..count (named by `name`) with the TOTP
 * seeds of seedOf, straight into the store: what `users add` + `tokens add-totp` would do, without
 * a process per user. With `synced`, the users are stored as a sync of that directory stores them
 * (source, entry id, entry DN) instead of as local users.
 */
export async function provision(
  dataDir: string,
  count: number,
  name: (i: number) => string = user,
  synced?: { source: DirectorySource; dn: (i: number) => string },
): Promise<void> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const masterKey = randomBytes(32);
  writeFileSync(join(dataDir, 'master.key'), masterKey.toString('hex'), { mode: 0o600 });
  const store = await openSqliteStore({ path: join(dataDir, 'gateway.db') });
  const keys = new DataKeys(masterKey);
  try {
    for (let i = 1; i <= count; i++) {
      if (synced !== undefined) {
        const profile = { upn: null, firstName: null, lastName: null, email: null, phone: null, mobile: null, defaultMethod: null, language: null };
        const entry = { ...profile, externalId: `bench-entry-${i}`, dn: synced.dn(i), username: name(i), enabled: true };
        await store.upsertDirectoryUsers(synced.source, [entry], { item: 'bench', now: Date.now() });
      }
      const u = (synced !== undefined ? await store.findUser(name(i)) : undefined) ?? (await store.createUser({ username: name(i) }));
      await enrolOathToken(store, keys, u, { issuer: 'bench', secretBase32: seedOf(i).base32 });
    }
  } finally {
    await store.close();
  }
}

interface Row {
  gateway: number[];
  anchor: number[];
  /** CPU time per request of each server process, microseconds, per run. */
  gatewayCpuUs: number[];
  anchorCpuUs: number[];
  gatewayLost: number;
  gatewayRejected: number;
  rcvbufErrors: number;
  /** The Node.js floor (node-floor.ts), req/s and CPU µs per request, per run. */
  floor: number[];
  floorCpuUs: number[];
  floorLost: number;
}

export async function gatewayCost(opts: GatewayCostOptions): Promise<string[]> {
  const block = opts.users;
  const closedBlock = 1 + opts.runs;
  const totalUsers = block * (opts.runs + 1) + opts.closedRequests * 2;
  const dir = tempDir('bench-gateway-');
  const lines: string[] = [];
  let gw: RunningGateway | undefined;
  let anchor: Anchor | undefined;
  let floor: NodeFloor | undefined;
  try {
    process.stderr.write(`provisioning ${totalUsers} users with TOTP…\n`);
    const t0 = performance.now();
    await provision(join(dir.path, 'data'), totalUsers);
    process.stderr.write(`provisioned in ${((performance.now() - t0) / 1000).toFixed(1)} s; starting the gateway and FreeRADIUS…\n`);
    const radiusPort = await freePort('udp');
    const acctPort = await freePort('udp');
    gw = await startGateway({
      dir: dir.path,
      configYaml: gatewayConfig({
        radiusPort,
        acctPort,
        dataDir: join(dir.path, 'data'),
        firstFactor: 'none',
        logLevel: 'warn',
        ...(opts.fsyncBeforeReply === undefined ? {} : { fsyncBeforeReply: opts.fsyncBeforeReply }),
      }),
      ...(opts.gatewayNodeArgs === undefined ? {} : { nodeArgs: opts.gatewayNodeArgs }),
    });
    const gwTarget = { host: '127.0.0.1', port: radiusPort, secret: gw.secret() };
    anchor = await startAnchor(block);
    const anchorTarget = { host: anchor.host, port: anchor.port, secret: anchor.secret };
    floor = await startNodeFloor(block);
    const floorTarget = { host: floor.host, port: floor.port, secret: floor.secret };

    // Packet files are written just before each run, so every code is the current one.
    const gatewayFiles = (first: number): string[] =>
      makePacketFiles(block, opts.perFile, (i) => totpOf(first + i - 1).generate(), (i) => user(first + i - 1));
    const anchorFiles = makePacketFiles(block, opts.perFile);

    // Unmeasured warm-up of both (JIT, page cache, thread pools).
    await radclientLoad({ ...gwTarget, files: gatewayFiles(1).slice(0, 1), parallel: 250 });
    await radclientLoad({ ...anchorTarget, files: anchorFiles.slice(0, 1), parallel: 250 });
    await radclientLoad({ ...floorTarget, files: anchorFiles.slice(0, 1), parallel: 250 });

    const row: Row = { gateway: [], anchor: [], gatewayCpuUs: [], anchorCpuUs: [], gatewayLost: 0, gatewayRejected: 0, rcvbufErrors: 0, floor: [], floorCpuUs: [], floorLost: 0 };
    const gatewayPid = gw.pid;
    const anchorPid = anchor.server.pid;
    /** Runs `load` and returns what it returned with the CPU microseconds per request `pid` spent on it. */
    const measured = async (pid: number, load: () => Promise<LoadResult>): Promise<[LoadResult, number]> => {
      const before = processCpuMs(pid);
      const result = await load();
      return [result, ((processCpuMs(pid) - before) * 1000) / Math.max(1, result.requests)];
    };
    const busy: string[] = [];
    /** Steal over the measured runs only (the quiet waits between them add idle time, which steals nothing). */
    let stealPct = 0;
    for (let run = 1; run <= opts.runs; run++) {
      const quiet = await waitForQuiet(5, opts.quietWaitMs);
      if (!quiet.quiet) busy.push(`run ${run} began ${quiet.busyPct.toFixed(0)}% busy`);
      const before = udpRcvbufErrors();
      const files = gatewayFiles(block * run + 1);
      const steal = stealMeter();
      const [g, gCpu] = await measured(gatewayPid, () => radclientLoad({ ...gwTarget, files, parallel: 250 }));
      const [a, aCpu] = await measured(anchorPid, () => radclientLoad({ ...anchorTarget, files: anchorFiles, parallel: 250 }));
      const [f, fCpu] = await measured(floor.pid, () => radclientLoad({ ...floorTarget, files: anchorFiles, parallel: 250 }));
      row.floor.push(f.reqPerSec);
      row.floorCpuUs.push(fCpu);
      row.floorLost += f.lost + f.rejected;
      stealPct = Math.max(stealPct, steal());
      row.gatewayCpuUs.push(gCpu);
      row.anchorCpuUs.push(aCpu);
      row.rcvbufErrors += udpRcvbufErrors() - before;
      row.gateway.push(g.reqPerSec);
      row.anchor.push(a.reqPerSec);
      row.gatewayLost += g.lost;
      row.gatewayRejected += g.rejected;
      process.stderr.write(
        `run ${run}: gateway ${rate(g.reqPerSec)} (${g.accepted} accepted, ${g.rejected} rejected, ${g.lost} lost, ${gCpu.toFixed(0)} µs CPU each), FreeRADIUS ${rate(a.reqPerSec)} (${aCpu.toFixed(0)} µs CPU each), Node.js floor ${rate(f.reqPerSec)} (${fCpu.toFixed(0)} µs CPU each)\n`,
      );
    }
    const gMed = median(row.gateway);
    const aMed = median(row.anchor);
    lines.push(
      summaryLine({
        what: `RADIUS gateway cost: radclient -p 250, ${block} users (first factor none + inline TOTP vs FreeRADIUS PAP${opts.fsyncBeforeReply === false ? ', fsync_before_reply false' : ''}), median of ${opts.runs}`,
        gateway: rate(gMed),
        anchor: rate(aMed),
        ratio: gMed / aMed,
        notes: [
          `gateway runs ${row.gateway.map((v) => rate(v)).join(', ')}`,
          `FreeRADIUS runs ${row.anchor.map((v) => rate(v)).join(', ')}`,
          `gateway rejected ${row.gatewayRejected}, lost ${row.gatewayLost}`,
          // The ratio's cause, steadier than req/s on a shared machine (radclient busy-polls one core).
          `CPU per request (server process, all threads; median) gateway ${median(row.gatewayCpuUs).toFixed(0)} µs, FreeRADIUS ${median(row.anchorCpuUs).toFixed(0)} µs`,
          `Udp RcvbufErrors +${row.rcvbufErrors}`,
          `${stealNote(stealPct)} (the most of any run)`,
          ...busy,
        ],
      }),
    );

    const fMed = median(row.floor);
    lines.push(
      summaryLine({
        what: `RADIUS Node.js floor: a bare PAP responder on Node.js (Message-Authenticator check, user lookup, password compare, signed reply; no flow, no store) under the same radclient load, median of ${opts.runs}`,
        subject: 'Node.js floor',
        gateway: rate(fMed),
        anchor: rate(aMed),
        ratio: fMed / aMed,
        notes: [
          `floor runs ${row.floor.map((v) => rate(v)).join(', ')}`,
          `CPU per request (median) floor ${median(row.floorCpuUs).toFixed(0)} µs, FreeRADIUS ${median(row.anchorCpuUs).toFixed(0)} µs`,
          `floor rejected or lost ${row.floorLost}`,
          'the most a Node.js gateway could reach on this machine before deciding or recording anything (bench/node-floor.ts)',
        ],
      }),
    );

    let next = block * closedBlock + 1;
    const disk = new DiskSyncProbe(join(dir.path, 'data'));
    for (const concurrency of [1, 20]) {
      await waitForQuiet(5, opts.quietWaitMs);
      const first = next;
      next += opts.closedRequests;
      const steal = stealMeter();
      const g: ClosedLoopResult = await closedLoop({
        ...gwTarget,
        concurrency,
        requests: opts.closedRequests,
        request: (i) => ({ user: user(first + i), password: totpOf(first + i).generate() }),
      });
      disk.sample(1000);
      const a: ClosedLoopResult = await closedLoop({
        ...anchorTarget,
        concurrency,
        requests: opts.closedRequests,
        request: (i) => ({ user: `user${String((i % block) + 1).padStart(5, '0')}`, password: `anchor-pw-${(i % block) + 1}` }),
      });
      lines.push(
        summaryLine({
          what: `RADIUS closed loop, ${concurrency} in flight, ${opts.closedRequests} distinct users`,
          gateway: `${rate(g.reqPerSec)} p50 ${ms(g.p50Ms)} p99 ${ms(g.p99Ms)}`,
          anchor: `${rate(a.reqPerSec)} p50 ${ms(a.p50Ms)} p99 ${ms(a.p99Ms)}`,
          ratio: g.reqPerSec / a.reqPerSec,
          notes: [`gateway accepted ${g.accepted}/${g.requests}, lost ${g.lost}`, `p99 added ${ms(g.p99Ms - a.p99Ms)}`, disk.take(), stealNote(steal())],
        }),
      );
    }
    return lines;
  } finally {
    await gw?.stop();
    await anchor?.stop();
    await floor?.stop();
    dir.cleanup();
  }
}
