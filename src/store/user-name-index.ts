/**
 * Every user's login names (the comparison keys of user name and UPN, see nameKey) → the row that
 * holds the user, kept in memory so that finding a user costs one hash probe instead of an index
 * search in the store, whatever the number of users.
 *
 * Sized for directories of a million users: no object or string per entry, only two typed arrays
 * forming an open-addressing hash table (linear probing) of a 32-bit hash of the key and the row
 * number, 8 bytes a slot, at most 3/4 full (from 11 to 21 bytes per key). The slot is the hash's
 * low bits, so the table can grow without the keys.
 *
 * A hit is a hint: the engine reads that row and checks that it really holds the name, because a
 * hash can collide and a row can have been renamed or deleted by another process (the CLI)
 * since. A miss falls back to the engine's own lookup, which adds what it finds. So a stale entry
 * never finds the wrong user; it only costs the lookup it was meant to save.
 */

const EMPTY = 0;
/** A removed entry: probing goes on past it, adding may reuse it. */
const DELETED = 0xffffffff;
const MIN_CAPACITY = 1024;
/** Rows are stored as 32-bit numbers; a row number at or above this is not indexed (looked up in the store instead). */
export const MAX_INDEXED_ROW = 0xfffffffe;

/** A 32-bit hash of a key (FNV-1a over UTF-16 code units, finalised as murmur3 does), never EMPTY or DELETED. */
export function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  return h === EMPTY || h === DELETED ? 1 : h;
}

export class UserNameIndex {
  /** keyHash per slot, EMPTY or DELETED. */
  private hashes: Uint32Array;
  private rows: Uint32Array;
  /** Live entries, and slots not EMPTY (live + DELETED): the second decides when to rebuild. */
  private live = 0;
  private occupied = 0;

  constructor(expectedKeys = 0) {
    let capacity = MIN_CAPACITY;
    while (capacity * 0.75 < expectedKeys) capacity *= 2;
    this.hashes = new Uint32Array(capacity);
    this.rows = new Uint32Array(capacity);
  }

  /** Entries held (a stale one counts until a lookup finds it stale). */
  get size(): number {
    return this.live;
  }

  /** Memory held by the table, in bytes. */
  get bytes(): number {
    return this.hashes.byteLength + this.rows.byteLength;
  }

  /** Notes that `row` holds `key`. An entry for the same key and row is not added twice. */
  add(key: string, row: number): void {
    if (!Number.isSafeInteger(row) || row < 1 || row > MAX_INDEXED_ROW) return;
    if ((this.occupied + 1) / this.hashes.length > 0.75) this.rebuild();
    const h = keyHash(key);
    const mask = this.hashes.length - 1;
    let reuse = -1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = this.hashes[i]!;
      if (at === EMPTY) {
        const slot = reuse >= 0 ? reuse : i;
        if (reuse < 0) this.occupied++;
        this.hashes[slot] = h;
        this.rows[slot] = row;
        this.live++;
        return;
      }
      if (at === DELETED) {
        if (reuse < 0) reuse = i;
      } else if (at === h && this.rows[i] === row) {
        return;
      }
    }
  }

  /** The rows that may hold `key`, most often one; the caller checks each. */
  candidates(key: string): number[] {
    const h = keyHash(key);
    const mask = this.hashes.length - 1;
    const out: number[] = [];
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = this.hashes[i]!;
      if (at === EMPTY) return out;
      if (at === h) out.push(this.rows[i]!);
    }
  }

  /** Forgets that `row` holds `key` (found stale). */
  remove(key: string, row: number): void {
    const h = keyHash(key);
    const mask = this.hashes.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = this.hashes[i]!;
      if (at === EMPTY) return;
      if (at === h && this.rows[i] === row) {
        this.hashes[i] = DELETED;
        this.rows[i] = 0;
        this.live--;
        return;
      }
    }
  }

  /** A table twice as large when it is more than half live, else the same size without the removed entries. */
  private rebuild(): void {
    const oldHashes = this.hashes;
    const oldRows = this.rows;
    const capacity = this.live + 1 > oldHashes.length * 0.5 ? oldHashes.length * 2 : oldHashes.length;
    this.hashes = new Uint32Array(capacity);
    this.rows = new Uint32Array(capacity);
    this.live = 0;
    this.occupied = 0;
    const mask = capacity - 1;
    for (let j = 0; j < oldHashes.length; j++) {
      const h = oldHashes[j]!;
      if (h === EMPTY || h === DELETED) continue;
      let i = h & mask;
      while (this.hashes[i] !== EMPTY) i = (i + 1) & mask;
      this.hashes[i] = h;
      this.rows[i] = oldRows[j]!;
      this.live++;
      this.occupied++;
    }
  }
}
