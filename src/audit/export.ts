import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { AuditRecord } from '../store/types.js';
import { AUDIT_FIELDS } from './record.js';

/**
 * Audit export for admins and auditors.
 * - CSV (RFC 4180: comma, CRLF, quotes doubled, header row) for spreadsheets. Cells are
 *   guarded against formula injection: a client chooses the user name, and a cell such as
 *   `=HYPERLINK(…)` must stay text, so a cell that a spreadsheet would read as a formula gets a
 *   leading `'`. That makes CSV lossy for such cells; it is a report, not a backup.
 * - JSON: one array of records with every field as stored, so `verifyChain` can check an export
 *   offline. Streamed record by record, never built in memory.
 * Neither format ends `out` (it may be stdout); the caller does.
 */

export type AuditExportFormat = 'csv' | 'json';

/** Column order of both formats: position, the entry, then the chain. */
export const EXPORT_COLUMNS: readonly (keyof AuditRecord)[] = ['seq', ...AUDIT_FIELDS, 'prevHash', 'hash'];

// = + - @ start a formula in Excel, LibreOffice and Google Sheets; TAB and CR are the OWASP
// additions; the full-width forms are folded to ASCII by some spreadsheets. Leading blanks are
// skipped by some importers, so they do not hide a trigger.
const FORMULA_START = /^[\t\r]|^[\s\u3000]*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]/;

export function neutraliseFormula(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

/** One CSV field: formula-guarded, quoted when it holds a comma, quote, CR or LF. */
export function csvCell(value: string): string {
  const safe = neutraliseFormula(value);
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function cellText(record: AuditRecord, column: keyof AuditRecord): string {
  const v = record[column];
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function recordJson(record: AuditRecord): string {
  const out: Record<string, unknown> = {};
  for (const c of EXPORT_COLUMNS) out[c] = record[c];
  return JSON.stringify(out);
}

async function write(out: Writable, chunk: string): Promise<void> {
  if (out.destroyed || out.writableEnded) throw new Error('audit export: the output stream is closed');
  if (out.write(chunk)) return;
  // events.once rejects when 'error' is emitted first; 'close' without 'drain' must not hang us.
  const ac = new AbortController();
  try {
    await Promise.race([
      once(out, 'drain', { signal: ac.signal }),
      once(out, 'close', { signal: ac.signal }).then(() => {
        throw new Error('audit export: the output stream closed');
      }),
    ]);
  } finally {
    ac.abort();
  }
}

/** Writes every record to `out`; resolves with the count once the last chunk was accepted. */
export async function exportAudit(
  records: AsyncIterable<AuditRecord> | Iterable<AuditRecord>,
  format: AuditExportFormat,
  out: Writable,
): Promise<{ records: number }> {
  let count = 0;
  if (format === 'csv') {
    await write(out, `${EXPORT_COLUMNS.map((c) => csvCell(c)).join(',')}\r\n`);
    for await (const record of records) {
      await write(out, `${EXPORT_COLUMNS.map((c) => csvCell(cellText(record, c))).join(',')}\r\n`);
      count++;
    }
  } else if (format === 'json') {
    await write(out, '[');
    for await (const record of records) {
      await write(out, `${count === 0 ? '\n' : ',\n'}${recordJson(record)}`);
      count++;
    }
    await write(out, count === 0 ? ']\n' : '\n]\n');
  } else {
    throw new TypeError(`unknown audit export format ${String(format)}`);
  }
  return { records: count };
}
