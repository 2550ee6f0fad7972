import { createSocket } from 'node:dgram';
import { isIP, createServer } from 'node:net';

/**
 * Free loopback ports for peers and gateways under test. The kernel picks the port (bind to 0);
 * the socket is closed before the caller binds it, so a peer that fails with "address in use"
 * should be restarted on new ports (startFreeRadius does this).
 *
 * Tests and benchmarks touch loopback only: every helper that sends or listens calls
 * assertLoopback first.
 */

export type PortKind = 'udp' | 'tcp';

export function isLoopback(host: string): boolean {
  const family = isIP(host);
  if (family === 4) return host.startsWith('127.');
  if (family === 6) return host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host);
  return false;
}

/** Throws unless `host` is a literal 127.0.0.0/8 or ::1 address (no names: no resolver in tests). */
export function assertLoopback(host: string): void {
  if (!isLoopback(host)) throw new Error(`refusing non-loopback address '${host}': tests and benchmarks use 127.0.0.0/8 and ::1 only`);
}

export async function freePort(kind: PortKind, host = '127.0.0.1'): Promise<number> {
  assertLoopback(host);
  return kind === 'udp' ? freeUdpPort(host) : freeTcpPort(host);
}

function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the bound TCP port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * `n` distinct free UDP ports. With `consecutive`, they are p, p+1, … (the RADIUS habit of
 * accounting = auth + 1), found by probing: each is bound at once so none is handed out twice.
 */
export async function freeUdpPorts(n: number, opts: { host?: string; consecutive?: boolean } = {}): Promise<number[]> {
  const host = opts.host ?? '127.0.0.1';
  assertLoopback(host);
  if (opts.consecutive !== true) {
    const held = await holdUdpPorts(host, n, () => 0);
    return closeAll(held);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = await freeUdpPort(host);
    if (base + n - 1 > 65535) continue;
    try {
      const held = await holdUdpPorts(host, n, (i) => base + i);
      return await closeAll(held);
    } catch {
      // one of base+1… was taken: try another base
    }
  }
  throw new Error(`could not find ${n} consecutive free UDP ports on ${host}`);
}

interface Held {
  port: number;
  close(): Promise<void>;
}

async function holdUdpPorts(host: string, n: number, portFor: (i: number) => number): Promise<Held[]> {
  const held: Held[] = [];
  try {
    for (let i = 0; i < n; i++) held.push(await holdUdpPort(host, portFor(i)));
    return held;
  } catch (err) {
    await closeAll(held);
    throw err;
  }
}

function holdUdpPort(host: string, port: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(port, host, () => {
      resolve({ port: socket.address().port, close: () => new Promise<void>((done) => socket.close(() => done())) });
    });
  });
}

async function closeAll(held: Held[]): Promise<number[]> {
  await Promise.all(held.map((h) => h.close()));
  return held.map((h) => h.port);
}
