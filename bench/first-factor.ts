import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'ldapts';
import { startFreeRadius, type FreeRadius } from '../test/peers/freeradius.js';
import { startGateway, type RunningGateway } from '../test/peers/gateway.js';
import { freePort } from '../test/peers/ports.js';
import { startSlapd, type RunningSlapd } from '../test/peers/slapd.js';
import { tempDir } from '../test/peers/temp.js';
import { closedLoop, loopResult, mergeResults, percentileOfSorted, type ClosedLoopResult } from './latency-client.js';
import { DiskSyncProbe } from './disk-sync.js';
import { provision, totpOf } from './radius-gateway.js';
import { median, ms, processCpuMs, rate, stealMeter, stealNote, summaryLine, waitForQuiet } from './report.js';

const percentile = (values: readonly number[], p: number): number => percentileOfSorted(Float64Array.from(values).sort(), p);

/**
 * BENCHMARKS.md, RADIUS "LDAP first factor" and "upstream RADIUS": login latency through the
 * gateway with the password checked by slapd (LDAPS) or forwarded to FreeRADIUS, each beside
 * its floor measured in the same run, in alternating rounds — direct simple binds to the same
 * slapd on reused LDAPS connections, and radclient-equivalent requests straight to the same
 * FreeRADIUS. Goal: p99 added < 2 ms. Every login is a distinct user, so no TOTP code is ever a
 * replay.
 */

export interface FirstFactorBenchOptions {
  /** Distinct users per measured loop (each loop uses its own block). */
  requests: number;
  quietWaitMs: number;
  /** store.sqlite.fsync_before_reply of the gateway (default: its own, true). */
  fsyncBeforeReply?: boolean;
  /** Node.js options for the gateway process (BENCH_GATEWAY_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=DIR`). */
  gatewayNodeArgs?: string[];
}

const CONCURRENCY = [1, 20] as const;
const uid = (i: number): string => `ff${String(i).padStart(6, '0')}`;
const password = (i: number): string => `Ff-Pass-${i}`;

/** Closed-loop simple binds on `concurrency` reused LDAPS connections, one bind per user. */
async function directBinds(slapd: RunningSlapd, ca: Buffer, concurrency: number, first: number, count: number): Promise<ClosedLoopResult> {
  const clients = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const c = new Client({ url: slapd.ldapsUrl, tlsOptions: { ca, minVersion: 'TLSv1.2' }, timeout: 5000, connectTimeout: 5000 });
      await c.bind(slapd.adminDn, slapd.adminPassword); // opens the TLS connection before timing
      return c;
    }),
  );
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (next < count) {
        const i = first + next++;
        const t0 = performance.now();
        try {
          await c.bind(slapd.userDn(uid(i)), password(i));
          latencies.push(performance.now() - t0);
        } catch {
          failed++;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.unbind().catch(() => undefined)));
  return loopResult({ requests: count, seconds, accepted: latencies.length, rejected: failed, challenged: 0, lost: 0 }, latencies);
}

export async function firstFactorBench(opts: FirstFactorBenchOptions): Promise<string[]> {
  const blocks = CONCURRENCY.length * 2;
  const total = opts.requests * blocks;
  /**
   * Unmeasured logins per path before the measured ones. The gateway's code is JIT-compiled over
   * its first thousands of calls (measured: the upstream client alone, 3 000 logins at 1 in
   * flight, p99 3.2 ms in its first round, 1.5 in the second, 1.1 in the third); 200 on the LDAP
   * path alone left the upstream path cold. Each path gets its own users (a TOTP code is used once).
   */
  const WARMUP = 1500;
  const dir = tempDir('bench-first-factor-');
  const lines: string[] = [];
  let slapd: RunningSlapd | undefined;
  let fr: FreeRadius | undefined;
  let gw: RunningGateway | undefined;
  try {
    process.stderr.write(`first factors: slapd and FreeRADIUS with ${total + 2 * WARMUP} users…\n`);
    const users = Array.from({ length: total + 2 * WARMUP }, (_, k) => ({ uid: uid(k + 1), password: password(k + 1) }));
    slapd = await startSlapd({ users, groups: [] });
    const frSecret = 'bench-upstream-secret-0123456789';
    fr = await startFreeRadius({
      clients: [{ address: '127.0.0.1', secret: frSecret, requireMessageAuthenticator: true }],
      replyMessageAuthenticator: true,
      users: users.map((u) => ({ name: u.uid, cleartext: u.password })),
    });
    const dataDir = join(dir.path, 'data');
    // As a sync of `corp` stores them: the gateway knows each entry's DN and binds with it.
    await provision(dataDir, total + 2 * WARMUP, uid, { source: 'directory:corp', dn: (i) => slapd!.userDn(uid(i)) });
    writeFileSync(join(dataDir, 'corp-bind'), `${slapd.adminPassword}\n`, { mode: 0o600 });
    writeFileSync(join(dataDir, 'fr-secret'), `${frSecret}\n`, { mode: 0o600 });
    const radiusPort = await freePort('udp');
    gw = await startGateway({
      dir: dir.path,
      ...(opts.gatewayNodeArgs === undefined ? {} : { nodeArgs: opts.gatewayNodeArgs }),
      configYaml: `data_dir: ${JSON.stringify(dataDir)}
log: {level: warn}
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${await freePort('udp')}}]
clients:
  - {name: nas-ldap, addresses: [127.0.0.1], secret: {file: radius-secret, generate: true}, policy: ldap}
  - {name: nas-upstream, addresses: [127.0.0.2], secret: {file: radius-secret, generate: true}, policy: upstream}
policies:
  ldap: {first_factor: 'ldap:corp'}
  upstream: {first_factor: 'radius:fr'}
directories:
  corp:
    flavour: ldap
    urls: [${JSON.stringify(slapd.ldapsUrl)}]
    ca_file: ${JSON.stringify(slapd.caFile)}
    bind_dn: ${JSON.stringify(slapd.adminDn)}
    bind_password: {file: corp-bind}
    base_dn: ${JSON.stringify(slapd.baseDn)}
    pool_size: 20
upstreams:
  fr:
    servers: [{address: 127.0.0.1, port: ${fr.port}, secret: {file: fr-secret}}]
lockout: {max_failures: 0}
${opts.fsyncBeforeReply === undefined ? '' : `store: {sqlite: {fsync_before_reply: ${opts.fsyncBeforeReply}}}`}
`,
    });
    const secret = gw.secret();
    const ca = readFileSync(slapd.caFile);
    /** Closed loop of `requests` through the gateway from `from` (which picks the client, so the policy), users from `first` on. */
    const throughGateway = (from: string, concurrency: number, first: number, requests = opts.requests): Promise<ClosedLoopResult> =>
      closedLoop({
        host: '127.0.0.1',
        port: radiusPort,
        secret,
        concurrency,
        requests,
        sourceAddress: from,
        request: (i) => ({ user: uid(first + i), password: `${password(first + i)},${totpOf(first + i).generate()}` }),
      });
    /** The same straight to FreeRADIUS (password only). */
    const toFreeRadius = (concurrency: number, first: number, requests = opts.requests): Promise<ClosedLoopResult> =>
      closedLoop({ host: '127.0.0.1', port: fr!.port, secret: frSecret, concurrency, requests, request: (i) => ({ user: uid(first + i), password: password(first + i) }) });

    // Warm-up of both paths and of both anchors: TLS connections, pools, JIT (this process's too).
    for (const [from, first] of [['127.0.0.1', total + 1], ['127.0.0.2', total + WARMUP + 1]] as const) {
      await throughGateway(from, 20, first, WARMUP / 2);
      await throughGateway(from, 1, first + WARMUP / 2, WARMUP / 2);
    }
    await directBinds(slapd, ca, 1, total + 1, WARMUP);
    await toFreeRadius(1, total + 1, WARMUP);
    const disk = new DiskSyncProbe(dataDir);
    const row = (what: string, anchorName: string, g: ClosedLoopResult, a: ClosedLoopResult, gatewayCpuMs: number, stealPct: number, anchorNote: string): string =>
      summaryLine({
        what,
        gateway: `${rate(g.reqPerSec)} p50 ${ms(g.p50Ms)} p99 ${ms(g.p99Ms)}`,
        anchor: `${anchorName} ${rate(a.reqPerSec)} p50 ${ms(a.p50Ms)} p99 ${ms(a.p99Ms)}`,
        ratio: g.reqPerSec / a.reqPerSec,
        notes: [
          `p99 added ${ms(g.p99Ms - a.p99Ms)} (goal < 2 ms)`,
          `gateway accepted ${g.accepted}/${g.requests}, lost ${g.lost}`,
          `gateway CPU per login ${Math.round((1000 * gatewayCpuMs) / g.requests)} µs (all its threads)`,
          anchorNote,
          disk.take(),
          stealNote(stealPct),
        ],
      });

    /**
     * The gateway and its anchor in alternating rounds (a fifth of the logins each, distinct users),
     * each side's rounds merged: both then sample the same minutes of a shared machine, where one
     * run after the other let a slow minute land on one side only.
     */
    const ROUNDS = 5;
    const alternating = async (
      first: number,
      gatewayPart: (first: number, n: number) => Promise<ClosedLoopResult>,
      anchorPart: (first: number, n: number) => Promise<ClosedLoopResult>,
    ): Promise<[ClosedLoopResult, ClosedLoopResult, number, number]> => {
      const steal = stealMeter();
      const per = Math.ceil(opts.requests / ROUNDS);
      const g: ClosedLoopResult[] = [];
      const a: ClosedLoopResult[] = [];
      /** The gateway process's CPU time (ms) during its own rounds. */
      let gatewayCpuMs = 0;
      for (let done = 0; done < opts.requests; done += per) {
        const n = Math.min(per, opts.requests - done);
        const cpuBefore = processCpuMs(gw!.pid);
        g.push(await gatewayPart(first + done, n));
        gatewayCpuMs += processCpuMs(gw!.pid) - cpuBefore;
        disk.sample(200);
        a.push(await anchorPart(first + done, n));
      }
      return [mergeResults(g), mergeResults(a), gatewayCpuMs, steal()];
    };

    /** The measured blocks (their first user), for the per-step timings from the audit below. */
    const blocks: Array<{ label: string; first: number }> = [];
    let block = 0;
    for (const concurrency of CONCURRENCY) {
      const first = 1 + opts.requests * block++;
      blocks.push({ label: `LDAP, ${concurrency} in flight`, first });
      await waitForQuiet(5, opts.quietWaitMs);
      const [g, a, cpuMs, stealPct] = await alternating(
        first,
        (f, n) => throughGateway('127.0.0.1', concurrency, f, n),
        (f, n) => directBinds(slapd!, ca, concurrency, f, n),
      );
      const what = `LDAP first factor (slapd over LDAPS, password + inline TOTP), ${concurrency} in flight, ${opts.requests} distinct users`;
      lines.push(row(what, 'direct simple binds', g, a, cpuMs, stealPct, `direct binds failed ${a.rejected}`));
    }
    for (const concurrency of CONCURRENCY) {
      const first = 1 + opts.requests * block++;
      blocks.push({ label: `upstream, ${concurrency} in flight`, first });
      await waitForQuiet(5, opts.quietWaitMs);
      // The gateway's upstream client sends from 127.0.0.1; the load comes from 127.0.0.2 (client nas-upstream).
      const [g, a, cpuMs, stealPct] = await alternating(
        first,
        (f, n) => throughGateway('127.0.0.2', concurrency, f, n),
        (f, n) => toFreeRadius(concurrency, f, n),
      );
      const what = `upstream RADIUS first factor (FreeRADIUS PAP, password + inline TOTP), ${concurrency} in flight, ${opts.requests} distinct users`;
      lines.push(row(what, 'FreeRADIUS direct', g, a, cpuMs, stealPct, `FreeRADIUS accepted ${a.accepted}/${a.requests}`));
    }
    // Why anything was not accepted, from the gateway's own audit.
    const exported = await gw.cli(['audit', 'export', '--format', 'json']);
    const reasons = new Map<string, number>();
    /** Per measured block: step name → durations (ms). */
    const steps = blocks.map(() => new Map<string, number[]>());
    for (const r of JSON.parse(exported.stdout) as Array<{ result: string; reason: string; username: string; timings: Record<string, number> }>) {
      if (r.result !== 'accept') reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
      const n = Number(r.username.slice(2));
      const b = blocks.findIndex((x) => n >= x.first && n < x.first + opts.requests);
      if (b === -1) continue; // warm-up
      for (const [step, value] of Object.entries(r.timings)) {
        const values = steps[b]!.get(step);
        if (values === undefined) steps[b]!.set(step, [value]);
        else values.push(value);
      }
    }
    // Where the time goes inside the gateway (the audit record's per-step timings; the rest of a
    // round trip is the RADIUS front end, the audit commit and its fsync).
    blocks.forEach(({ label }, b) => {
      lines.push(`first-factor runs, ${label}: inside the flow, p50/p99 ms: ${[...steps[b]!].map(([step, v]) => `${step} ${ms(median(v))}/${ms(percentile(v, 99))}`).join(', ')}`);
    });
    if (reasons.size > 0) lines.push(`first-factor runs: not accepted by reason: ${[...reasons].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    return lines;
  } finally {
    await gw?.stop();
    await fr?.stop();
    await slapd?.stop();
    dir.cleanup();
  }
}
