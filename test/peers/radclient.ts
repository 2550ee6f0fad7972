import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertLoopback } from './ports.js';
import { trackChild } from './process-reaper.js';
import { binaryOrThrow } from './require-peer.js';
import { tempDir } from './temp.js';

/**
 * The real NAS: freeradius-utils' `radclient -x`, packets from a file (`-f`), replies parsed from
 * its output. Values are written single-quoted (checked on radclient 3.2.1: `\'` is the only
 * escape it reads back verbatim; inside double quotes it unescapes User-Password twice, so a
 * `\\t` becomes a TAB). Values with a backslash or a control character are refused: send those
 * with sendUdp and a hand-built packet.
 */

export type PacketType = 'auth' | 'acct' | 'status' | 'coa' | 'disconnect';
/** Attribute name → value, or several values for a repeated attribute. */
export type PacketSpec = Record<string, string | string[]>;

export interface RadclientOptions {
  host: string;
  port: number;
  secret: string;
  type: PacketType;
  /** One entry per packet; an empty list sends one empty packet (with Message-Authenticator for status). */
  packets: PacketSpec[];
  /** -c: send each packet this many times. */
  count?: number;
  /** -p: packets in flight at once (radclient's default is 1; then it stops at the first lost packet). */
  parallel?: number;
  /** -r: attempts per packet (radclient counts the first send). Default 3. */
  retries?: number;
  /** -t: seconds to wait for each reply. Default 2. */
  timeoutSec?: number;
  extraArgs?: string[];
}

export interface RadclientReply {
  /** 'Access-Accept', 'Access-Reject', 'Access-Challenge', 'Accounting-Response', … */
  code: string;
  id: number;
  /** Index into `packets` of the request this answers (radclient sends them in file order). */
  request: number;
  length: number;
  /** Attribute name → values in the order received, strings unquoted and unescaped. */
  attributes: Record<string, string[]>;
}

export interface RadclientResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  replies: RadclientReply[];
  /** Requests radclient gave up on ("No reply from server"). */
  noReply: number;
}

const HEX = /^0x[0-9a-fA-F]*$/;
const BARE = /^(-?\d+|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?)$/;

/** One attribute value as radclient (and FreeRADIUS' users file) reads it back byte for byte. */
export function quoteValue(value: string): string {
  if (HEX.test(value) || BARE.test(value)) return value;
  // eslint-disable-next-line no-control-regex
  if (/[\\\x00-\x1f\x7f]/.test(value)) {
    throw new Error(`value ${JSON.stringify(value)} has a backslash or control character, which radclient mangles; use sendUdp`);
  }
  return `'${value.replace(/'/g, "\\'")}'`;
}

const ATTRIBUTE_NAME = /^[A-Za-z][A-Za-z0-9._-]*$/;

/** Packets in radclient's `-f` format: `Name = value` lines, a blank line between packets. */
export function formatPackets(packets: readonly PacketSpec[]): string {
  return packets
    .map((packet) =>
      Object.entries(packet)
        .flatMap(([name, values]) => {
          if (!ATTRIBUTE_NAME.test(name)) throw new Error(`bad attribute name ${JSON.stringify(name)}`);
          return (Array.isArray(values) ? values : [values]).map((v) => `${name} = ${quoteValue(v)}\n`);
        })
        .join(''),
    )
    .join('\n');
}

export function radclientTarget(host: string, port: number): string {
  assertLoopback(host);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export async function radclient(opts: RadclientOptions): Promise<RadclientResult> {
  const binary = binaryOrThrow('radclient', 'freeradius-utils');
  const target = radclientTarget(opts.host, opts.port);
  let packets = opts.packets;
  if (packets.length === 0) packets = [opts.type === 'status' ? { 'Message-Authenticator': '0x00' } : {}];
  if (opts.type === 'status') {
    packets = packets.map((p) => ('Message-Authenticator' in p ? p : { ...p, 'Message-Authenticator': '0x00' }));
  }
  const dir = tempDir('radclient');
  try {
    const packetFile = join(dir.path, 'packets.txt');
    const secretFile = join(dir.path, 'secret');
    writeFileSync(packetFile, formatPackets(packets), { mode: 0o600 });
    // -S keeps the secret out of ps(1) and out of any log that records command lines.
    writeFileSync(secretFile, `${opts.secret}\n`, { mode: 0o600 });
    const args = ['-x', '-f', packetFile, '-S', secretFile, '-r', String(opts.retries ?? 3), '-t', String(opts.timeoutSec ?? 2)];
    if (opts.count !== undefined) args.push('-c', String(opts.count));
    if (opts.parallel !== undefined) args.push('-p', String(opts.parallel));
    args.push(...(opts.extraArgs ?? []), target, opts.type);
    const { exitCode, stdout, stderr } = await run(binary, args, packetFile);
    return { exitCode, stdout, stderr, replies: parseRadclientOutput(stdout, packets.length), noReply: countNoReply(`${stdout}\n${stderr}`) };
  } finally {
    dir.cleanup();
  }
}

function run(binary: string, args: string[], marker: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child, 'radclient', marker);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve({
        exitCode: code ?? (signal !== null ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

const SENT = /^Sent (\S+) Id (\d+) from \S+ to \S+ length \d+/;
const RECEIVED = /^Received (\S+) Id (\d+) from \S+ to \S+ length (\d+)/;
const ATTRIBUTE = /^\t([^\s=]+) = (.*)$/;

/**
 * Parse `radclient -x` output. Sent blocks assign each new Id to the next packet of the file
 * (a retransmission reuses its Id while outstanding); a Received block answers that packet.
 */
export function parseRadclientOutput(stdout: string, packetCount: number): RadclientReply[] {
  const replies: RadclientReply[] = [];
  const outstanding = new Map<number, number>();
  let nextRequest = 0;
  let current: RadclientReply | undefined;
  for (const line of stdout.split('\n')) {
    const sent = SENT.exec(line);
    if (sent !== null) {
      current = undefined;
      const id = Number(sent[2]);
      if (!outstanding.has(id)) outstanding.set(id, nextRequest++ % Math.max(packetCount, 1));
      continue;
    }
    const received = RECEIVED.exec(line);
    if (received !== null) {
      const id = Number(received[2]);
      current = { code: received[1] ?? '', id, request: outstanding.get(id) ?? -1, length: Number(received[3]), attributes: {} };
      outstanding.delete(id);
      replies.push(current);
      continue;
    }
    const attribute = ATTRIBUTE.exec(line);
    if (attribute !== null && current !== undefined) {
      const [, name = '', raw = ''] = attribute;
      (current.attributes[name] ??= []).push(unquote(raw));
      continue;
    }
    if (!line.startsWith('\t')) current = undefined;
  }
  return replies;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', "'": "'", '\\': '\\' };

function unquote(raw: string): string {
  if (!(raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"'))) return raw;
  return raw.slice(1, -1).replace(/\\([0-7]{3}|.)/g, (_m, esc: string) =>
    esc.length === 3 ? String.fromCharCode(parseInt(esc, 8)) : (ESCAPES[esc] ?? esc),
  );
}

// radclient 3.2.1 prints "(N) No reply from server for ID …" on stdout, not stderr.
function countNoReply(output: string): number {
  return output.split('\n').filter((l) => l.includes('No reply from server')).length;
}
