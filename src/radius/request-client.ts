import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import { RadiusTimeoutError } from '../errors.js';
import { RadiusDecodeError, decodePacket, encodeAccessRequest, verifyReply, type RadiusAttribute, type RadiusPacket } from './codec/index.js';

export interface RequestOptions {
  readonly host: string;
  readonly port: number;
  readonly secret: Buffer;
  readonly attributes: readonly RadiusAttribute[];
  /** Clear-text User-Password, hidden with the secret (RFC 2865 §5.2). */
  readonly password?: Buffer;
  /** Per try; the request is retransmitted unchanged (same identifier and authenticator). */
  readonly timeoutMs: number;
  readonly tries: number;
  readonly code?: number;
}

export interface RequestResult {
  readonly reply: RadiusPacket;
  readonly roundTripMs: number;
}

/**
 * Sends one RADIUS request (Message-Authenticator first) and waits for a reply whose Response
 * Authenticator and Message-Authenticator verify; anything else arriving on the socket is
 * ignored. Used by `mfa-gateway try`, one socket per request; upstream first factors keep their
 * own sockets and identifiers (upstream.ts).
 */
export async function sendRequest(opts: RequestOptions): Promise<RequestResult> {
  const identifier = randomInt(256);
  const { packet, authenticator } = encodeAccessRequest({
    identifier,
    secret: opts.secret,
    attributes: opts.attributes,
    ...(opts.password === undefined ? {} : { password: opts.password }),
    ...(opts.code === undefined ? {} : { code: opts.code }),
  });
  const socket = createSocket(isIP(opts.host) === 6 ? 'udp6' : 'udp4');
  const started = performance.now();
  try {
    return await new Promise<RequestResult>((resolve, reject) => {
      let tries = 0;
      let timer: NodeJS.Timeout | undefined;
      const send = (): void => {
        tries++;
        socket.send(packet, opts.port, opts.host, (err) => {
          if (err) reject(err);
        });
        timer = setTimeout(() => {
          if (tries < opts.tries) send();
          else reject(new RadiusTimeoutError(`no valid reply from ${opts.host}:${opts.port} after ${tries} tries of ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      };
      socket.on('error', reject);
      socket.on('message', (msg) => {
        const reply = decodePacket(msg);
        if (reply instanceof RadiusDecodeError || reply.identifier !== identifier) return;
        if (!verifyReply(reply, authenticator, opts.secret, { requireMessageAuthenticator: true })) return;
        clearTimeout(timer);
        resolve({ reply, roundTripMs: performance.now() - started });
      });
      socket.bind(0, () => send());
    });
  } finally {
    socket.close();
  }
}
