import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startFreeRadius } from '../test/peers/freeradius.js';
import type { FreeRadius, FreeRadiusUser } from '../test/peers/freeradius.js';
import { trackChild } from '../test/peers/process-reaper.js';
import { quoteValue, radclientTarget } from '../test/peers/radclient.js';
import { binaryOrThrow } from '../test/peers/require-peer.js';
import { tempDir } from '../test/peers/temp.js';

/**
 * The RADIUS anchor of BENCHMARKS.md: FreeRADIUS 3.2 PAP from a users file with N users,
 * loaded by radclient exactly as the gateway will be, in the same run on the same machine.
 */

/** user00001, user00002, … (1-based). */
export function anchorUser(i: number): string {
  return `user${String(i).padStart(5, '0')}`;
}

/** A distinct password per user. */
export function anchorPassword(i: number): string {
  return `anchor-pw-${i}`;
}

export const ANCHOR_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;

export interface AnchorOptions {
  /** `cleartext` (Cleartext-Password, the "gateway cost" row) or `crypt` (SHA-512 crypt, the "local passwords" row). */
  passwords?: 'cleartext' | 'crypt';
  passwordFor?: (i: number) => string;
  requireMessageAuthenticator?: boolean;
  /**
   * FreeRADIUS `recv_buff` (SO_RCVBUF) of its listeners. Default 8 MiB, the gateway's default
   * `radius.receive_buffer_bytes`, so both get the same buffer (the kernel caps both at
   * net.core.rmem_max). With the kernel default (~208 KiB) a 250-packet burst overflows now and
   * then and radclient stalls on its retransmit timeout: runs of ~650 req/s among ~20 k ones.
   * `null` leaves the kernel default.
   */
  receiveBufferBytes?: number | null;
}

export interface Anchor {
  host: '127.0.0.1';
  port: number;
  secret: string;
  users: number;
  server: FreeRadius;
  stop(): Promise<void>;
}

export async function startAnchor(users: number, opts: AnchorOptions = {}): Promise<Anchor> {
  const passwordFor = opts.passwordFor ?? anchorPassword;
  const secret = randomBytes(16).toString('hex');
  const passwords = Array.from({ length: users }, (_, k) => passwordFor(k + 1));
  const hashes = opts.passwords === 'crypt' ? sha512Crypt(passwords) : undefined;
  const entries: FreeRadiusUser[] = passwords.map((password, k) => {
    const name = anchorUser(k + 1);
    const hash = hashes?.[k];
    return hash === undefined ? { name, cleartext: password } : { name, crypt: hash };
  });
  const server = await startFreeRadius({
    users: entries,
    clients: [{ address: '127.0.0.1', secret, requireMessageAuthenticator: opts.requireMessageAuthenticator ?? true }],
    ...(opts.receiveBufferBytes === null ? {} : { receiveBufferBytes: opts.receiveBufferBytes ?? ANCHOR_RECEIVE_BUFFER_BYTES }),
  });
  return { host: server.host, port: server.port, secret, users, server, stop: () => server.stop() };
}

/** `openssl passwd -6` for many passwords in one process (5000 rounds, random salts). */
function sha512Crypt(passwords: readonly string[]): string[] {
  const openssl = binaryOrThrow('openssl', 'openssl');
  const out = spawnSync(openssl, ['passwd', '-6', '-stdin'], { input: passwords.join('\n') + '\n', maxBuffer: 1 << 30 });
  const hashes = out.stdout.toString('utf8').trim().split('\n');
  if (out.status !== 0 || hashes.length !== passwords.length) throw new Error(`openssl passwd -6 failed: ${out.stderr.toString('utf8')}`);
  return hashes;
}

/**
 * radclient packet files of `perFile` distinct Access-Requests each, users 1..users in order,
 * each with `Message-Authenticator = 0x00` (radclient computes it). Returns the file paths.
 */
export function makePacketFiles(
  users: number,
  perFile = 5000,
  passwordFor: (i: number) => string = anchorPassword,
  userName: (i: number) => string = anchorUser,
): string[] {
  const dir = tempDir('anchor-packets').path;
  const files: string[] = [];
  for (let first = 1; first <= users; first += perFile) {
    const last = Math.min(users, first + perFile - 1);
    const packets: string[] = [];
    for (let i = first; i <= last; i++) {
      packets.push(`User-Name = ${quoteValue(userName(i))}\nUser-Password = ${quoteValue(passwordFor(i))}\nMessage-Authenticator = 0x00\n`);
    }
    const file = join(dir, `packets-${String(files.length + 1).padStart(3, '0')}.txt`);
    writeFileSync(file, packets.join('\n'));
    files.push(file);
  }
  return files;
}

export interface RadclientLoadOptions {
  host: string;
  port: number;
  secret: string;
  files: string[];
  /** -p; 250 as in BENCHMARKS.md. Never combine with -c > 1 (Id reuse, "conflicting" drops). */
  parallel?: number;
}

export interface LoadResult {
  requests: number;
  /** Wall time of the radclient runs (sum; they run one after another). */
  seconds: number;
  reqPerSec: number;
  accepted: number;
  rejected: number;
  lost: number;
}

/** `radclient -q -s -c 1 -p 250 -f FILE HOST:PORT auth SECRET` per file, one after another. */
export async function radclientLoad(opts: RadclientLoadOptions): Promise<LoadResult> {
  const binary = binaryOrThrow('radclient', 'freeradius-utils');
  const target = radclientTarget(opts.host, opts.port);
  const total: LoadResult = { requests: 0, seconds: 0, reqPerSec: 0, accepted: 0, rejected: 0, lost: 0 };
  for (const file of opts.files) {
    const args = ['-q', '-s', '-c', '1', '-p', String(opts.parallel ?? 250), '-f', file, target, 'auth', opts.secret];
    const started = performance.now();
    const { stdout, stderr } = await run(binary, args, file);
    total.seconds += (performance.now() - started) / 1000;
    const summary = parseSummary(stdout);
    if (summary === undefined) throw new Error(`radclient printed no packet summary for ${file}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`);
    total.accepted += summary.accepted;
    total.rejected += summary.rejected;
    total.lost += summary.lost;
    total.requests += countPackets(file);
  }
  total.reqPerSec = (total.accepted + total.rejected) / total.seconds;
  return total;
}

/** The `-s` block: "Accepted      : 5000" etc. */
export function parseSummary(stdout: string): { accepted: number; rejected: number; lost: number } | undefined {
  const field = (name: string): number | undefined => {
    const m = new RegExp(`^\\s*${name}\\s*:\\s*(\\d+)`, 'm').exec(stdout);
    return m?.[1] === undefined ? undefined : Number(m[1]);
  };
  const accepted = field('Accepted');
  const rejected = field('Rejected');
  const lost = field('Lost');
  if (accepted === undefined || rejected === undefined || lost === undefined) return undefined;
  return { accepted, rejected, lost };
}

function countPackets(file: string): number {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.startsWith('User-Name ')).length;
}

function run(binary: string, args: string[], marker: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child, 'radclient', marker);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

/** `Udp: … RcvbufErrors` from /proc/net/snmp: datagrams the kernel dropped on full receive buffers. */
export function udpRcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [header, values] = lines.map((l) => l.trim().split(/\s+/));
  const at = header?.indexOf('RcvbufErrors') ?? -1;
  const value = at < 0 ? undefined : values?.[at];
  if (value === undefined) throw new Error('no Udp RcvbufErrors in /proc/net/snmp');
  return Number(value);
}
