import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { assertLoopback } from './ports.js';

/**
 * Raw UDP for packets radclient cannot or will not build (bad authenticators, truncated
 * attributes, wrong secrets): send `buf` once, resolve the first datagram that comes back from
 * host:port, or undefined when nothing does within `timeoutMs` (the expected answer to a bad packet).
 */
export function sendUdp(host: string, port: number, buf: Uint8Array, timeoutMs: number): Promise<Buffer | undefined> {
  assertLoopback(host);
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (err: Error | undefined, reply: Buffer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (err !== undefined) reject(err);
      else resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined, undefined), timeoutMs);
    socket.on('error', (err) => finish(err, undefined));
    socket.on('message', (msg, rinfo) => {
      if (rinfo.port === port && rinfo.address === host) finish(undefined, msg);
    });
    socket.send(buf, port, host, (err) => {
      if (err) finish(err, undefined);
    });
  });
}
