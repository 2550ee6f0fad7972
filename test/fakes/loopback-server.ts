import type { Server, ServerResponse } from 'node:http';
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

/**
 * The failure modes a test sets on a fake provider: the next n requests fail with a status (as the
 * service does when it is down), or every request is held unanswered (a service that hangs) until
 * hanging is switched off again or the server closes.
 */
export class InjectedFaults {
  private failing = 0;
  private status = 500;
  private hanging = false;
  private readonly held = new Set<ServerResponse>();

  /** The next `n` requests are answered with `status`. */
  failNext(n: number, status = 500): void {
    this.failing = n;
    this.status = status;
  }

  /** On: every request is held unanswered. Off: those held so far are cut. */
  hang(on: boolean): void {
    this.hanging = on;
    if (!on) this.cutHeld();
  }

  /** What becomes of a request: 'held' (kept unanswered), a status to fail it with, or undefined: serve it. */
  intercept(res: ServerResponse): 'held' | number | undefined {
    if (this.hanging) {
      this.held.add(res);
      res.once('close', () => this.held.delete(res));
      return 'held';
    }
    if (this.failing > 0) {
      this.failing--;
      return this.status;
    }
    return undefined;
  }

  /** Cuts every request held so far. */
  cutHeld(): void {
    for (const res of this.held) res.destroy();
    this.held.clear();
  }
}
