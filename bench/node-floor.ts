import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnPeer } from '../test/peers/peer-process.js';
import { tempDir } from '../test/peers/temp.js';
import { ANCHOR_RECEIVE_BUFFER_BYTES } from './anchor-freeradius.js';

/**
 * The Node.js floor of the "gateway cost" row: a RADIUS PAP responder in its own Node.js process
 * (node-floor-server.ts) that does what the FreeRADIUS anchor does per request and nothing more,
 * loaded by the same radclient command. Its ratio to FreeRADIUS is the most any Node.js gateway
 * can reach on this machine, before it decides anything or writes anything.
 */
export interface NodeFloor {
  host: '127.0.0.1';
  port: number;
  secret: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts the responder with users 1..users (anchorUser/anchorPassword, as the anchor has them). */
export async function startNodeFloor(users: number): Promise<NodeFloor> {
  const secret = randomBytes(16).toString('hex');
  const dir = tempDir('node-floor');
  const script = fileURLToPath(new URL('./node-floor-server.ts', import.meta.url));
  // The same module loader this process runs under (tsx), so the child runs TypeScript too.
  const peer = spawnPeer({
    name: 'node-floor',
    command: process.execPath,
    args: [...process.execArgv, script, String(users), secret, String(ANCHOR_RECEIVE_BUFFER_BYTES)],
    logFile: join(dir.path, 'node-floor.log'),
    marker: secret,
  });
  try {
    const line = await peer.waitForLine((l) => l.startsWith('{"port":'), 30_000, 'port line');
    const { port } = JSON.parse(line) as { port: number };
    return {
      host: '127.0.0.1',
      port,
      secret,
      pid: peer.pid,
      async stop() {
        await peer.stop();
        dir.cleanup();
      },
    };
  } catch (err) {
    await peer.stop();
    dir.cleanup();
    throw err;
  }
}
