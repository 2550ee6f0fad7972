import { closeSync, fdatasyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentileOfSorted } from './latency-client.js';
import { ms } from './report.js';

const WRITE_BYTES = 6 * 4096; // about what one login adds to the write-ahead log (two commits)
const FILE_BYTES = 4 << 20; // rewritten in place, as SQLite reuses its WAL after a checkpoint

/**
 * The floor under every durable answer: how long this machine's disk takes to fdatasync a small
 * in-place write in the gateway's data directory. With store.sqlite.fsync_before_reply (the
 * default) no reply leaves before its audit record's write-ahead log is synced, so the gateway's
 * latency percentiles cannot be lower than these, whatever the gateway does; the anchors
 * (FreeRADIUS PAP, slapd binds) write nothing per request. Sampled between the measured rounds,
 * so it sees the same minutes of a shared disk. The file goes with the benchmark's temporary
 * directory.
 */
export class DiskSyncProbe {
  private readonly path: string;
  private readonly latencies: number[] = [];
  private offset = 0;

  constructor(dir: string) {
    this.path = join(dir, 'disk-sync-probe');
    const fd = openSync(this.path, 'w');
    try {
      ftruncateSync(fd, FILE_BYTES);
      writeSync(fd, Buffer.alloc(FILE_BYTES));
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** `count` write+fdatasync pairs, each timed (the fdatasync only). */
  sample(count: number): void {
    const fd = openSync(this.path, 'r+');
    const block = Buffer.alloc(WRITE_BYTES, 0x5a);
    try {
      for (let i = 0; i < count; i++) {
        writeSync(fd, block, 0, WRITE_BYTES, this.offset);
        this.offset = (this.offset + WRITE_BYTES) % (FILE_BYTES - WRITE_BYTES);
        const t0 = performance.now();
        fdatasyncSync(fd);
        this.latencies.push(performance.now() - t0);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The samples since the last take(), as a note for a row; starts a new set. */
  take(): string {
    const sorted = Float64Array.from(this.latencies.splice(0)).sort();
    return `disk fdatasync of ${WRITE_BYTES / 1024} KiB in the data directory (the floor of a durable reply) p50 ${ms(percentileOfSorted(sorted, 50))} p99 ${ms(percentileOfSorted(sorted, 99))} over ${sorted.length}`;
  }
}
