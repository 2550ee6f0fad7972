import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Peers (FreeRADIUS, the gateway, radclient) must never outlive the test process that started
 * them, however it ends:
 * - normal end or uncaught error: the 'exit' hook SIGKILLs every tracked child;
 * - SIGINT/SIGTERM/SIGHUP (tap's timeout, Ctrl-C): the same, then the signal is re-raised so the
 *   process still dies the way it would have (signal-exit, used by tap, cooperates with this);
 * - SIGKILL of the test process: a detached watchdog shell polls for our PID and, once it is
 *   gone, kills every child still registered in its directory, but only if that PID's argv
 *   still contains the child's marker (a temp path unique to it), so a recycled PID is safe.
 */

interface Tracked {
  readonly child: ChildProcess;
  readonly name: string;
}

const tracked = new Map<number, Tracked>();
const cleanups: Array<() => void> = [];
let watchdogDir: string | undefined;
let hooksInstalled = false;

const WATCHDOG = String.raw`
parent=$1; dir=$2
while kill -0 "$parent" 2>/dev/null && [ -d "$dir" ]; do sleep 1; done
[ -d "$dir" ] || exit 0
for f in "$dir"/*; do
  [ -f "$f" ] || continue
  pid=$(basename "$f"); marker=$(cat "$f")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' '\n' < "/proc/$pid/cmdline" | grep -qxF -- "$marker"; then
    kill -KILL "$pid" 2>/dev/null
  fi
done
if [ -f "$dir/.tempdirs" ]; then
  while IFS= read -r path; do
    case "$path" in */mfa-*) rm -rf -- "$path" ;; esac
  done < "$dir/.tempdirs"
fi
rm -rf "$dir"
`;

/**
 * Register a child. `marker` must be one whole argv element of the child, unique to it (its temp
 * dir, its config file); the watchdog checks it before killing.
 */
export function trackChild(child: ChildProcess, name: string, marker: string): void {
  const pid = child.pid;
  if (pid === undefined) return;
  installHooks();
  tracked.set(pid, { child, name });
  try {
    writeFileSync(join(ensureWatchdog(), String(pid)), marker);
  } catch {
    // the in-process hooks still cover every ending but SIGKILL
  }
  child.once('exit', () => untrackChild(pid));
}

export function untrackChild(pid: number): void {
  tracked.delete(pid);
  if (watchdogDir !== undefined) {
    try {
      unlinkSync(join(watchdogDir, String(pid)));
    } catch {
      // already gone
    }
  }
}

/**
 * Runs `fn` (synchronously) when the process ends, however it ends short of SIGKILL, after the
 * children are killed. temp.ts removes its directories this way.
 */
export function onProcessEnd(fn: () => void): void {
  installHooks();
  cleanups.push(fn);
}

/** Also remove `path` (an `mfa-*` temp directory) if the process is SIGKILLed. */
export function watchTempDir(path: string): void {
  try {
    appendFileSync(join(ensureWatchdog(), '.tempdirs'), `${path}\n`);
  } catch {
    // best effort
  }
}

/** Names and PIDs of children still running (for assertions that nothing was left behind). */
export function trackedChildren(): Array<{ pid: number; name: string }> {
  return [...tracked].map(([pid, t]) => ({ pid, name: t.name }));
}

function killAllSync(): void {
  for (const [pid] of tracked) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  tracked.clear();
  for (const fn of cleanups.splice(0)) {
    try {
      fn();
    } catch {
      // keep cleaning up
    }
  }
  if (watchdogDir !== undefined) rmSync(watchdogDir, { recursive: true, force: true });
  watchdogDir = undefined;
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function ensureWatchdog(): string {
  if (watchdogDir !== undefined) return watchdogDir;
  const dir = mkdtempSync(join(tmpdir(), 'mfa-reaper-'));
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'mfa-reaper', String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  watchdogDir = dir;
  return dir;
}
