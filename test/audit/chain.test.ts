import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import t from 'tap';
import { auditHash, canonicalAuditContent, canonicalJson, GENESIS_HASH, sealAuditRecord, verifyChain } from '../../src/audit/chain.js';
import { csvCell, EXPORT_COLUMNS, exportAudit } from '../../src/audit/export.js';
import { AUDIT_FIELDS, AUDIT_ROW_COLUMNS, auditRowValues, normaliseAuditEntry, rowToAuditRecord } from '../../src/audit/record.js';
import { nameKey, openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { AuditRecord, AuditVerifyResult } from '../../src/store/store.js';
import { makeEntry } from '../store/contract.js';

const dir = mkdtempSync(join(tmpdir(), 'mfa-chain-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// One store with 50 records, written in a few groups, then closed; each case tampers with a copy.
const original = join(dir, 'original.db');
const written: AuditRecord[] = [];
{
  const store = await openSqliteStore({ path: original });
  for (const size of [1, 9, 15, 25]) {
    written.push(...(await Promise.all(Array.from({ length: size }, () => store.appendAudit(makeEntry())))));
  }
  await store.close();
}
const idOf = (seq: number): string => written[seq - 1]!.id;

let copies = 0;
/** Copies the closed store, lets `tamper` change the copy with plain SQL, and verifies the copy as the gateway would. */
async function verifyTampered(tamper: (db: Database.Database) => void): Promise<AuditVerifyResult> {
  const copy = join(dir, `copy-${++copies}.db`);
  copyFileSync(original, copy);
  const db = new Database(copy);
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;');
  tamper(db);
  db.close();
  const store = await openSqliteStore({ path: copy });
  try {
    return await store.verifyAudit();
  } finally {
    await store.close();
  }
}

function rowOf(db: Database.Database, seq: number): AuditRecord {
  return rowToAuditRecord(db.prepare('SELECT * FROM audit_log WHERE seq = ?').get(seq) as Record<string, unknown>);
}

function insert(db: Database.Database, record: AuditRecord): void {
  db.prepare(`INSERT INTO audit_log (${AUDIT_ROW_COLUMNS.join(', ')}) VALUES (${AUDIT_ROW_COLUMNS.map(() => '?').join(', ')})`).run(
    auditRowValues(record, nameKey(record.username)),
  );
}

void t.test('an intact copy passes', async (t) => {
  t.same(await verifyTampered(() => undefined), { ok: true, records: 50, problems: [] });
});

void t.test('an edited record is named', async (t) => {
  const r = await verifyTampered((db) => db.prepare('UPDATE audit_log SET username = ? WHERE seq = 17').run('mallory'));
  t.equal(r.ok, false);
  t.same(r.problems, [`seq 17 (id ${idOf(17)}): content does not match its hash (record edited)`]);

  const timings = await verifyTampered((db) => db.prepare('UPDATE audit_log SET timings = ? WHERE seq = 3').run('{"total": 4.25'));
  t.match(timings.problems, [new RegExp(`^seq 3 \\(id ${idOf(3)}\\): unreadable .*record edited`)], 'even when the row no longer parses');

  const rehashed = await verifyTampered((db) => {
    // A careful forger re-hashes the edited record: then the next record's link breaks.
    const rec = rowOf(db, 30);
    const forged = sealAuditRecord({ ...rec, result: 'accept', reason: 'forged' }, 30, rec.prevHash);
    db.prepare('UPDATE audit_log SET reason = ?, hash = ? WHERE seq = 30').run(forged.reason, forged.hash);
  });
  t.same(rehashed.problems, [
    `seq 31 (id ${idOf(31)}): prevHash does not match the hash of seq 30 (id ${idOf(30)}): link broken (record inserted or replaced)`,
  ]);
});

void t.test('a deleted middle record is named', async (t) => {
  const r = await verifyTampered((db) => db.prepare('DELETE FROM audit_log WHERE seq = 25').run());
  t.same(r, { ok: false, records: 49, problems: [`seq 26 (id ${idOf(26)}): seq 25 is missing before it (record deleted)`] });

  const several = await verifyTampered((db) => db.prepare('DELETE FROM audit_log WHERE seq BETWEEN 1 AND 3').run());
  t.same(several.problems, [`seq 4 (id ${idOf(4)}): seq 1..3 are missing before it (record deleted)`]);
});

void t.test('an inserted record is named, even with plausible fields and a correct own hash', async (t) => {
  const fake = makeEntry({ username: 'alice', result: 'accept', reason: 'second_factor_ok' });

  // Appended after the last record, correctly linked: only the head shows it.
  const atEnd = await verifyTampered((db) => {
    const last = rowOf(db, 50);
    insert(db, sealAuditRecord(fake, 51, last.hash));
  });
  t.same(atEnd.problems, [`seq 51 (id ${fake.id}): beyond the chain head (seq 50): added after the last committed record (record inserted)`]);

  // Slipped in between 25 and 26, the later records renumbered to make room.
  const inMiddle = await verifyTampered((db) => {
    db.exec('UPDATE audit_log SET seq = -seq WHERE seq >= 26; UPDATE audit_log SET seq = 1 - seq WHERE seq < 0;');
    insert(db, sealAuditRecord(fake, 26, rowOf(db, 25).hash));
  });
  t.equal(inMiddle.ok, false);
  t.equal(inMiddle.records, 51);
  t.ok(
    inMiddle.problems.includes(
      `seq 27 (id ${idOf(26)}): prevHash does not match the hash of seq 26 (id ${fake.id}): link broken (record inserted or replaced)`,
    ),
    'the record after the inserted one names it',
  );
  t.ok(inMiddle.problems.includes(`seq 27 (id ${idOf(26)}): content does not match its hash (record edited)`), 'renumbered records are named');
  t.ok(inMiddle.problems.some((p) => p.startsWith(`seq 51 (id ${idOf(50)}): beyond the chain head`)));

  // A duplicate or out-of-order seq (possible in an export file, which has no primary key).
  const records = [...written.slice(0, 10)];
  records.splice(5, 0, sealAuditRecord(fake, 3, written[1]!.hash));
  const dup = await verifyChain(records, { seq: 10, hash: written[9]!.hash });
  t.same(dup.problems, [`seq 3 (id ${fake.id}): duplicated or out of order after seq 5 (id ${idOf(5)}) (record inserted)`]);
});

void t.test('a deleted last record is detected by the head', async (t) => {
  const r = await verifyTampered((db) => db.prepare('DELETE FROM audit_log WHERE seq = 50').run());
  t.same(r, {
    ok: false,
    records: 49,
    problems: [`chain ends at seq 49 (id ${idOf(49)}) but its head is seq 50: seq 50 is missing (tail truncated)`],
  });
  const all = await verifyTampered((db) => db.prepare('DELETE FROM audit_log').run());
  t.same(all.problems, ['chain is empty but its head is seq 50: seq 1..50 are missing (tail truncated)']);
  const replaced = await verifyTampered((db) => {
    db.prepare('DELETE FROM audit_log WHERE seq = 50').run();
    insert(db, sealAuditRecord(makeEntry(), 50, rowOf(db, 49).hash));
  });
  t.match(replaced.problems, [/^seq 50 \(id .*\): hash does not match the chain head \(last record replaced\)$/]);
  // Without the head, the chain alone cannot know (that is why the store keeps one).
  t.same((await verifyChain(written.slice(0, 49))).problems, []);
});

void t.test('the hash is specified: canonical JSON, sorted keys, seq included', (t) => {
  t.equal(canonicalJson({ b: 1, a: [true, null, 'x"y'], c: { z: 0.5, y: -2 } }), '{"a":[true,null,"x\\"y"],"b":1,"c":{"y":-2,"z":0.5}}');
  t.throws(() => canonicalJson(Number.POSITIVE_INFINITY));
  const e = makeEntry({ timings: { total: 2, a: 1 } });
  const content = canonicalAuditContent(e, 7);
  t.ok(content.startsWith('{"attemptId":'), 'keys sorted');
  t.ok(content.includes('"seq":7'));
  t.ok(content.includes('"timings":{"a":1,"total":2}'), 'timings keys sorted');
  t.notOk(content.includes('prevHash'));
  t.equal(auditHash(GENESIS_HASH, e, 7), createHash('sha256').update(`${GENESIS_HASH}\n${content}`).digest('hex'));
  t.equal(auditHash(GENESIS_HASH, { ...e, extra: 'ignored' } as typeof e, 7), auditHash(GENESIS_HASH, e, 7), 'only entry fields count');
  t.not(auditHash(GENESIS_HASH, e, 8), auditHash(GENESIS_HASH, e, 7), 'seq counts');
  t.end();
});

void t.test('canonical content is canonicalJson of the fields and seq, whatever the values', (t) => {
  /** The definition, computed the slow way: pick the AuditEntry fields, add seq, canonicalJson. */
  const reference = (e: Record<string, unknown>, seq: number): string =>
    canonicalJson({ ...Object.fromEntries(AUDIT_FIELDS.map((f) => [f, e[f]])), seq });
  const cases: Array<[string, Record<string, unknown>]> = [
    ['a normalised record', { ...normaliseAuditEntry(makeEntry({ timings: { total: 2.5, firstFactor: 1, send: 0 } })) }],
    ['no timings', { ...makeEntry({ timings: {} }) }],
    ['text to escape', { ...makeEntry({ username: 'a"b\\c\n\u2028 ü 😀 \uD800', email: null, timings: { 'ü': 1, Z: 2, a: -0 } }) }],
    // Array-index keys: JavaScript orders them first and numerically, canonical JSON by code unit.
    ['index-like timing keys', { ...makeEntry({ timings: { 10: 1, 9: 2, b: 3, '01': 4 } }) }],
    // What a tampered row can read back as: numbers in text columns, odd timings.
    ['a number in a text column', { ...makeEntry(), username: 42, clientName: 1.5 }],
    ['nested timings', { ...makeEntry(), timings: { b: { y: 1, x: [true, null] }, a: 'text' } }],
    ['extra properties', { ...makeEntry(), seq: 99, hash: 'x', prevHash: 'y', other: true }],
  ];
  for (const [name, e] of cases) {
    t.equal(canonicalAuditContent(e as never, 7), reference(e, 7), name);
  }
  t.throws(() => canonicalAuditContent({ ...makeEntry(), email: undefined } as never, 1), /no email/, 'a missing field is an error, as before');
  t.end();
});

// --- export ---------------------------------------------------------------------------------

/** A Writable collecting text, with a tiny buffer so backpressure is exercised. */
function sink(): { out: Writable; text: () => Promise<string> } {
  const chunks: string[] = [];
  const out = new Writable({
    highWaterMark: 64,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      setImmediate(cb);
    },
  });
  // exportAudit leaves `out` open (it may be stdout); the caller ends it and waits for the flush.
  const text = async (): Promise<string> => {
    out.end();
    await once(out, 'finish');
    return chunks.join('');
  };
  return { out, text };
}

/** RFC 4180 parser, to read the export back independently of the writer. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else cell += c;
      i++;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
    i++;
  }
  if (cell !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

void t.test('export: JSON round trip, verifiable offline', async (t) => {
  const { out, text } = sink();
  t.same(await exportAudit(written, 'json', out), { records: 50 });
  const parsed = JSON.parse(await text()) as AuditRecord[];
  t.same(parsed, written, 'every field, as stored');
  t.same(Object.keys(parsed[0]!), [...EXPORT_COLUMNS]);
  t.same(await verifyChain(parsed, { seq: 50, hash: written[49]!.hash }), { ok: true, records: 50, problems: [] });
  parsed[9] = { ...parsed[9]!, clientIp: '203.0.113.66' };
  t.same((await verifyChain(parsed)).problems, [`seq 10 (id ${idOf(10)}): content does not match its hash (record edited)`]);

  const empty = sink();
  await exportAudit([], 'json', empty.out);
  t.same(JSON.parse(await empty.text()), []);

  // Straight from a store's query, streamed.
  const store = await openSqliteStore({ path: original, readonly: true });
  const fromStore = sink();
  t.same(await exportAudit(store.queryAudit({ since: written[40]!.receivedAt }), 'json', fromStore.out), { records: 10 });
  t.same(JSON.parse(await fromStore.text()), written.slice(40));
  await store.close();
});

void t.test('export: CSV round trip with RFC 4180 quoting', async (t) => {
  const tricky = [
    sealAuditRecord(makeEntry({ username: 'plain', timings: {} }), 1, GENESIS_HASH),
    sealAuditRecord(makeEntry({ username: 'comma, "quote"\r\nnewline', email: null, timings: { b: 2, a: 1.5 } }), 2, 'x'.repeat(64)),
  ];
  const { out, text } = sink();
  await exportAudit(tricky, 'csv', out);
  const rows = parseCsv(await text());
  t.same(rows[0], [...EXPORT_COLUMNS], 'header row');
  t.equal(rows.length, 3);
  for (const [i, rec] of tricky.entries()) {
    const row = rows[i + 1]!;
    t.equal(row.length, EXPORT_COLUMNS.length);
    EXPORT_COLUMNS.forEach((c, j) => {
      const v = rec[c];
      const expected = v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
      t.equal(row[j], expected, `record ${i + 1} ${c}`);
    });
  }
  t.same(JSON.parse(rows[2]![EXPORT_COLUMNS.indexOf('timings')]!), { b: 2, a: 1.5 }, 'timings as a JSON cell');
});

void t.test('export: CSV cells cannot become spreadsheet formulas', async (t) => {
  const dangerous = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2+3', '@SUM(A1:A9)', '\t=1', '\r=1', ' =1', '\uFF1D1+1'];
  for (const d of dangerous) t.equal(csvCell(d).replace(/^"|"$/g, '').startsWith("'"), true, `${JSON.stringify(d)} is prefixed`);
  for (const safe of ['alice', '192.0.2.1', '42', 'a=b', 'x-y', "'already"]) t.equal(csvCell(safe), safe, `${safe} unchanged`);
  t.equal(csvCell('=a,b'), `"'=a,b"`, 'prefixed, then quoted');

  const rec = sealAuditRecord(makeEntry({ username: '=cmd|/C calc!A0', clientName: '@evil', nasIdentifier: '-1', reason: '+x' }), 1, GENESIS_HASH);
  const { out, text } = sink();
  await exportAudit([rec], 'csv', out);
  const row = parseCsv(await text())[1]!;
  const cell = (c: keyof AuditRecord): string => row[EXPORT_COLUMNS.indexOf(c)]!;
  t.equal(cell('username'), "'=cmd|/C calc!A0");
  t.equal(cell('clientName'), "'@evil");
  t.equal(cell('nasIdentifier'), "'-1");
  t.equal(cell('reason'), "'+x");
  t.ok(row.every((c) => !/^[=+\-@\t\r]/.test(c)), 'no cell starts a formula');
});
