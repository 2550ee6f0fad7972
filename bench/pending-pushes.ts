import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { DirectoryUserData } from '../src/store/types.js';
import { startNtfyFake } from '../test/fakes/ntfy.js';
import { startGateway } from '../test/peers/gateway.js';
import { freePort } from '../test/peers/ports.js';
import { tempDir } from '../test/peers/temp.js';
import { ACCESS_ACCEPT, encodeAccessRequest, replyCode, type AccessRequest } from './access-request.js';
import { summaryLine } from './report.js';

/**
 * BENCHMARKS.md, "Pushes": N RADIUS logins waiting on a push at once. The gateway (first factor
 * `none`, as behind NPS; every user's default method push through ntfy) against the ntfy test
 * double in this process, which holds every push unanswered until all N are out, then approves
 * them all. While they wait, every request is retransmitted once (same bytes): no second push may
 * start. Reported: the gateway's RSS idle and with N pending, the event-loop delay p99 over the
 * pending phase (from GET /health, perf_hooks.monitorEventLoopDelay), and how many of the N got a
 * verified Access-Accept. There is no anchor: FreeRADIUS has no push; the figures stand alone.
 */

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const IDS_PER_SOCKET = 250;

interface Health {
  pendingApprovals: number;
  eventLoopDelay: { p50Ms: number; p99Ms: number; maxMs: number } | null;
}

export async function pendingPushesBench(n: number): Promise<string[]> {
  process.stderr.write(`pending pushes: ${n} logins waiting on ntfy…\n`);
  const dir = tempDir('bench-pushes-');
  const ntfy = await startNtfyFake({ defaultBehaviour: { kind: 'no_answer' } });
  try {
    const dataDir = join(dir.path, 'data');
    const store = await openSqliteStore({ path: join(dataDir, 'gateway.db') });
    const name = (i: number): string => `p${String(i).padStart(6, '0')}`;
    const users: DirectoryUserData[] = [];
    for (let i = 0; i < n; i++) {
      users.push({ externalId: `push-${i}`, dn: `uid=${name(i)},ou=people,dc=example,dc=test`, username: name(i), upn: null, firstName: 'Push', lastName: `User ${i}`, email: null, phone: null, mobile: null, defaultMethod: 'push', language: null, enabled: true });
    }
    await store.upsertDirectoryUsers('directory:corp', users, { item: 'all', now: Date.now() });
    const ids = new Map((await store.listUsersBySource('directory:corp')).map((u) => [u.username, u.id]));
    await Promise.all(users.map((u, i) => store.addPushDevice({ userId: ids.get(u.username)!, provider: 'ntfy', address: `bench_${i}_${'x'.repeat(20)}`, label: 'phone' })));
    await store.close();

    const radiusPort = await freePort('udp');
    const httpPort = await freePort('tcp');
    const gw = await startGateway({
      dir: dir.path,
      configYaml: `
data_dir: ${JSON.stringify(dataDir)}
log: {level: warn}
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${await freePort('udp')}}]
clients:
  - {name: nps, addresses: [127.0.0.1], secret: {file: radius-secret, generate: true}, policy: nps, challenge: false, approval_timeout_seconds: 300}
policies:
  nps: {first_factor: none, methods: [push]}
providers:
  ntfy: {type: ntfy, base_url: ${JSON.stringify(ntfy.url)}}
methods:
  push: {providers: [ntfy]}
http: {listen: [{address: 127.0.0.1, port: ${httpPort}}], public_url: "http://127.0.0.1:${httpPort}", insecure: true, rate_limit_per_minute: 100000}
lockout: {max_failures: 0}
`,
    });
    const health = async (): Promise<Health> => (await (await fetch(`http://127.0.0.1:${httpPort}/health`)).json()) as Health;
    try {
      const secret = Buffer.from(gw.secret());
      await sleep(2000);
      const idleKb = rssKb(gw.pid);
      await health(); // starts the event-loop window

      const sockets: Socket[] = [];
      for (let s = 0; s < Math.ceil(n / IDS_PER_SOCKET); s++) {
        // Replies come in bursts while this process also plays ntfy: a big buffer keeps them.
        const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
        await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
        sockets.push(socket);
      }
      const requests: AccessRequest[] = [];
      const answered = new Map<number, number>();
      let replies = 0;
      sockets.forEach((socket, s) => {
        socket.on('message', (msg) => {
          replies++;
          const i = s * IDS_PER_SOCKET + (msg[1] ?? 0);
          const request = requests[i];
          if (request !== undefined && !answered.has(i)) answered.set(i, replyCode(msg, request, secret) ?? -1);
        });
      });
      const started = Date.now();
      for (let i = 0; i < n; i++) {
        const request = encodeAccessRequest(i % IDS_PER_SOCKET, secret, name(i), 'push');
        requests.push(request);
        sockets[Math.floor(i / IDS_PER_SOCKET)]!.send(request.packet, radiusPort, '127.0.0.1');
        if (i % 500 === 499) await sleep(5); // a NAS fleet, not one burst into the socket buffer
      }
      // Every push out and waiting.
      while (ntfy.records.length < n && Date.now() - started < 300_000) await sleep(200);
      const outMs = Date.now() - started;
      await sleep(1000);
      const pending = await health();
      const pendingKb = rssKb(gw.pid);
      // The NAS retransmits every request while the pushes wait: no second push may start.
      for (let i = 0; i < n; i++) {
        sockets[Math.floor(i / IDS_PER_SOCKET)]!.send(requests[i]!.packet, radiusPort, '127.0.0.1');
        if (i % 500 === 499) await sleep(5);
      }
      await sleep(2000);
      const publishesAfterRetransmit = ntfy.records.length;
      // Now every phone approves.
      const approveStarted = Date.now();
      const presses = await Promise.all(ntfy.records.map((r) => ntfy.press(r.id, 'Approve')));
      const pressStatus = new Map<string, number>();
      for (const p of presses) pressStatus.set(`${p.status} ${p.status === 200 ? '' : p.body.slice(0, 60)}`, (pressStatus.get(`${p.status} ${p.status === 200 ? '' : p.body.slice(0, 60)}`) ?? 0) + 1);
      if (pressStatus.size !== 1 || !pressStatus.has('200 ')) process.stderr.write(`approvals the gateway refused: ${JSON.stringify([...pressStatus])}\n`);
      while (answered.size < n && Date.now() - approveStarted < 120_000) await sleep(200);
      const answerMs = Date.now() - approveStarted;
      const after = await health();
      await sleep(1000);
      for (const socket of sockets) socket.close();
      const accepted = [...answered.values()].filter((c) => c === ACCESS_ACCEPT).length;
      const perPushKb = (pendingKb - idleKb) / n;
      return [
        summaryLine({
          what: `${n.toLocaleString('en-US')} RADIUS logins waiting on a push at once (ntfy test double), each retransmitted once during the wait`,
          gateway: `RSS ${(idleKb / 1024).toFixed(0)} MiB idle → ${(pendingKb / 1024).toFixed(0)} MiB with ${pending.pendingApprovals} pending (${perPushKb.toFixed(1)} KiB each); event-loop delay p99 ${pending.eventLoopDelay?.p99Ms ?? '?'} ms (max ${pending.eventLoopDelay?.maxMs ?? '?'}) while they went out in ${(outMs / 1000).toFixed(1)} s, p99 ${after.eventLoopDelay?.p99Ms ?? '?'} ms while approved; ${accepted}/${n} accepted in ${(answerMs / 1000).toFixed(1)} s after the approvals; ${publishesAfterRetransmit} pushes for ${n} logins + ${n} retransmits; ${replies} replies`,
          anchor: 'none (FreeRADIUS has no push)',
          notes: [accepted === n && publishesAfterRetransmit === n ? 'all answered correctly, no second push' : 'NOT all answered correctly or a second push started'],
        }),
      ];
    } finally {
      await gw.stop();
    }
  } finally {
    await ntfy.close();
    dir.cleanup();
  }
}
