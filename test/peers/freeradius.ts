import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { PeerProcess } from './peer-process.js';
import { spawnPeer } from './peer-process.js';
import { freePort } from './ports.js';
import { quoteValue, radclient } from './radclient.js';
import { binaryOrThrow } from './require-peer.js';
import { tempDir } from './temp.js';

/**
 * A throwaway FreeRADIUS 3.2 (Debian's `freeradius`) answering PAP and MS-CHAPv2 (rlm_mschap,
 * with MPPE keys) from a users file on 127.0.0.1 free ports, with a raddb generated from scratch in a temp dir: nothing of
 * /etc/freeradius is read, no system service is involved. Runs as the current user.
 */

export interface FreeRadiusUser {
  name: string;
  /** Cleartext-Password (PAP compares in constant time). */
  cleartext?: string;
  /** Crypt-Password: a crypt(3) hash such as `openssl passwd -6` prints ($6$ = SHA-512 crypt). */
  crypt?: string;
  /**
   * NT-Password: MD4 of the UTF-16LE password as 32 hex digits (what AD holds), for MS-CHAPv2
   * without a cleartext password. (A `cleartext` user can log in with MS-CHAPv2 too.)
   */
  ntHash?: string;
  /** Reply attributes for Access-Accept, e.g. { 'Reply-Message': 'hi', 'Session-Timeout': '3600' }. */
  reply?: Record<string, string>;
  /**
   * More check items, each `Name == value`: the request must carry the attribute with exactly that
   * value, or the user is rejected (e.g. { 'NAS-Identifier': 'vpn-1' }).
   */
  check?: Record<string, string>;
  /** Attributes the request must not carry at all (`Name !* ANY`), e.g. ['State', 'CHAP-Password']. */
  absent?: string[];
  /**
   * Two-step login (RFC 2865 §4.4): the right password without a State gets an Access-Challenge
   * with `prompt` as Reply-Message and `state` as State; the answer (State and `response` as
   * User-Password) gets the Access-Accept with `reply`. Anything else gets an Access-Reject.
   * Needs `cleartext`; `check` and `absent` do not apply. Values: printable ASCII without quotes
   * or backslashes.
   */
  challenge?: FreeRadiusChallenge;
}

export interface FreeRadiusChallenge {
  prompt: string;
  response: string;
  /** The State to send, as 0x-prefixed hex (default: 16 random octets, see FreeRadius.challengeStates). */
  state?: string;
}

export interface FreeRadiusClient {
  /** An address or CIDR block (loopback, in tests). */
  address: string;
  secret: string;
  /** FreeRADIUS drops Access-Requests without a Message-Authenticator from this client. Default false. */
  requireMessageAuthenticator?: boolean;
  /** Client shortname (default client1, client2, …). */
  name?: string;
}

export interface FreeRadiusOptions {
  users: FreeRadiusUser[];
  clients: FreeRadiusClient[];
  /** Directory for raddb, logs and run files (default: a new temp dir, removed at process exit). */
  dir?: string;
  /** Answer Status-Server (RFC 5997). Default true; used to detect readiness. */
  statusServer?: boolean;
  /** Seconds FreeRADIUS delays an Access-Reject. Default 0 (Debian's config says 1). */
  rejectDelay?: number;
  /** Thread pool size (Debian's defaults: 5 started, 32 max). */
  threads?: { start: number; max: number };
  /**
   * SO_RCVBUF of both listeners (`recv_buff`, capped by net.core.rmem_max). Default: the kernel's
   * (net.core.rmem_default, ~208 KiB), which a burst of 250 requests can overflow.
   */
  receiveBufferBytes?: number;
  /** Log every authentication result ("Login OK: …"). Default false (it costs throughput). */
  logAuth?: boolean;
  /** Register stop() as a teardown of this tap test. */
  t?: { teardown(fn: () => unknown): unknown };
  /** Milliseconds to wait for readiness (default 20000). */
  startTimeoutMs?: number;
  /**
   * Put a Message-Authenticator in every Access-Accept, -Reject and -Challenge, as FreeRADIUS
   * 3.2.5 and later do (Blast-RADIUS, CVE-2024-3596). Debian's 3.2.1 adds one only to EAP
   * replies, so a client that requires it gets nothing it can accept. Default false.
   */
  replyMessageAuthenticator?: boolean;
  /**
   * Authentication port (default: a free one). For a restart on the port a stopped instance
   * used; the accounting port is always a free one. Not retried on another port if taken.
   */
  port?: number;
}

export interface FreeRadius {
  port: number;
  acctPort: number;
  host: '127.0.0.1';
  dir: string;
  logFile: string;
  pid: number;
  logs(): string;
  /** User name → the State (0x-prefixed hex) its challenge sends, for users with `challenge`. */
  challengeStates: ReadonlyMap<string, string>;
  /** SIGTERM, SIGKILL after 5 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
  readonly process: PeerProcess;
}

const HOST = '127.0.0.1';
const SAFE_NAME = /^[^\s"'\\#,=]+$/;

export async function startFreeRadius(opts: FreeRadiusOptions): Promise<FreeRadius> {
  const binary = binaryOrThrow('freeradius', 'freeradius');
  if (opts.port !== undefined) assertPort(opts.port);
  let lastError: unknown;
  const challengeStates = new Map<string, string>();
  for (const u of opts.users) {
    if (u.challenge !== undefined) challengeStates.set(u.name, u.challenge.state ?? `0x${randomBytes(16).toString('hex')}`);
  }
  // freePort closes its probe socket before FreeRADIUS binds, so another process can win the
  // port in between: a bind failure is retried on new ports (unless the caller fixed the port).
  for (let attempt = 1; attempt <= (opts.port === undefined ? 3 : 1); attempt++) {
    const port = opts.port ?? (await freePort('udp', HOST));
    let acctPort = await freePort('udp', HOST);
    while (acctPort === port) acctPort = await freePort('udp', HOST);
    try {
      const server = await startOnce(binary, opts, port, acctPort, attempt, challengeStates);
      opts.t?.teardown(() => server.stop());
      return server;
    } catch (err) {
      lastError = err;
      if (!(err instanceof Error && /Address already in use|Error binding/.test(err.message))) throw err;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function startOnce(
  binary: string,
  opts: FreeRadiusOptions,
  port: number,
  acctPort: number,
  attempt: number,
  challengeStates: ReadonlyMap<string, string>,
): Promise<FreeRadius> {
  const dir = opts.dir !== undefined ? join(opts.dir, `freeradius-${attempt}`) : tempDir('freeradius').path;
  writeRaddb(dir, opts, port, acctPort, challengeStates);
  const debug = isDebug();
  // -f: stay in the foreground (our child, killable by PID). -X would also do that, but it
  // forces a single thread: ~10× slower, so only on request.
  const args = debug ? ['-X', '-d', dir] : ['-f', '-l', 'stdout', '-d', dir];
  const peer = spawnPeer({ name: 'freeradius', command: binary, args, logFile: join(dir, 'freeradius.log'), marker: dir });
  const stop = async (): Promise<void> => {
    await peer.stop('SIGTERM', 5000);
  };
  try {
    await peer.waitForLine((l) => l.includes('Ready to process requests'), opts.startTimeoutMs ?? 20000, "'Ready to process requests'");
    await probe(peer, opts, port);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, acctPort, host: HOST, dir, logFile: peer.logFile, pid: peer.pid, logs: () => peer.logs(), challengeStates, stop, process: peer };
}

/** Ready means answering: one Status-Server through radclient from a client entry that covers 127.0.0.1. */
async function probe(peer: PeerProcess, opts: FreeRadiusOptions, port: number): Promise<void> {
  if (opts.statusServer === false) return;
  const client = opts.clients.find((c) => coversLocalhost(c.address));
  if (client === undefined) return;
  const result = await radclient({ host: HOST, port, secret: client.secret, type: 'status', packets: [], retries: 5, timeoutSec: 1 });
  if (result.replies.length !== 1) {
    throw peer.failure(`FreeRADIUS did not answer Status-Server on ${HOST}:${port} (radclient exit ${result.exitCode}: ${result.stderr.trim()})`);
  }
}

function coversLocalhost(address: string): boolean {
  const [ip = '', bits] = address.split('/');
  if (isIP(ip) !== 4) return false;
  const prefix = bits === undefined ? 32 : Number(bits);
  const toInt = (a: string): number => a.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix);
  return (toInt(ip) & mask) >>> 0 === (toInt(HOST) & mask) >>> 0;
}

function isDebug(): boolean {
  const debug = process.env.DEBUG ?? '';
  return debug === '1' || debug === '*' || /freeradius/i.test(debug);
}

function assertPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad FreeRADIUS port ${port}`);
}

function writeRaddb(dir: string, opts: FreeRadiusOptions, port: number, acctPort: number, challengeStates: ReadonlyMap<string, string>): void {
  for (const sub of ['', 'mods-enabled', 'mods-config/files', 'run', 'log']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  const write = (path: string, text: string): void => writeFileSync(join(dir, path), text, { mode: 0o600 });
  write('radiusd.conf', radiusdConf(dir, opts, port, acctPort, challengeStates));
  write('clients.conf', clientsConf(opts.clients));
  write('mods-config/files/authorize', usersFile(opts.users.filter((u) => u.challenge === undefined)));
  write('mods-enabled/pap', 'pap {\n\tnormalise = yes\n}\n');
  // MS-CHAPv1/v2 from NT-Password or Cleartext-Password; on success MS-CHAP2-Success, MS-MPPE-Send-Key,
  // -Recv-Key, -Encryption-Policy (2, required) and -Encryption-Types (4, 128-bit); on failure MS-CHAP-Error.
  write('mods-enabled/mschap', 'mschap {\n\tuse_mppe = yes\n\trequire_encryption = yes\n\trequire_strong = yes\n}\n');
  write('mods-enabled/files', 'files {\n\tmoddir = ${modconfdir}/${.:instance}\n\tfilename = ${moddir}/authorize\n}\n');
  write('mods-enabled/always', 'always ok {\n\trcode = ok\n}\nalways reject {\n\trcode = reject\n}\nalways handled {\n\trcode = handled\n}\n');
}

function radiusdConf(dir: string, opts: FreeRadiusOptions, port: number, acctPort: number, challengeStates: ReadonlyMap<string, string>): string {
  const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
  const threads = opts.threads ?? { start: 5, max: 32 };
  const recvBuff = opts.receiveBufferBytes === undefined ? '' : `\n\t\trecv_buff = ${Math.trunc(opts.receiveBufferBytes)}`;
  return `# Generated by test/peers/freeradius.ts: a self-contained FreeRADIUS 3.2 for one test.
prefix = /usr
exec_prefix = /usr
localstatedir = ${dir}
confdir = ${dir}
raddbdir = ${dir}
modconfdir = \${confdir}/mods-config
logdir = ${dir}/log
radacctdir = \${logdir}/radacct
run_dir = ${dir}/run
db_dir = ${dir}
libdir = /usr/lib/freeradius
name = radiusd
pidfile = \${run_dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 65536
hostname_lookups = no
proxy_requests = no

log {
	destination = stdout
	colourise = no
	file = \${logdir}/radius.log
	auth = ${yesNo(opts.logAuth === true)}
	auth_badpass = no
	auth_goodpass = no
}

security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = ${opts.rejectDelay ?? 0}
	status_server = ${yesNo(opts.statusServer !== false)}
}

thread pool {
	start_servers = ${threads.start}
	max_servers = ${threads.max}
	min_spare_servers = ${Math.min(3, threads.start)}
	max_spare_servers = ${Math.max(10, threads.start)}
	max_requests_per_server = 0
	auto_limit_acct = no
}

$INCLUDE clients.conf

modules {
	$INCLUDE mods-enabled/
}

server default {
	listen {
		type = auth
		ipaddr = ${HOST}
		port = ${port}${recvBuff}
	}
	listen {
		type = acct
		ipaddr = ${HOST}
		port = ${acctPort}${recvBuff}
	}
	authorize {
${opts.replyMessageAuthenticator === true ? '\t\tupdate reply {\n\t\t\t&Message-Authenticator := 0x00\n\t\t}\n' : ''}${authorizeSection(opts.users, challengeStates)}
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
		Auth-Type MS-CHAP {
			mschap
		}
	}
	accounting {
		ok
	}
}
`;
}

function clientsConf(clients: readonly FreeRadiusClient[]): string {
  return clients
    .map((c, i) => {
      const name = c.name ?? `client${i + 1}`;
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`bad FreeRADIUS client name ${JSON.stringify(name)}`);
      const [ip = ''] = c.address.split('/');
      if (isIP(ip) === 0) throw new Error(`FreeRADIUS client address must be an IP address or CIDR block: ${c.address}`);
      if (!/^[\x21-\x7e]+$/.test(c.secret) || /['"\\]/.test(c.secret)) {
        throw new Error('FreeRADIUS client secrets here must be printable ASCII without quotes or backslashes');
      }
      return `client ${name} {
	${isIP(ip) === 6 ? 'ipv6addr' : 'ipaddr'} = ${c.address}
	secret = '${c.secret}'
	shortname = ${name}
	require_message_authenticator = ${c.requireMessageAuthenticator === true ? 'yes' : 'no'}
}
`;
    })
    .join('\n');
}

const UNLANG_SAFE = /^[\x20-\x7e]+$/;
const HEX_STATE = /^0x(?:[0-9a-fA-F]{2}){1,253}$/;

/**
 * The authorize section: users-file users go through `files` and `pap`; each challenge user gets
 * an unlang block that sends the Access-Challenge itself (control:Response-Packet-Type) or
 * accepts the answer (Auth-Type Accept).
 */
function authorizeSection(users: readonly FreeRadiusUser[], challengeStates: ReadonlyMap<string, string>): string {
  const challenged = users.filter((u) => u.challenge !== undefined);
  if (challenged.length === 0) return '\t\tfiles\n\t\tmschap\n\t\tpap';
  const literal = (what: string, v: string): string => {
    if (!UNLANG_SAFE.test(v) || /['\\]/.test(v)) throw new Error(`${what} must be printable ASCII without quotes or backslashes`);
    return `'${v}'`;
  };
  const blocks = challenged.map((u, i) => {
    const c = u.challenge as FreeRadiusChallenge;
    if (!SAFE_NAME.test(u.name)) throw new Error(`user name ${JSON.stringify(u.name)} is not safe for unlang`);
    if (u.cleartext === undefined) throw new Error(`challenge user ${u.name} needs cleartext`);
    const state = challengeStates.get(u.name) ?? '';
    if (!HEX_STATE.test(state)) throw new Error(`challenge state of ${u.name} must be 0x-prefixed hex`);
    const reply = Object.entries(u.reply ?? {}).map(([name, value]) => {
      if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad attribute name ${JSON.stringify(name)}`);
      return `\t\t\t\t\t&${name} := ${quoteValue(value)}\n`;
    });
    return `\t\t${i === 0 ? 'if' : 'elsif'} (&User-Name == '${u.name}') {
\t\t\tif (&State) {
\t\t\t\tif ((&State == ${state}) && (&User-Password == ${literal('challenge response', c.response)})) {
\t\t\t\t\tupdate reply {
${reply.join('')}\t\t\t\t\t}
\t\t\t\t\tupdate control {
\t\t\t\t\t\t&Auth-Type := Accept
\t\t\t\t\t}
\t\t\t\t}
\t\t\t\telse {
\t\t\t\t\treject
\t\t\t\t}
\t\t\t}
\t\t\telsif (&User-Password == ${literal('cleartext', u.cleartext)}) {
\t\t\t\tupdate reply {
\t\t\t\t\t&Reply-Message := ${literal('challenge prompt', c.prompt)}
\t\t\t\t\t&State := ${state}
\t\t\t\t}
\t\t\t\tupdate control {
\t\t\t\t\t&Response-Packet-Type := Access-Challenge
\t\t\t\t}
\t\t\t\thandled
\t\t\t}
\t\t\telse {
\t\t\t\treject
\t\t\t}
\t\t}
`;
  });
  return `${blocks.join('')}\t\telse {\n\t\t\tfiles\n\t\t\tmschap\n\t\t\tpap\n\t\t}`;
}

/** FreeRADIUS 3.2 `mods-config/files/authorize` format; values single-quoted (no xlat expansion). */
export function usersFile(users: readonly FreeRadiusUser[]): string {
  return users
    .map((u) => {
      if (!SAFE_NAME.test(u.name)) throw new Error(`user name ${JSON.stringify(u.name)} is not safe for a users file`);
      const check: string[] = [];
      if (u.cleartext !== undefined) check.push(`Cleartext-Password := ${quoteValue(u.cleartext)}`);
      if (u.crypt !== undefined) check.push(`Crypt-Password := ${quoteValue(u.crypt)}`);
      if (u.ntHash !== undefined) {
        if (!/^[0-9a-fA-F]{32}$/.test(u.ntHash)) throw new Error(`user ${u.name}: ntHash must be 32 hex digits`);
        check.push(`NT-Password := 0x${u.ntHash}`);
      }
      if (check.length === 0) throw new Error(`user ${u.name} has neither cleartext, crypt nor ntHash`);
      for (const [name, value] of Object.entries(u.check ?? {})) {
        if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad attribute name ${JSON.stringify(name)}`);
        check.push(`${name} == ${quoteValue(value)}`);
      }
      for (const name of u.absent ?? []) {
        if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad attribute name ${JSON.stringify(name)}`);
        check.push(`${name} !* ANY`);
      }
      const reply = Object.entries(u.reply ?? {}).map(([name, value]) => {
        if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(name)) throw new Error(`bad attribute name ${JSON.stringify(name)}`);
        return `\t${name} := ${quoteValue(value)}`;
      });
      return `${u.name} ${check.join(', ')}\n${reply.join(',\n')}${reply.length > 0 ? '\n' : ''}`;
    })
    .join('');
}
