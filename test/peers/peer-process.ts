import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { trackChild, untrackChild } from './process-reaper.js';

/**
 * One long-running peer process (FreeRADIUS, the gateway): every byte of stdout and stderr goes
 * to a log file and to memory, so a test can wait for a line, grep everything the peer ever
 * printed, and get the last lines in any error.
 */

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface PeerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Everything printed so far, stdout and stderr interleaved as received. */
  logs(): string;
  /** The last `n` lines, for error messages. */
  tail(n?: number): string;
  /** Resolves with the first line (from now on, or already seen) that matches; rejects on exit or timeout. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  hasExited(): boolean;
  /** `signal` (default SIGTERM), then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitInfo>;
  /** An Error whose message ends with the peer's last 30 log lines and the log file path. */
  failure(message: string): Error;
}

export interface SpawnPeerOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  /** A whole argv element unique to this process (see process-reaper). */
  readonly marker: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

export function spawnPeer(opts: SpawnPeerOptions): PeerProcess {
  const child = spawn(opts.command, [...opts.args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  log.on('error', () => undefined); // a vanished temp dir must not crash the test process
  const chunks: string[] = [];
  const lines: string[] = [];
  const partial = { stdout: '', stderr: '' };
  const lineWaiters = new Set<(line: string) => void>();
  let exitInfo: ExitInfo | undefined;

  const onData = (stream: 'stdout' | 'stderr') => (data: Buffer) => {
    const text = data.toString('utf8');
    chunks.push(text);
    log.write(text);
    const parts = (partial[stream] + text).split('\n');
    partial[stream] = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const waiter of lineWaiters) waiter(line);
    }
  };
  child.stdout?.on('data', onData('stdout'));
  child.stderr?.on('data', onData('stderr'));

  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (err) => {
      chunks.push(`[${opts.name}: ${err.message}]\n`);
      lines.push(`[${opts.name}: ${err.message}]`);
      exitInfo ??= { code: null, signal: null };
      resolve(exitInfo);
    });
    child.once('close', (code, signal) => {
      for (const stream of ['stdout', 'stderr'] as const) {
        if (partial[stream] !== '') lines.push(partial[stream]);
        partial[stream] = '';
      }
      exitInfo = { code, signal };
      log.end();
      resolve(exitInfo);
    });
  });

  if (child.pid !== undefined) trackChild(child, opts.name, opts.marker);

  const tail = (n = 30): string => {
    const all = [...lines, ...(['stdout', 'stderr'] as const).map((s) => partial[s]).filter((p) => p !== '')];
    return all.slice(-n).join('\n');
  };

  const failure = (message: string): Error =>
    new Error(`${message}\n--- last lines of ${opts.name} (full log: ${opts.logFile}) ---\n${tail(30)}\n---`);

  const peer: PeerProcess = {
    name: opts.name,
    child,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    logs: () => chunks.join(''),
    tail,
    exited,
    hasExited: () => exitInfo !== undefined,
    failure,
    waitForLine(match, timeoutMs, what) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const done = (): void => {
          clearTimeout(timer);
          lineWaiters.delete(waiter);
        };
        const waiter = (line: string): void => {
          if (!match(line)) return;
          done();
          resolve(line);
        };
        const timer = setTimeout(() => {
          done();
          reject(failure(`${opts.name}: no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        lineWaiters.add(waiter);
        void exited.then((info) => {
          if (!lineWaiters.has(waiter)) return;
          done();
          reject(failure(`${opts.name} exited (code ${info.code}, signal ${info.signal}) before ${what}`));
        });
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 5000) {
      if (exitInfo !== undefined) return exitInfo;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const info = await exited;
      clearTimeout(timer);
      if (child.pid !== undefined) untrackChild(child.pid);
      return info;
    },
  };
  return peer;
}
