import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertLoopback } from '../peers/ports.js';

/** Listens on a free port of a loopback address; resolves with the server's base URL. */
export async function listenLoopback(server: Server, host = '127.0.0.1'): Promise<string> {
  assertLoopback(host);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Stops listening and cuts every connection, including requests a fake holds unanswered (hang mode). */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
