import { randomOctets } from '../crypto/random.js';

/**
 * Audit record ids: UUID version 7 (RFC 9562 §5.7), time-ordered, so each new id lands at the
 * right-hand edge of the audit_log id index instead of on a random page (a random UUIDv4 dirties
 * one more index page per record in every group commit). Ids made in the same millisecond by
 * this process keep increasing: rand_a holds a 12-bit counter seeded at random each millisecond
 * (RFC 9562 §6.2, method 1), and a counter overflow borrows the next millisecond.
 */
let lastMs = -1;
let counter = 0;

export function newAuditId(now: number = Date.now()): string {
  const rand = randomOctets(10);
  if (now > lastMs) {
    lastMs = now;
    // Seeded below 2^11 so a burst in one millisecond has room to count up.
    counter = ((rand[0]! << 8) | rand[1]!) & 0x7ff;
  } else if (++counter > 0xfff) {
    lastMs++;
    counter = ((rand[0]! << 8) | rand[1]!) & 0x7ff;
  }
  const b = Buffer.allocUnsafe(16);
  b.writeUIntBE(lastMs, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  rand.copy(b, 8, 2, 10);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
