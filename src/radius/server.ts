import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { AuthFlow } from '../auth/flow.js';
import type { GatewayConfig, ResolvedClient } from '../config/config.js';
import { ListenError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import { canonicalAddress, ClientTable } from './clients.js';
import {
  AttributeType,
  Code,
  MAX_PACKET_LENGTH,
  RadiusDecodeError,
  decodePacket,
  encodeReply,
  formatAttribute,
  getAttribute,
  readText,
  verifyAccountingRequestAuthenticator,
  verifyRequestMessageAuthenticator,
  type RadiusPacket,
} from './codec/index.js';
import { DuplicateCache } from './duplicates.js';
import { toAttempt, toReply } from './front-end.js';
import { RateLimitedLog } from '../rate-limited-log.js';

export type DropReason =
  | 'unknown_client'
  | 'too_long'
  | 'malformed'
  | 'bad_message_authenticator'
  | 'missing_message_authenticator'
  | 'bad_request_authenticator'
  | 'unexpected_code'
  | 'draining'
  | 'fault';

export interface RadiusCounters {
  received: number;
  accessRequests: number;
  accepts: number;
  rejects: number;
  challenges: number;
  duplicates: number;
  accounting: number;
  statusServer: number;
  dropped: Record<DropReason, number>;
}

type Purpose = 'auth' | 'acct';

interface Listener {
  readonly socket: Socket;
  readonly purpose: Purpose;
  readonly address: string;
  port: number;
}

export interface RadiusServerDeps {
  readonly flow: AuthFlow;
  readonly store: Store;
  readonly log: Logger;
  readonly config: () => GatewayConfig;
}

/**
 * The UDP RADIUS listeners (RFC 2865 authentication, RFC 2866 accounting, RFC 5997
 * Status-Server). Security checks that need no policy happen here, before the flow: unknown
 * source → drop; bad or (when required) missing Message-Authenticator → drop; malformed → drop.
 * Every drop costs one counter and at most one rate-limited log line.
 */
export class RadiusServer {
  readonly counters: RadiusCounters = {
    received: 0,
    accessRequests: 0,
    accepts: 0,
    rejects: 0,
    challenges: 0,
    duplicates: 0,
    accounting: 0,
    statusServer: 0,
    dropped: {
      unknown_client: 0,
      too_long: 0,
      malformed: 0,
      bad_message_authenticator: 0,
      missing_message_authenticator: 0,
      bad_request_authenticator: 0,
      unexpected_code: 0,
      draining: 0,
      fault: 0,
    },
  };

  private readonly listeners: Listener[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private clients: ClientTable;
  private duplicates: DuplicateCache;
  private readonly dropLog: RateLimitedLog;
  private draining = false;
  private readonly log: Logger;

  constructor(private readonly deps: RadiusServerDeps) {
    const config = deps.config();
    this.log = deps.log.child({ module: 'radius' });
    this.clients = new ClientTable(config.clients);
    this.duplicates = new DuplicateCache(config.radius.duplicate_window_seconds * 1000);
    this.dropLog = new RateLimitedLog(this.log, config.radius.unknown_client_log_per_minute);
  }

  async start(): Promise<void> {
    const { radius } = this.deps.config();
    try {
      for (const l of radius.listen) await this.bind('auth', l.address, l.port, radius.receive_buffer_bytes);
      for (const l of radius.accounting_listen) await this.bind('acct', l.address, l.port, radius.receive_buffer_bytes);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** The bound addresses (with the real port when 0 was configured). */
  addresses(): Array<{ purpose: Purpose; address: string; port: number }> {
    return this.listeners.map((l) => ({ purpose: l.purpose, address: l.address, port: l.port }));
  }

  /** Applies a reloaded config: clients and policies. Attempts in flight keep the config they started with. */
  reload(): void {
    const config = this.deps.config();
    this.clients = new ClientTable(config.clients);
  }

  /** Stops taking new requests and waits (at most `timeoutMs`) for the attempts in flight. */
  async drain(timeoutMs: number): Promise<number> {
    this.draining = true;
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
    while (this.inFlight.size > 0) {
      if ((await Promise.race([Promise.allSettled([...this.inFlight]), deadline])) === 'timeout') break;
    }
    return this.inFlight.size;
  }

  async close(): Promise<void> {
    await Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.socket.close(() => resolve()))));
    this.listeners.length = 0;
  }

  private bind(purpose: Purpose, address: string, port: number, rcvbuf: number): Promise<void> {
    const family = isIP(address) === 6 ? 'udp6' : 'udp4';
    const socket = createSocket({ type: family, ipv6Only: family === 'udp6', recvBufferSize: rcvbuf });
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => reject(new ListenError(`cannot listen on ${address}:${port}/udp (${purpose}): ${err.message}`, { cause: err })));
      socket.bind({ address, port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        socket.on('error', (err) => this.log.error({ err: err.message, address, port }, 'socket error'));
        const listener: Listener = { socket, purpose, address, port: socket.address().port };
        socket.on('message', (msg, rinfo) => this.onMessage(listener, msg, rinfo));
        this.listeners.push(listener);
        resolve();
      });
    });
  }

  private drop(reason: DropReason, rinfo: RemoteInfo, detail?: string): void {
    this.counters.dropped[reason]++;
    this.dropLog.warn(reason, { reason, from: `${rinfo.address}:${rinfo.port}`, ...(detail === undefined ? {} : { detail }) }, 'packet dropped');
  }

  private onMessage(listener: Listener, msg: Buffer, rinfo: RemoteInfo): void {
    this.counters.received++;
    if (this.draining) return this.drop('draining', rinfo);
    if (msg.length > MAX_PACKET_LENGTH) return this.drop('too_long', rinfo, `${msg.length} bytes`);
    const sourceAddress = canonicalAddress(rinfo.address);
    const client = this.clients.match(sourceAddress);
    if (!client) return this.drop('unknown_client', rinfo);
    const packet = decodePacket(msg);
    if (packet instanceof RadiusDecodeError) return this.drop('malformed', rinfo, packet.reason);

    if (packet.code === Code.StatusServer) return this.onStatusServer(listener, client, packet, rinfo);
    if (listener.purpose === 'auth' && packet.code === Code.AccessRequest) return this.onAccessRequest(listener, client, packet, rinfo, sourceAddress);
    if (listener.purpose === 'acct' && packet.code === Code.AccountingRequest) return this.onAccounting(listener, client, packet, rinfo);
    return this.drop('unexpected_code', rinfo, `code ${packet.code} on the ${listener.purpose} port`);
  }

  private send(listener: Listener, reply: Buffer, rinfo: RemoteInfo, times = 1): void {
    for (let i = 0; i < times; i++) {
      listener.socket.send(reply, rinfo.port, rinfo.address, (err) => {
        if (err) this.log.warn({ err: err.message, to: `${rinfo.address}:${rinfo.port}` }, 'send failed');
      });
    }
  }

  private checkMessageAuthenticator(client: ResolvedClient, packet: RadiusPacket, rinfo: RemoteInfo, required: boolean): boolean {
    const result = verifyRequestMessageAuthenticator(packet, client.secret);
    if (result === 'invalid') {
      this.drop('bad_message_authenticator', rinfo);
      return false;
    }
    if (result === 'missing' && required) {
      this.drop('missing_message_authenticator', rinfo);
      return false;
    }
    return true;
  }

  private onAccessRequest(listener: Listener, client: ResolvedClient, packet: RadiusPacket, rinfo: RemoteInfo, sourceAddress: string): void {
    this.counters.accessRequests++;
    // RFC 3579 §3.3: EAP without a Message-Authenticator is dropped whatever the client setting.
    const required = client.require_message_authenticator || getAttribute(packet, AttributeType.EapMessage) !== undefined;
    if (!this.checkMessageAuthenticator(client, packet, rinfo, required)) return;

    const key = DuplicateCache.key(sourceAddress, rinfo.port, packet.identifier, packet.authenticator);
    const earlier = this.duplicates.begin(key);
    if (earlier) {
      this.counters.duplicates++;
      // Still being decided: this copy joins it and is answered with it. Decided: same bytes again.
      if (earlier.kind === 'done') this.send(listener, earlier.reply, rinfo);
      return;
    }

    const receivedAt = Date.now();
    const work = (async () => {
      try {
        const attempt = toAttempt(packet, client, { address: sourceAddress, port: rinfo.port, localAddress: listener.address }, receivedAt);
        const decision = await this.deps.flow.run(attempt);
        // MPPE keys are encrypted here, for this request's authenticator, into the one encoding of
        // the reply that the duplicate cache keeps: a retransmission gets these bytes again.
        const { code, attributes } = toReply(decision, { secret: client.secret, requestAuthenticator: packet.authenticator });
        const reply = encodeReply(packet, code, attributes, client.secret);
        if (decision.kind === 'accept') this.counters.accepts++;
        else if (decision.kind === 'reject') this.counters.rejects++;
        else this.counters.challenges++;
        this.send(listener, reply, rinfo, this.duplicates.finish(key, reply));
      } catch (err) {
        // No answer without an audit record: forget the request so the NAS's retry is processed afresh.
        this.duplicates.forget(key);
        this.counters.dropped.fault++;
        // Rate-limited per error code: a store that cannot write (disk full) fails every request alike.
        const code = errorCode(err);
        this.dropLog.error(`fault|${code}`, { errorCode: code, err: errorMessage(err), from: `${rinfo.address}:${rinfo.port}` }, 'access-request not answered');
      }
    })();
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /** RFC 5997: Status-Server must carry a valid Message-Authenticator; answered on either port. */
  private onStatusServer(listener: Listener, client: ResolvedClient, packet: RadiusPacket, rinfo: RemoteInfo): void {
    if (!this.checkMessageAuthenticator(client, packet, rinfo, true)) return;
    this.counters.statusServer++;
    const code = listener.purpose === 'auth' ? Code.AccessAccept : Code.AccountingResponse;
    this.send(listener, encodeReply(packet, code, [], client.secret), rinfo);
  }

  /** RFC 2866: acknowledged only once it is recorded; a retransmission is recorded once. */
  private onAccounting(listener: Listener, client: ResolvedClient, packet: RadiusPacket, rinfo: RemoteInfo): void {
    if (!verifyAccountingRequestAuthenticator(packet, client.secret)) return this.drop('bad_request_authenticator', rinfo);
    if (!this.checkMessageAuthenticator(client, packet, rinfo, false)) return;
    const key = DuplicateCache.key(`acct|${canonicalAddress(rinfo.address)}`, rinfo.port, packet.identifier, packet.authenticator);
    const earlier = this.duplicates.begin(key);
    if (earlier) {
      this.counters.duplicates++;
      if (earlier.kind === 'done') this.send(listener, earlier.reply, rinfo);
      return;
    }
    const work = (async () => {
      try {
        const attributes: Record<string, string[]> = {};
        for (const a of packet.attributes) {
          const { name, value } = formatAttribute(a);
          (attributes[name] ??= []).push(value);
        }
        const text = (type: number): string | null => {
          const v = getAttribute(packet, type);
          return v === undefined ? null : readText(v);
        };
        await this.deps.store.recordAccounting({
          receivedAt: Date.now(),
          clientName: client.name,
          clientIp: canonicalAddress(rinfo.address),
          statusType: attributes['Acct-Status-Type']?.[0] ?? null,
          sessionId: text(AttributeType.AcctSessionId),
          username: text(AttributeType.UserName),
          nasIdentifier: text(AttributeType.NasIdentifier),
          nasIpAddress: attributes['NAS-IP-Address']?.[0] ?? null,
          attributes,
        });
        this.counters.accounting++;
        const reply = encodeReply(packet, Code.AccountingResponse, [], client.secret);
        this.send(listener, reply, rinfo, this.duplicates.finish(key, reply));
      } catch (err) {
        this.duplicates.forget(key);
        this.counters.dropped.fault++;
        this.log.error({ err: errorMessage(err) }, 'accounting-request not recorded');
      }
    })();
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }
}
