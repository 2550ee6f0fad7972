import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { trackChild } from '../test/peers/process-reaper.js';
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
  const script = fileURLToPath(new URL('./node-floor-server.ts', import.meta.url));
  // The same module loader this process runs under (tsx), so the child runs TypeScript too.
  const child = spawn(process.execPath, [...process.execArgv, script, String(users), secret, String(ANCHOR_RECEIVE_BUFFER_BYTES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  trackChild(child, 'node-floor', secret);
  const pid = child.pid;
  if (pid === undefined) throw new Error('node-floor: could not start the responder');
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`node-floor: the responder exited (${String(code)}) before binding`)));
  });
  return {
    host: '127.0.0.1',
    port,
    secret,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}
