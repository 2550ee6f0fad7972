/**
 * The upstream RADIUS client behind a `radius:<upstream>` first factor: the user's password is
 * forwarded to an existing RADIUS server (NPS, FreeRADIUS, a token server) and its answer comes
 * back as accept, reject or challenge with the reply attributes the NAS should get.
 *
 * What goes out. An Access-Request with Message-Authenticator as its FIRST attribute (Blast-RADIUS,
 * CVE-2024-3596: it makes the bytes an MD5 collision would need unpredictable), User-Name, the
 * password hidden with this server's secret and a fresh Request Authenticator (RFC 2865 §5.2),
 * State when answering a challenge, the NAS's descriptive attributes, and last a Proxy-State of
 * our own (16 random octets per request, RFC 2865 §5.33). Credentials and hop-by-hop attributes of
 * the NAS's request are never copied: User-Password, CHAP-*, MS-CHAP, ARAP, EAP-Message, State,
 * Proxy-State (the NAS's Proxy-State is echoed by our own front end) and Message-Authenticator.
 * RFC 2865 §4.1 wants NAS-IP-Address or NAS-Identifier; `nasIdentifier` fills in when the NAS
 * sent neither. An MS-CHAPv2 login goes up in the one typed way that carries MS-CHAP attributes,
 * `msChapV2` (MS-CHAP-Challenge and MS-CHAP2-Response as the NAS sent them), in place of a password.
 *
 * What counts as an answer. A datagram from the server's address and port, with an identifier in
 * flight on that socket, code Access-Accept/Reject/Challenge, a valid Response Authenticator AND a
 * valid Message-Authenticator (both required, compared in constant time: codec verifyReply), and
 * our Proxy-State echoed. Anything else is ignored, counted and logged (rate limited), and the
 * request keeps waiting: a forged or stray packet can neither answer it nor make it give up.
 * Servers that send no Message-Authenticator are therefore never heard: FreeRADIUS before 3.2.5
 * adds none to non-EAP replies unless told (`update reply { Message-Authenticator := 0x00 }` in
 * authorize, as test/peers/freeradius.ts does); upgrade or configure such servers.
 *
 * What goes back. Reply attributes minus Message-Authenticator and Proxy-State (ours), and minus
 * State on a challenge (returned as `state`). An Access-Reject keeps only Reply-Message and
 * MS-CHAP-Error (RFC 2548 §2.1.5: why an MS-CHAP login failed, for the NAS to tell the user's
 * device): FreeRADIUS 3.2 leaks users-file reply items (groups, filters) into rejects that a NAS
 * has no business seeing. MS-MPPE-Send-Key and -Recv-Key of an accept are hidden with this
 * server's secret and the authenticator of our request (RFC 2548 §2.4.2, §2.4.3): they are
 * decrypted here into `mppeKeys` and taken out of the attributes, for the front end to encrypt
 * again for the NAS. MS-CHAP-MPPE-Keys (MS-CHAPv1, §2.4.1) is dropped: no MS-CHAPv1 goes up.
 *
 * Retransmission and failover, compared with FreeRADIUS (proxy.conf home_server,
 * home_server_pool type = fail-over) and RFC 5080 §2.2:
 * - Each server gets `tries` transmissions `timeoutMs` apart, byte-identical (same identifier and
 *   authenticator), so the server recognises a retransmission and answers it from its duplicate
 *   cache instead of checking the password twice. FreeRADIUS 3 as a proxy only retransmits when
 *   the NAS does; here the NAS's retransmissions join the attempt in flight (duplicates.ts) and
 *   never reach this module, so it keeps its own schedule. The interval is fixed rather than RFC
 *   5080's exponential backoff because a NAS is waiting: the worst case must be a number an
 *   admin can set below the NAS's timeout, and it is timeoutMs × tries × servers.
 * - The next server gets a new request: new identifier, new Request Authenticator, the password
 *   re-hidden with its own secret. Servers already tried keep listening until the forward ends:
 *   a late answer from one is as good as any, and sooner than waiting out the next server.
 * - A server is marked dead when it used up its tries on a request AND sent no valid reply at all
 *   since that request first went to it: one request that a busy server (or a slow directory
 *   behind it) drops does not take it out while it answers everyone else. This is FreeRADIUS's
 *   response_window/zombie test; with no Status-Server probing (NPS does not answer Status-Server)
 *   its zombie and dead states collapse into one, and `deadTimeMs` plays revive_interval. A dead
 *   server is skipped for deadTimeMs (default 30 s), then tried again; any valid reply, late ones
 *   included, marks it alive at once. When every server is dead they are all tried anyway, in
 *   order (FreeRADIUS's wake_all_if_all_dead = yes): a slow answer beats a certain failure. Each
 *   outage logs one line when it starts and one when it ends, at most 4 lines per server per
 *   minute for a server that flaps.
 * - Answering a challenge (`server` set from the challenge's answer) goes to that server only: the
 *   State means nothing to the others, which would reject, and a reject would count as a failed
 *   login where the truth is "unavailable".
 *
 * Identifiers and sockets. One UDP socket per server, opened on first use, 256 identifiers in
 * flight on it, handed out least recently used first so a late duplicate answer rarely meets its
 * identifier reused (and if it does, the Request Authenticator it was signed with no longer
 * matches). When all 256 are taken another socket opens (another source port: a new identifier
 * space for the server), up to `maxSocketsPerServer`; beyond that requests queue FIFO, and the
 * wait counts against that server's timeoutMs × tries, so queueing never breaks the bound (a
 * request that got no identifier in time moves on without marking the server dead: the congestion
 * is ours). Timers are per request.
 *
 * Never logged: the password, the MS-CHAP response, MPPE keys, the secret, State values. Host names are resolved once, on first
 * use; a new RadiusUpstream (config reload) resolves again.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { randomOctets } from '../crypto/random.js';
import { InvalidInputError, UpstreamUnavailable, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import {
  AttributeType,
  Code,
  MAX_PASSWORD_LENGTH,
  RadiusDecodeError,
  RadiusEncodeError,
  attr,
  decodePacket,
  encodeAccessRequest,
  MS_CHAP2_RESPONSE_LENGTH,
  MS_CHAP_CHALLENGE_LENGTH,
  MicrosoftAttributeType,
  VendorId,
  decryptMppeKey,
  parseIpv4,
  parseIpv6,
  readText,
  readVendorSpecific,
  verifyReply,
  type RadiusAttribute,
  type RadiusPacket,
} from './codec/index.js';
import { LINES_PER_MINUTE, RateLimitedLog } from '../rate-limited-log.js';

export interface UpstreamServer {
  /** An IP address or a host name (resolved once, on first use). */
  readonly host: string;
  readonly port: number;
  readonly secret: Buffer;
}

export interface RadiusUpstreamOptions {
  /** The upstream's name in the config (`radius:<name>`), for logs and errors. */
  readonly name: string;
  /** Tried in order; failover to the next when one does not answer. */
  readonly servers: readonly UpstreamServer[];
  /** Per try. */
  readonly timeoutMs: number;
  /** Transmissions per server (the first one included); retransmissions are byte-identical. */
  readonly tries: number;
  readonly log: Logger;
  /** After a server failed, skip it for this long unless all are marked down (then try them anyway). Default 30000. */
  readonly deadTimeMs?: number;
  /** NAS-Identifier to send when the NAS's request carried neither NAS-IP-Address, NAS-IPv6-Address nor NAS-Identifier. */
  readonly nasIdentifier?: string;
  /** Local address the sockets bind to. Default: the wildcard address of the server's family. */
  readonly sourceAddress?: string;
  /** Sockets per server, each with 256 requests in flight. Default 16 (4096 in flight); more requests queue. */
  readonly maxSocketsPerServer?: number;
  /** SO_RCVBUF of each socket (capped by net.core.rmem_max). Default 1 MiB: a burst of answers must not overflow it. */
  readonly receiveBufferBytes?: number;
  /**
   * Accept only replies that carry a valid Message-Authenticator (default true: the Blast-RADIUS
   * defence). false, for an upstream that cannot send one (FreeRADIUS before 3.2.5 on PAP): a
   * Message-Authenticator that is present must still be valid; warned at construction.
   */
  readonly requireMessageAuthenticator?: boolean;
}

/** An MS-CHAPv2 login (RFC 2759) as RFC 2548 carries it: the proof of the password, never the password. */
export interface UpstreamMsChapV2 {
  /** MS-CHAP-Challenge: the NAS's authenticator challenge, 16 octets. */
  readonly challenge: Buffer;
  /** MS-CHAP2-Response: Ident, Flags, Peer-Challenge, 8 reserved octets, NT-Response; 50 octets. */
  readonly response: Buffer;
}

export interface UpstreamRequest {
  readonly username: string;
  /** Clear text; re-hidden with the upstream secret (RFC 2865 §5.2). Not with `msChapV2`. */
  readonly password?: Buffer;
  /**
   * An MS-CHAPv2 login instead of a password: sent as MS-CHAP-Challenge and MS-CHAP2-Response
   * Vendor-Specific attributes (Microsoft, 311), the values unchanged, so that a server holding
   * the user's NT hash (NPS, FreeRADIUS) can check it and answer with MS-CHAP2-Success and MPPE
   * keys. The only way MS-CHAP attributes go upstream: in `attributes` they are dropped.
   */
  readonly msChapV2?: UpstreamMsChapV2;
  /** State from an upstream Access-Challenge, when answering it. */
  readonly state?: Buffer;
  /**
   * The challenging server ("host:port", UpstreamAnswer.server) when answering a challenge: the
   * answer goes there and nowhere else. Ignored if no configured server has that name any more.
   */
  readonly server?: string;
  /**
   * Attributes of the NAS's request to copy upstream: NAS-Identifier, NAS-IP-Address, NAS-Port,
   * NAS-Port-Type, Calling-Station-Id, Called-Station-Id, Framed-Protocol, Service-Type, and vendor
   * ones. Never copied (dropped here whatever the caller passes): User-Name (from `username`),
   * User-Password, CHAP-*, MS-CHAP (an MS-CHAPv2 login goes as `msChapV2`), ARAP-Password, EAP-Message,
   * Message-Authenticator, Proxy-State, State.
   */
  readonly attributes: readonly RadiusAttribute[];
}

export interface UpstreamAnswer {
  readonly code: 'accept' | 'reject' | 'challenge';
  /**
   * Reply attributes to pass back to the NAS: everything except Message-Authenticator, Proxy-State,
   * (for challenges) State and MPPE keys (see `mppeKeys`), e.g. Class, Filter-Id, Framed-*,
   * Session-Timeout, Reply-Message, Vendor-Specific (MS-CHAP2-Success, MS-MPPE-Encryption-*). For a
   * reject only Reply-Message and MS-CHAP-Error.
   */
  readonly attributes: readonly RadiusAttribute[];
  /** On challenge. */
  readonly state?: Buffer;
  /** All Reply-Message attributes, concatenated in order. */
  readonly replyMessage?: string;
  /** "host:port" ("[host]:port" for IPv6) that answered, as configured. */
  readonly server: string;
  /** From the first transmission to the answering server to its answer. */
  readonly roundTripMs: number;
  /**
   * On accept: MS-MPPE-Send-Key / MS-MPPE-Recv-Key in the clear (RFC 2548 §2.4.2, §2.4.3),
   * decrypted with this server's secret and our request's authenticator. Never log them.
   */
  readonly mppeKeys?: UpstreamMppeKeys;
}

export interface UpstreamMppeKeys {
  readonly sendKey?: Buffer;
  readonly recvKey?: Buffer;
}

export type IgnoredReplyReason =
  /** Not from the server's address and port. */
  | 'wrong_source'
  | 'malformed'
  /** No request with that identifier in flight on the socket (a late duplicate, usually). */
  | 'unknown_identifier'
  /** Not Access-Accept, -Reject or -Challenge. */
  | 'unexpected_code'
  /** Response Authenticator or Message-Authenticator wrong or missing (wrong secret, forgery). */
  | 'bad_authenticator'
  /** Our Proxy-State did not come back. */
  | 'missing_proxy_state';

export interface UpstreamCounters {
  /** forward() calls. */
  requests: number;
  accepts: number;
  rejects: number;
  challenges: number;
  /** forward() calls that ended in UpstreamUnavailable. */
  unavailable: number;
  /** Datagrams sent, retransmissions included. */
  sent: number;
  retransmissions: number;
  /** A server used up its tries on a request. */
  serverTimeouts: number;
  /** A request moved on to the next server. */
  failovers: number;
  ignored: Record<IgnoredReplyReason, number>;
}

export interface UpstreamServerStatus {
  /** "host:port" ("[host]:port" for IPv6), as configured. */
  readonly server: string;
  /** False while the server is skipped after failing. */
  readonly alive: boolean;
  /** Milliseconds until a dead server is tried again (0 when alive). */
  readonly deadForMs: number;
  readonly sockets: number;
  readonly inFlight: number;
  readonly queued: number;
}

const ID_SPACE = 256;
const DEFAULT_DEAD_TIME_MS = 30_000;
const DEFAULT_MAX_SOCKETS = 16;
const DEFAULT_RECEIVE_BUFFER = 1 << 20;
const PROXY_STATE_LENGTH = 16;
/** Outage start/end lines per server per minute, before the rest are only counted. */
const STATE_LINES_PER_MINUTE = 4;

// Credentials and hop-by-hop attributes of the NAS's request: never sent upstream.
const NEVER_FORWARDED: ReadonlySet<number> = new Set([
  AttributeType.UserName,
  AttributeType.UserPassword,
  AttributeType.ChapPassword,
  AttributeType.State,
  AttributeType.ProxyState,
  AttributeType.ChapChallenge,
  AttributeType.ArapPassword,
  AttributeType.EapMessage,
  AttributeType.MessageAuthenticator,
]);
// RFC 2548: MS-CHAP-Response, -CPW-1, -CPW-2, -LM-Enc-PW, -NT-Enc-PW, -Challenge, MS-CHAP2-Response, -CPW.
const MS_CHAP_TYPES: ReadonlySet<number> = new Set([1, 3, 4, 5, 6, 11, 25, 27]);

const ANSWER_CODES: ReadonlyMap<number, UpstreamAnswer['code']> = new Map([
  [Code.AccessAccept, 'accept'],
  [Code.AccessReject, 'reject'],
  [Code.AccessChallenge, 'challenge'],
]);

function forwardable(a: RadiusAttribute): boolean {
  if (NEVER_FORWARDED.has(a.type)) return false;
  if (a.type === AttributeType.VendorSpecific) {
    const vsa = readVendorSpecific(a.value);
    // A Microsoft VSA we cannot split could hide an MS-CHAP credential: drop it too.
    if (vsa?.vendorId === VendorId.Microsoft && (vsa.attributes === undefined || vsa.attributes.some((s) => MS_CHAP_TYPES.has(s.type)))) return false;
  }
  return true;
}

function ipBytes(address: string): Buffer | undefined {
  const bare = address.replace(/%.*$/, '');
  return isIP(bare) === 4 ? parseIpv4(bare) : parseIpv6(bare);
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const x = ipBytes(a);
  const y = ipBytes(b);
  return x !== undefined && y !== undefined && x.equals(y);
}

function label(server: UpstreamServer): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** Identifiers of one socket, least recently released first. */
class IdentifierPool {
  private readonly ring = new Uint8Array(ID_SPACE);
  private head = 0;
  private count = ID_SPACE;

  constructor() {
    // A random starting order: nothing depends on it, but predictable identifiers help nobody.
    const order = [...Array(ID_SPACE).keys()];
    const noise = randomBytes(ID_SPACE * 2);
    for (let i = ID_SPACE - 1; i > 0; i--) {
      const j = noise.readUInt16BE(i * 2) % (i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    this.ring.set(order);
  }

  get free(): number {
    return this.count;
  }

  acquire(): number | undefined {
    if (this.count === 0) return undefined;
    const id = this.ring[this.head] as number;
    this.head = (this.head + 1) % ID_SPACE;
    this.count--;
    return id;
  }

  release(id: number): void {
    this.ring[(this.head + this.count) % ID_SPACE] = id;
    this.count++;
  }
}

/** One request to one server through one socket identifier. */
interface Exchange {
  readonly authenticator: Buffer;
  readonly proxyState: Buffer;
  onReply(reply: RadiusPacket): void;
}

interface UpstreamSocket {
  readonly socket: Socket;
  readonly ids: IdentifierPool;
  readonly exchanges: (Exchange | undefined)[];
}

interface Slot {
  readonly socket: UpstreamSocket;
  readonly id: number;
}

interface Waiter {
  readonly grant: (slot: Slot | undefined) => void;
}

/** What one server's share of a forward came to: the forward has its result, or this server failed. */
const SETTLED = Symbol('settled');
type TryOutcome = typeof SETTLED | { readonly failed: string };

type IgnoreHandler = (link: ServerLink, reason: IgnoredReplyReason, rinfo: RemoteInfo) => void;

/** One configured server: its sockets, identifiers, queue and health. */
class ServerLink {
  readonly label: string;
  readonly sockets: UpstreamSocket[] = [];
  /** performance.now() until which the server is skipped. */
  deadUntil = 0;
  /** Marked dead and no valid reply since. */
  down = false;
  lastValidReplyAt = -Infinity;
  stateLines = { start: -Infinity, count: 0, suppressed: 0 };
  private address: string | undefined;
  private opening: Promise<void> | undefined;
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(
    readonly server: UpstreamServer,
    private readonly opts: { sourceAddress: string | undefined; maxSockets: number; receiveBufferBytes: number; requireMessageAuthenticator: boolean },
    private readonly onValid: (link: ServerLink) => void,
    private readonly onIgnored: IgnoreHandler,
  ) {
    this.label = label(server);
  }

  isDead(now: number): boolean {
    return this.deadUntil > now;
  }

  inFlight(): number {
    return this.sockets.reduce((n, s) => n + ID_SPACE - s.ids.free, 0);
  }

  queued(): number {
    return this.waiters.length;
  }

  /** An identifier on some socket, or undefined when none came free before `deadline` or before `forward` settled. */
  async acquire(deadline: number, forward: SettleHook): Promise<Slot | undefined> {
    for (;;) {
      if (forward.settled || this.closed) return undefined;
      for (const socket of this.sockets) {
        const id = socket.ids.acquire();
        if (id !== undefined) return { socket, id };
      }
      if (this.sockets.length < this.opts.maxSockets) {
        this.opening ??= this.open().finally(() => {
          this.opening = undefined;
        });
        await this.opening;
        continue;
      }
      return this.wait(deadline, forward);
    }
  }

  release(slot: Slot): void {
    slot.socket.exchanges[slot.id] = undefined;
    slot.socket.ids.release(slot.id);
    const waiter = this.waiters.shift();
    // The least recently used identifier, not necessarily the one just freed.
    if (waiter !== undefined) waiter.grant({ socket: slot.socket, id: slot.socket.ids.acquire() as number });
  }

  send(slot: Slot, packet: Buffer, onError: (err: Error) => void): void {
    const address = this.address;
    if (this.closed || address === undefined) return;
    try {
      slot.socket.socket.send(packet, this.server.port, address, (err) => {
        if (err) onError(err);
      });
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.grant(undefined);
    await this.opening?.catch(() => undefined);
    await Promise.all(this.sockets.map((s) => new Promise<void>((resolve) => s.socket.close(() => resolve()))));
    this.sockets.length = 0;
  }

  private wait(deadline: number, forward: SettleHook): Promise<Slot | undefined> {
    return new Promise((resolve) => {
      let waiting = true;
      const done = (slot: Slot | undefined): void => {
        waiting = false;
        clearTimeout(timer);
        resolve(slot);
      };
      const waiter: Waiter = { grant: done };
      const leave = (): void => {
        // Also called when the forward settles after this wait ended: nothing to do then.
        if (!waiting) return;
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        done(undefined);
      };
      const timer = setTimeout(leave, Math.max(0, deadline - performance.now()));
      forward.onSettle(leave);
      this.waiters.push(waiter);
    });
  }

  private async resolve(): Promise<string> {
    if (this.address !== undefined) return this.address;
    const host = this.server.host;
    this.address = isIP(host) !== 0 ? host : (await lookup(host)).address;
    return this.address;
  }

  private async open(): Promise<void> {
    const address = await this.resolve();
    const type = isIP(address) === 6 ? 'udp6' : 'udp4';
    const socket = createSocket({ type, recvBufferSize: this.opts.receiveBufferBytes });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port: 0, ...(this.opts.sourceAddress === undefined ? {} : { address: this.opts.sourceAddress }) }, () => {
        socket.removeListener('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw err;
    });
    if (this.closed) {
      socket.close();
      return;
    }
    // Our sockets must not keep a finished process alive; requests in flight hold their own timers.
    socket.unref();
    const upstreamSocket: UpstreamSocket = { socket, ids: new IdentifierPool(), exchanges: new Array<Exchange | undefined>(ID_SPACE) };
    // A receive error (e.g. ICMP port unreachable reported on the socket) says nothing about which request.
    socket.on('error', () => undefined);
    socket.on('message', (msg, rinfo) => this.receive(upstreamSocket, msg, rinfo));
    this.sockets.push(upstreamSocket);
  }

  private receive(socket: UpstreamSocket, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.address === undefined || rinfo.port !== this.server.port || !sameAddress(rinfo.address, this.address)) {
      return this.onIgnored(this, 'wrong_source', rinfo);
    }
    const reply = decodePacket(msg);
    if (reply instanceof RadiusDecodeError) return this.onIgnored(this, 'malformed', rinfo);
    const exchange = socket.exchanges[reply.identifier];
    if (exchange === undefined) return this.onIgnored(this, 'unknown_identifier', rinfo);
    if (!ANSWER_CODES.has(reply.code)) return this.onIgnored(this, 'unexpected_code', rinfo);
    if (!verifyReply(reply, exchange.authenticator, this.server.secret, { requireMessageAuthenticator: this.opts.requireMessageAuthenticator })) {
      return this.onIgnored(this, 'bad_authenticator', rinfo);
    }
    if (!reply.attributes.some((a) => a.type === AttributeType.ProxyState && a.value.length === PROXY_STATE_LENGTH && timingSafeEqual(a.value, exchange.proxyState))) {
      return this.onIgnored(this, 'missing_proxy_state', rinfo);
    }
    this.onValid(this);
    exchange.onReply(reply);
  }
}

/** What a wait for an identifier watches: it ends when the forward it serves has settled. */
interface SettleHook {
  readonly settled: boolean;
  /** Runs `fn` once the forward settles (at once if it has). */
  onSettle(fn: () => void): void;
}

/**
 * The state of one forward() call across servers. Its own settle callbacks end whatever still
 * waits for it; an AbortController did this before, and its abort() built a DOMException on every
 * answered forward (about 15 µs each, measured in a loop on Node 20).
 */
class Forwarding implements SettleHook {
  readonly slots: Array<{ link: ServerLink; slot: Slot }> = [];
  readonly result: Promise<UpstreamAnswer>;
  private settleCallbacks: Array<() => void> = [];
  private resolveResult!: (answer: UpstreamAnswer) => void;
  private rejectResult!: (err: Error) => void;
  private done = false;

  constructor(
    readonly attributes: readonly RadiusAttribute[],
    readonly password: Buffer | undefined,
    readonly proxyState: Buffer,
  ) {
    this.result = new Promise<UpstreamAnswer>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // Observed through `await result` by forward(); this keeps an early rejection from being reported as unhandled.
    this.result.catch(() => undefined);
  }

  get settled(): boolean {
    return this.done;
  }

  onSettle(fn: () => void): void {
    if (this.done) fn();
    else this.settleCallbacks.push(fn);
  }

  answer(answer: UpstreamAnswer): boolean {
    if (this.done) return false;
    this.resolveResult(answer);
    this.settle();
    return true;
  }

  fail(err: Error): void {
    if (this.done) return;
    this.rejectResult(err);
    this.settle();
  }

  releaseAll(): void {
    for (const { link, slot } of this.slots.splice(0)) link.release(slot);
  }

  private settle(): void {
    this.done = true;
    for (const fn of this.settleCallbacks.splice(0)) fn();
  }
}

export class RadiusUpstream {
  readonly counters: UpstreamCounters = {
    requests: 0,
    accepts: 0,
    rejects: 0,
    challenges: 0,
    unavailable: 0,
    sent: 0,
    retransmissions: 0,
    serverTimeouts: 0,
    failovers: 0,
    ignored: {
      wrong_source: 0,
      malformed: 0,
      unknown_identifier: 0,
      unexpected_code: 0,
      bad_authenticator: 0,
      missing_proxy_state: 0,
    },
  };

  private readonly links: ServerLink[];
  private readonly log: Logger;
  private readonly ignoredLog: RateLimitedLog;
  private readonly deadTimeMs: number;
  private readonly active = new Set<Forwarding>();
  private closed = false;

  constructor(private readonly opts: RadiusUpstreamOptions) {
    const where = `upstream radius:${opts.name}`;
    if (opts.servers.length === 0) throw new InvalidInputError(`${where}: no servers`);
    if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs < 1) throw new InvalidInputError(`${where}: timeoutMs must be a positive integer`);
    if (!Number.isInteger(opts.tries) || opts.tries < 1) throw new InvalidInputError(`${where}: tries must be a positive integer`);
    const deadTimeMs = opts.deadTimeMs ?? DEFAULT_DEAD_TIME_MS;
    if (!Number.isFinite(deadTimeMs) || deadTimeMs < 0) throw new InvalidInputError(`${where}: deadTimeMs must be 0 or more`);
    const maxSockets = opts.maxSocketsPerServer ?? DEFAULT_MAX_SOCKETS;
    if (!Number.isInteger(maxSockets) || maxSockets < 1) throw new InvalidInputError(`${where}: maxSocketsPerServer must be a positive integer`);
    for (const s of opts.servers) {
      if (s.secret.length === 0) throw new InvalidInputError(`${where}: server ${label(s)} has an empty secret`);
      if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) throw new InvalidInputError(`${where}: server ${label(s)}: bad port`);
    }
    this.deadTimeMs = deadTimeMs;
    this.log = opts.log.child({ module: 'radius-upstream', upstream: opts.name });
    this.ignoredLog = new RateLimitedLog(this.log, LINES_PER_MINUTE);
    const linkOpts = {
      sourceAddress: opts.sourceAddress,
      maxSockets,
      receiveBufferBytes: opts.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER,
      requireMessageAuthenticator: opts.requireMessageAuthenticator ?? true,
    };
    if (!linkOpts.requireMessageAuthenticator) {
      this.log.warn('replies without a Message-Authenticator are accepted from this upstream: it is open to forged replies (Blast-RADIUS, CVE-2024-3596); upgrade it and turn require_message_authenticator back on');
    }
    this.links = opts.servers.map(
      (s) =>
        new ServerLink(
          s,
          linkOpts,
          (link) => this.markAlive(link),
          (link, reason, rinfo) => this.ignored(link, reason, rinfo),
        ),
    );
  }

  /**
   * Sends the request to the first live server (failing over in order) and returns its answer.
   * Throws UpstreamUnavailable when no server gave a valid answer, RadiusEncodeError (before
   * sending anything) when the request cannot be a RADIUS packet: an empty or over-long user name,
   * a password over 128 octets.
   */
  async forward(req: UpstreamRequest): Promise<UpstreamAnswer> {
    if (this.closed) throw new UpstreamUnavailable(`upstream radius:${this.opts.name} is closed`);
    if (req.password !== undefined && req.password.length > MAX_PASSWORD_LENGTH) {
      throw new RadiusEncodeError(`a User-Password holds at most ${MAX_PASSWORD_LENGTH} octets, not ${req.password.length}`);
    }
    if (req.msChapV2 !== undefined) {
      if (req.password !== undefined) throw new InvalidInputError('an upstream request carries a password or an MS-CHAPv2 response, not both');
      const { challenge, response } = req.msChapV2;
      if (challenge.length !== MS_CHAP_CHALLENGE_LENGTH || response.length !== MS_CHAP2_RESPONSE_LENGTH) {
        throw new RadiusEncodeError(
          `MS-CHAPv2 needs a ${MS_CHAP_CHALLENGE_LENGTH}-octet MS-CHAP-Challenge and a ${MS_CHAP2_RESPONSE_LENGTH}-octet MS-CHAP2-Response, not ${challenge.length} and ${response.length}`,
        );
      }
    }
    this.counters.requests++;
    const proxyState = randomOctets(PROXY_STATE_LENGTH);
    const attributes = [...this.requestAttributes(req), { type: AttributeType.ProxyState, value: proxyState }];
    const f = new Forwarding(attributes, req.password, proxyState);
    const pinned = req.server === undefined ? undefined : this.links.find((l) => l.label === req.server);
    const tried: ServerLink[] = [];
    const failures: string[] = [];
    this.active.add(f);
    try {
      for (let link = this.pick(tried, pinned); link !== undefined; link = this.pick(tried, pinned)) {
        if (tried.length > 0) this.counters.failovers++;
        tried.push(link);
        const outcome = await this.tryServer(link, f);
        if (outcome === SETTLED) break;
        failures.push(`${link.label} ${outcome.failed}`);
        if (f.settled) break;
      }
      if (!f.settled) {
        this.counters.unavailable++;
        const what = failures.length === 0 ? 'no server to try' : failures.join('; ');
        f.fail(new UpstreamUnavailable(`upstream radius:${this.opts.name}: no valid answer (${what})`));
      }
      return await f.result;
    } finally {
      this.active.delete(f);
      f.releaseAll();
    }
  }

  /** Health and load per server, in configured order. */
  status(): UpstreamServerStatus[] {
    const now = performance.now();
    return this.links.map((l) => ({
      server: l.label,
      alive: !l.isDead(now),
      deadForMs: Math.max(0, Math.ceil(l.deadUntil - now)),
      sockets: l.sockets.length,
      inFlight: l.inFlight(),
      queued: l.queued(),
    }));
  }

  /** Fails the forwards in flight with UpstreamUnavailable and closes every socket. */
  async close(): Promise<void> {
    this.closed = true;
    for (const f of this.active) f.fail(new UpstreamUnavailable(`upstream radius:${this.opts.name} closed while waiting for an answer`));
    await Promise.all(this.links.map((l) => l.close()));
  }

  /** The next server: the first untried live one; if every server is dead, the first untried one. */
  private pick(tried: readonly ServerLink[], pinned: ServerLink | undefined): ServerLink | undefined {
    if (this.closed) return undefined;
    if (pinned !== undefined) return tried.length === 0 ? pinned : undefined;
    const now = performance.now();
    const untried = this.links.filter((l) => !tried.includes(l));
    return untried.find((l) => !l.isDead(now)) ?? (this.links.every((l) => l.isDead(now)) ? untried[0] : undefined);
  }

  /** One server's share of a forward: SETTLED once the forward has its result, else why this server failed. */
  private async tryServer(link: ServerLink, f: Forwarding): Promise<TryOutcome> {
    const budgetMs = this.opts.timeoutMs * this.opts.tries;
    let slot: Slot | undefined;
    try {
      slot = await link.acquire(performance.now() + budgetMs, f);
    } catch (err) {
      // Name resolution or socket trouble: the server cannot be reached from here.
      this.log.error({ server: link.label, err: errorMessage(err) }, 'cannot send to upstream RADIUS server');
      this.markDead(link);
      return f.settled ? SETTLED : { failed: `unreachable (${errorMessage(err)})` };
    }
    if (slot === undefined) return f.settled ? SETTLED : { failed: `busy: no free identifier within ${budgetMs} ms` };
    f.slots.push({ link, slot });
    if (f.settled) return SETTLED;

    const { packet, authenticator } = encodeAccessRequest({
      identifier: slot.id,
      secret: link.server.secret,
      attributes: f.attributes,
      ...(f.password === undefined ? {} : { password: f.password }),
    });
    const firstSentAt = performance.now();
    slot.socket.exchanges[slot.id] = {
      authenticator,
      proxyState: f.proxyState,
      onReply: (reply) => {
        const answer = this.toAnswer(reply, link, authenticator, firstSentAt);
        if (f.answer(answer)) this.count(answer);
      },
    };

    return new Promise((resolve) => {
      let sent = 0;
      const transmit = (): void => {
        sent++;
        this.counters.sent++;
        if (sent > 1) this.counters.retransmissions++;
        link.send(slot, packet, (err) => this.ignoredLog.warn(`${link.label}|send`, { server: link.label, err: err.message }, 'send to upstream RADIUS server failed'));
      };
      const timer = setInterval(() => {
        if (sent < this.opts.tries) return transmit();
        clearInterval(timer);
        this.counters.serverTimeouts++;
        // Dead only if it answered nobody since this request first went out (see the module comment).
        if (link.lastValidReplyAt < firstSentAt) this.markDead(link);
        resolve({ failed: `no valid answer to ${sent} tries of ${this.opts.timeoutMs} ms` });
      }, this.opts.timeoutMs);
      f.onSettle(() => {
        clearInterval(timer);
        resolve(SETTLED);
      });
      if (!f.settled) transmit();
    });
  }

  private requestAttributes(req: UpstreamRequest): RadiusAttribute[] {
    const copied = req.attributes.filter(forwardable);
    const out: RadiusAttribute[] = [attr.text(AttributeType.UserName, req.username)];
    if (req.state !== undefined) out.push(attr.octets(AttributeType.State, req.state));
    out.push(...copied);
    if (req.msChapV2 !== undefined) {
      out.push(
        attr.vendorSpecific(VendorId.Microsoft, MicrosoftAttributeType.MsChapChallenge, req.msChapV2.challenge),
        attr.vendorSpecific(VendorId.Microsoft, MicrosoftAttributeType.MsChap2Response, req.msChapV2.response),
      );
    }
    const identified = copied.some((a) => a.type === AttributeType.NasIdentifier || a.type === AttributeType.NasIpAddress || a.type === AttributeType.NasIpv6Address);
    if (!identified && this.opts.nasIdentifier !== undefined) out.push(attr.text(AttributeType.NasIdentifier, this.opts.nasIdentifier));
    return out;
  }

  private toAnswer(reply: RadiusPacket, link: ServerLink, requestAuthenticator: Buffer, firstSentAt: number): UpstreamAnswer {
    const code = ANSWER_CODES.get(reply.code) as UpstreamAnswer['code'];
    const keys: { sendKey?: Buffer; recvKey?: Buffer } = {};
    const kept: RadiusAttribute[] = [];
    for (const a of reply.attributes) {
      if (a.type === AttributeType.MessageAuthenticator || a.type === AttributeType.ProxyState) continue;
      if (code === 'challenge' && a.type === AttributeType.State) continue;
      if (a.type === AttributeType.VendorSpecific && readVendorSpecific(a.value)?.vendorId === VendorId.Microsoft) {
        kept.push(...this.microsoftAttributes(a, code, link, requestAuthenticator, keys));
        continue;
      }
      if (code === 'reject' && a.type !== AttributeType.ReplyMessage) continue;
      kept.push(a);
    }
    const attributes = kept.map((a) => Object.freeze({ type: a.type, value: Buffer.from(a.value) }));
    const messages = attributes.filter((a) => a.type === AttributeType.ReplyMessage);
    const state = code === 'challenge' ? reply.attributes.find((a) => a.type === AttributeType.State)?.value : undefined;
    return {
      code,
      attributes,
      ...(state === undefined ? {} : { state: Buffer.from(state) }),
      ...(messages.length === 0 ? {} : { replyMessage: readText(Buffer.concat(messages.map((a) => a.value))) }),
      server: link.label,
      roundTripMs: performance.now() - firstSentAt,
      ...(keys.sendKey === undefined && keys.recvKey === undefined ? {} : { mppeKeys: Object.freeze(keys) }),
    };
  }

  /**
   * What a Microsoft Vendor-Specific attribute of an answer leaves for the NAS. MPPE keys are
   * decrypted into `keys` (and never passed on as they came: the NAS could not decrypt them);
   * MS-CHAP-MPPE-Keys goes; a reject keeps MS-CHAP-Error only. The rest is passed on as it came,
   * or rebuilt without what was taken out. One that does not follow the RFC 2865 §5.26 layout
   * could hide a key among its octets and is dropped.
   */
  private microsoftAttributes(
    a: RadiusAttribute,
    code: UpstreamAnswer['code'],
    link: ServerLink,
    requestAuthenticator: Buffer,
    keys: { sendKey?: Buffer; recvKey?: Buffer },
  ): RadiusAttribute[] {
    const subs = readVendorSpecific(a.value)?.attributes;
    if (subs === undefined) return [];
    const left = subs.filter((sub) => {
      if (sub.type === MicrosoftAttributeType.MsMppeSendKey || sub.type === MicrosoftAttributeType.MsMppeRecvKey) {
        const key = code === 'accept' ? decryptMppeKey(sub.value, link.server.secret, requestAuthenticator) : undefined;
        if (key !== undefined) keys[sub.type === MicrosoftAttributeType.MsMppeSendKey ? 'sendKey' : 'recvKey'] = key;
        else if (code === 'accept') this.ignoredLog.warn(`${link.label}|mppe`, { server: link.label }, 'undecryptable MS-MPPE key from upstream RADIUS server dropped');
        return false;
      }
      if (sub.type === MicrosoftAttributeType.MsChapMppeKeys) return false;
      return code !== 'reject' || sub.type === MicrosoftAttributeType.MsChapError;
    });
    if (left.length === subs.length) return [a];
    return left.map((sub) => attr.vendorSpecific(VendorId.Microsoft, sub.type, sub.value));
  }

  private count(answer: UpstreamAnswer): void {
    if (answer.code === 'accept') this.counters.accepts++;
    else if (answer.code === 'reject') this.counters.rejects++;
    else this.counters.challenges++;
    this.log.debug({ server: answer.server, answer: answer.code, roundTripMs: Math.round(answer.roundTripMs) }, 'upstream answered');
  }

  private markDead(link: ServerLink): void {
    const wasDown = link.down;
    link.down = true;
    link.deadUntil = performance.now() + this.deadTimeMs;
    if (!wasDown) {
      this.stateLine(link, 'warn', { server: link.label, deadTimeMs: this.deadTimeMs }, 'upstream RADIUS server is not answering: marked dead, skipped while others answer');
    }
  }

  private markAlive(link: ServerLink): void {
    link.lastValidReplyAt = performance.now();
    if (!link.down) return;
    link.down = false;
    link.deadUntil = 0;
    this.stateLine(link, 'info', { server: link.label }, 'upstream RADIUS server is answering again');
  }

  /** Outage start/end lines, at most STATE_LINES_PER_MINUTE per server; the rest are counted into the next line. */
  private stateLine(link: ServerLink, level: 'warn' | 'info', obj: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    const w = link.stateLines;
    if (now - w.start >= 60_000) {
      w.start = now;
      w.count = 0;
    }
    if (w.count >= STATE_LINES_PER_MINUTE) {
      w.suppressed++;
      return;
    }
    w.count++;
    const suppressed = w.suppressed;
    w.suppressed = 0;
    this.log[level](suppressed === 0 ? obj : { ...obj, suppressedStateChanges: suppressed }, msg);
  }

  private ignored(link: ServerLink, reason: IgnoredReplyReason, rinfo: RemoteInfo): void {
    this.counters.ignored[reason]++;
    const obj = { server: link.label, reason, from: `${rinfo.address}:${rinfo.port}` };
    // A late duplicate of an answer already taken is routine after a retransmission.
    if (reason === 'unknown_identifier') this.log.debug(obj, 'reply ignored');
    else this.ignoredLog.warn(`${link.label}|${reason}`, obj, 'invalid reply from upstream RADIUS server ignored');
  }
}
