import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Secret, TOTP } from 'otpauth';
import t from 'tap';
import { hashPassword } from '../../src/crypto/password-hash.js';
import { DataKeys } from '../../src/crypto/keys.js';
import { AttributeType, Code, RadiusDecodeError, attr, decodePacket, encodeAccessRequest, verifyReply } from '../../src/radius/codec/index.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { enrolOathToken } from '../../src/verify/oath.js';
import { gatewayConfig, startGateway, type RunningGateway } from '../peers/gateway.js';
import { freePort } from '../peers/ports.js';
import { tempDir } from '../peers/temp.js';
import { sendUdp } from '../peers/udp-client.js';

/**
 * End to end: `kill -9` of the gateway in the middle of a burst of 1 000 logins, twice in a row.
 * After each kill the gateway restarts on the same data directory (taking over the dead
 * process's lock), the audit chain verifies, the export parses with every field, and no Accept
 * the NAS received is missing from the audit: a reply never leaves before its record is durable.
 */

const USERS = 1000;
const IN_FLIGHT = 100;
const SOCKETS = 10; // identifiers are 8 bits: 100 requests per source port
const KILL_AFTER = Math.round(USERS * 0.4);
const CHEAP = { log2N: 10, r: 8, p: 1 }; // a verify reads the cost from the hash

/** Every field of an exported audit record (README "Audit"), plus its place in the chain. */
const RECORD_FIELDS = [
  'seq',
  'id',
  'receivedAt',
  'decidedAt',
  'attemptId',
  'protocol',
  'result',
  'reason',
  'userId',
  'username',
  'firstName',
  'lastName',
  'email',
  'phone',
  'deviceToken',
  'firstFactor',
  'method',
  'provider',
  'providerMessageId',
  'gatewayName',
  'gatewayIp',
  'clientName',
  'clientIp',
  'nasIdentifier',
  'nasIpAddress',
  'callingStationId',
  'calledStationId',
  'timings',
  'prevHash',
  'hash',
] as const;
const NON_NULL = ['seq', 'id', 'receivedAt', 'decidedAt', 'attemptId', 'protocol', 'result', 'reason', 'username', 'gatewayName', 'clientIp', 'timings', 'prevHash', 'hash'];

interface Account {
  name: string;
  password: string;
  seed: string;
}

const password = (name: string): string => `Pw-${name}-${name.length}x`;
const codeAt = (seed: string, step: number): string => new TOTP({ secret: Secret.fromBase32(seed) }).generate({ timestamp: step * 30_000 });
const stepNow = (): number => Math.floor(Date.now() / 30_000);

interface BurstResult {
  sent: number;
  replies: number;
  accepted: string[];
  rejected: string[];
  killedAt: number;
}

/**
 * Sends one Access-Request per account (password + inline code for `step`), at most IN_FLIGHT at
 * once, from SOCKETS source ports; kills the gateway with SIGKILL once KILL_AFTER replies came
 * back. Replies are verified against the request authenticator before they count.
 */
async function burstAndKill(gw: RunningGateway, accounts: Account[], step: number): Promise<BurstResult> {
  const secret = Buffer.from(gw.secret());
  const sockets: Socket[] = [];
  for (let i = 0; i < SOCKETS; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    sockets.push(s);
  }
  const perSocket = Math.ceil(accounts.length / SOCKETS);
  const requests = accounts.map((a, i) => {
    const { packet, authenticator } = encodeAccessRequest({
      identifier: i % perSocket,
      secret,
      attributes: [attr.text(AttributeType.UserName, a.name), attr.text(AttributeType.NasIdentifier, 'e2e-crash')],
      password: Buffer.from(`${a.password},${codeAt(a.seed, step)}`),
    });
    return { account: a, socket: sockets[Math.floor(i / perSocket)] as Socket, identifier: i % perSocket, packet, authenticator, answered: false };
  });
  const bySocket = new Map<Socket, Map<number, (typeof requests)[number]>>();
  for (const r of requests) {
    const m = bySocket.get(r.socket) ?? new Map<number, (typeof requests)[number]>();
    m.set(r.identifier, r);
    bySocket.set(r.socket, m);
  }

  const result: BurstResult = { sent: 0, replies: 0, accepted: [], rejected: [], killedAt: -1 };
  let next = 0;
  let killing: Promise<number | null> | undefined;
  const sendNext = (): void => {
    if (killing !== undefined || next >= requests.length) return;
    const r = requests[next++];
    if (r === undefined) return;
    result.sent++;
    r.socket.send(r.packet, gw.radiusPort, '127.0.0.1');
  };
  for (const s of sockets) {
    s.on('message', (msg) => {
      const decoded = decodePacket(msg);
      if (decoded instanceof RadiusDecodeError) return;
      const r = bySocket.get(s)?.get(decoded.identifier);
      if (r === undefined || r.answered || !verifyReply(decoded, r.authenticator, secret, { requireMessageAuthenticator: true })) return;
      r.answered = true;
      result.replies++;
      if (decoded.code === Code.AccessAccept) result.accepted.push(r.account.name);
      else result.rejected.push(r.account.name);
      if (result.replies >= KILL_AFTER && killing === undefined) {
        result.killedAt = result.replies;
        killing = gw.stop('SIGKILL');
      }
      sendNext();
    });
  }
  for (let i = 0; i < IN_FLIGHT; i++) sendNext();

  const deadline = Date.now() + 30_000;
  while (killing === undefined && Date.now() < deadline) await sleep(20);
  await killing;
  await sleep(300); // anything still in a socket buffer is read; nothing new can come
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return result;
}

t.test('kill -9 during a burst of 1 000 logins, twice: restart, audit intact, no Accept unrecorded', async (t) => {
  const dir = tempDir('mfa-e2e-crash-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');
  const dbPath = join(dataDir, 'gateway.db');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // The master key the gateway will use, created before its first start (as an admin restoring one would).
  const masterKey = randomBytes(32);
  writeFileSync(join(dataDir, 'master.key'), `${masterKey.toString('hex')}\n`, { mode: 0o600 });

  // Provisioning through the store directly: the CLI costs about a second per user.
  const started = Date.now();
  const store = await openSqliteStore({ path: dbPath });
  const keys = new DataKeys(masterKey);
  const names = [...Array.from({ length: USERS }, (_, i) => `load-${String(i).padStart(4, '0')}`), 'probe-1', 'probe-2'];
  const hashes = await Promise.all(names.map((n) => hashPassword(password(n), CHEAP)));
  const accounts: Account[] = [];
  for (const [i, name] of names.entries()) {
    const user = await store.createUser({ username: name, passwordHash: hashes[i] ?? '', email: `${name}@example.test` });
    const token = await enrolOathToken(store, keys, user, { issuer: 'e2e' });
    accounts.push({ name, password: password(name), seed: token.secretBase32 });
  }
  await store.close();
  t.comment(`provisioned ${names.length} users in ${Date.now() - started} ms`);
  const load = accounts.slice(0, USERS);
  const probes = accounts.slice(USERS);

  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');
  const configYaml = gatewayConfig({ radiusPort, acctPort, dataDir, maxFailures: 0 });
  const start = (): Promise<RunningGateway> => startGateway({ dir: dir.path, configYaml, t });
  let gw = await start();
  t.equal(readFileSync(join(dataDir, 'master.key'), 'utf8').trim(), masterKey.toString('hex'), 'the gateway uses the pre-created master key');

  let lastStep = -1;
  let recordsBefore = 0;
  for (const round of [1, 2]) {
    await t.test(`round ${round}`, async (t) => {
      // A step later than any used before (a code is good once), and within the window of ±1 step.
      while (Math.max(stepNow(), lastStep + 1) > stepNow() + 1) await sleep(30_000 - (Date.now() % 30_000) + 100);
      const step = Math.max(stepNow(), lastStep + 1);
      lastStep = step;
      const killedPid = gw.pid;

      const burst = await burstAndKill(gw, load, step);
      t.equal(burst.killedAt, KILL_AFTER, `killed after ${KILL_AFTER} replies`);
      t.ok(gw.process.exitCode === null && gw.process.signalCode === 'SIGKILL', 'the gateway died of SIGKILL');
      t.ok(burst.sent < USERS, `${burst.sent} of ${USERS} logins sent before the kill`);
      t.ok(burst.replies >= KILL_AFTER && burst.replies <= burst.sent, `${burst.replies} replies received`);
      t.same(burst.rejected, [], 'every login answered before the kill was accepted');
      t.comment(`sent ${burst.sent}, replies ${burst.replies}, accepts ${burst.accepted.length}`);

      const lockFile = `${dbPath}.lock`;
      t.ok(existsSync(lockFile), 'the dead gateway left its lock file');
      t.equal((JSON.parse(readFileSync(lockFile, 'utf8')) as { pid: number }).pid, killedPid, 'naming the dead PID');

      gw = await start();
      t.not(gw.pid, killedPid, 'a new gateway process');
      t.ok(gw.process.exitCode === null, 'restarted on the same data directory (stale lock taken over)');
      t.equal((JSON.parse(readFileSync(lockFile, 'utf8')) as { pid: number }).pid, gw.pid, 'the lock is now the new PID');

      const verify = await gw.cli(['audit', 'verify']);
      t.equal(verify.code, 0, `audit verify: ${verify.stdout}${verify.stderr}`);
      t.match(verify.stdout, /audit chain intact: \d+ records/);

      const exported = await gw.cli(['audit', 'export', '--format', 'json']);
      t.equal(exported.code, 0, exported.stderr);
      let records: Array<Record<string, unknown>> = [];
      t.doesNotThrow(() => (records = JSON.parse(exported.stdout) as Array<Record<string, unknown>>), 'the export parses');
      t.same(
        records.map((r) => r.seq),
        records.map((_, i) => i + 1),
        'seq 1..n without gaps',
      );
      const incomplete = records.filter((r) => RECORD_FIELDS.some((f) => !(f in r)) || NON_NULL.some((f) => r[f] === null || r[f] === undefined));
      t.same(incomplete, [], 'every record has every field');

      const thisRound = records.slice(recordsBefore);
      recordsBefore = records.length;
      const acceptedInAudit = new Set(thisRound.filter((r) => r.result === 'accept').map((r) => String(r.username)));
      t.ok(burst.accepted.length <= acceptedInAudit.size, `${burst.accepted.length} Accepts received ≤ ${acceptedInAudit.size} accept records`);
      t.same(
        burst.accepted.filter((n) => !acceptedInAudit.has(n)),
        [],
        'every Accept the NAS received has its accept record',
      );
      t.ok(thisRound.length <= burst.sent, `${thisRound.length} records for ${burst.sent} logins sent: none twice`);
      t.equal(new Set(thisRound.map((r) => r.username)).size, thisRound.length, 'one record per login');

      const probe = probes[round - 1];
      if (probe === undefined) throw new Error('no probe user');
      const { packet, authenticator } = encodeAccessRequest({
        identifier: 1,
        secret: Buffer.from(gw.secret()),
        attributes: [attr.text(AttributeType.UserName, probe.name)],
        password: Buffer.from(`${probe.password},${codeAt(probe.seed, stepNow())}`),
      });
      const reply = await sendUdp('127.0.0.1', gw.radiusPort, packet, 5000);
      t.ok(reply, 'the restarted gateway answers');
      const decoded = reply === undefined ? undefined : decodePacket(reply);
      if (decoded === undefined || decoded instanceof RadiusDecodeError) throw new Error('no valid reply after the restart');
      t.ok(verifyReply(decoded, authenticator, Buffer.from(gw.secret()), { requireMessageAuthenticator: true }), 'the reply verifies');
      t.equal(decoded.code, Code.AccessAccept, 'a login after the restart works');
      recordsBefore++;
    });
  }

  t.equal(await gw.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
});
