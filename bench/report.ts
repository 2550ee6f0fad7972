import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

/** What every benchmark line ends with, and the quiet-machine check of BENCHMARKS.md. */

export interface Machine {
  nproc: number;
  node: string;
}

export function machine(): Machine {
  return { nproc: availableParallelism(), node: process.version };
}

export function freeradiusVersion(): string {
  try {
    const out = execFileSync('freeradius', ['-v'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
    return /Version (\S+?),/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

let clockTicks: number | undefined;

/**
 * CPU time a process has used so far (user + system, all its threads), in milliseconds, from
 * /proc/PID/stat: what a run costs the server whatever else the machine was doing meanwhile.
 */
export function processCpuMs(pid: number): number {
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  // The command name may hold spaces or parentheses: fields are counted after its closing ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

function cpuTimes(): { busy: number; total: number; steal: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const fields = cpu.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal; guest is inside user
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total, steal: fields[7] ?? 0 };
}

/**
 * Starts counting the machine's steal time (/proc/stat: what the hypervisor ran elsewhere while
 * this virtual machine had work). The returned function gives it since the start, as a % of all
 * CPU time. waitForQuiet cannot see it beforehand (an idle guest is stolen nothing), yet a few %
 * during a run stretches every wait the run measures: one to report beside the row.
 */
export function stealMeter(): () => number {
  const start = cpuTimes();
  return () => {
    const now = cpuTimes();
    return now.total === start.total ? 0 : (100 * (now.steal - start.steal)) / (now.total - start.total);
  };
}

export const stealNote = (pct: number): string => `host steal ${pct.toFixed(1)}% of CPU time during the row`;

export interface Quiet {
  quiet: boolean;
  /** CPU busy over the last 1 s sample, % of all cores. */
  busyPct: number;
  waitedMs: number;
}

/** Waits (up to `maxWaitMs`) for a 1 s sample with the whole machine under `maxBusyPct` % busy. */
export async function waitForQuiet(maxBusyPct = 5, maxWaitMs = 60000): Promise<Quiet> {
  const started = Date.now();
  let busyPct = 100;
  while (true) {
    const a = cpuTimes();
    await sleep(1000);
    const b = cpuTimes();
    busyPct = b.total === a.total ? 0 : (100 * (b.busy - a.busy)) / (b.total - a.total);
    const waitedMs = Date.now() - started;
    if (busyPct < maxBusyPct) return { quiet: true, busyPct, waitedMs };
    if (waitedMs >= maxWaitMs) return { quiet: false, busyPct, waitedMs };
  }
}

const fmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
export const rate = (reqPerSec: number): string => `${fmt.format(reqPerSec)} req/s`;
export const ms = (value: number): string => `${Math.abs(value) < 1 ? value.toFixed(3) : value.toFixed(2)} ms`;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** One summary line: what | gateway | anchor | ratio | machine (and notes). `subject` names the measured column when it is not the gateway. */
export function summaryLine(fields: { what: string; subject?: string; gateway?: string; anchor: string; ratio?: number; notes?: string[] }): string {
  const m = machine();
  const ratio = fields.ratio === undefined ? '—' : `${fields.ratio.toFixed(2)}×`;
  const notes = fields.notes !== undefined && fields.notes.length > 0 ? ` | ${fields.notes.join('; ')}` : '';
  return `${fields.what} | ${fields.subject ?? 'gateway'} ${fields.gateway ?? '—'} | anchor ${fields.anchor} | ratio ${ratio} | nproc ${m.nproc}, node ${m.node}${notes}`;
}
