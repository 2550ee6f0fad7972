import t from 'tap';
import { newAuditId } from '../../src/audit/record-id.js';

const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('UUIDv7 layout: version 7, RFC variant, the millisecond in the first 48 bits', async (t) => {
  const now = Date.UTC(2026, 11, 1, 12, 0, 0, 123);
  const id = newAuditId(now);
  t.match(id, UUID7);
  t.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), now);
});

t.test('ids made in one millisecond, and across a counter overflow, keep increasing and stay unique', async (t) => {
  const now = Date.UTC(2030, 0, 1);
  const ids = Array.from({ length: 10_000 }, () => newAuditId(now));
  t.ok(ids.every((id) => UUID7.test(id)), 'all well-formed');
  t.equal(new Set(ids).size, ids.length, 'unique');
  t.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]!), 'strictly increasing as text (so in the index)');
  const later = newAuditId(now + 60_000);
  t.ok(later > ids.at(-1)!, 'a later millisecond sorts after');
});

t.test('a clock that steps back does not make ids go back', async (t) => {
  const a = newAuditId(Date.UTC(2031, 0, 1));
  const b = newAuditId(Date.UTC(2020, 0, 1));
  t.ok(b > a);
});
