/**
 * Seeded mutation fuzzing of the decoder and the MAC checks: start from valid, signed packets,
 * mutate them (bit flips, byte changes, truncation, extension, Length and attribute-length
 * tampering, insertions, deletions, duplicated and swapped attributes) and require
 * - decodePacket, the verifiers, formatting and password unhiding never throw;
 * - no mutant whose signed bytes (the first Length octets) differ from the original's verifies;
 * - every mutant whose signed bytes are unchanged (padding added, a flip undone) still verifies,
 *   so the verifier is not passing the first check by refusing everything.
 * A plain loop with its own PRNG, not fast-check: a million cases in seconds, no shrinking needed.
 */
import t from 'tap';
import {
  AttributeType,
  Code,
  RadiusDecodeError,
  attr,
  computeMessageAuthenticator,
  decodePacket,
  encodeAccessRequest,
  encodeAccountingRequest,
  encodePacket,
  encodeReply,
  formatAttributes,
  unhidePassword,
  verifyReply,
  verifyRequestMessageAuthenticator,
} from '../../src/radius/codec/index.js';
import type { RadiusAttribute, RadiusPacket } from '../../src/radius/codec/index.js';

const SEED = 0x9e3779b9;
const REQUEST_MUTANTS = 1_000_000;
const REPLY_MUTANTS = 200_000;
t.comment(`mutation seed 0x${SEED.toString(16)}: ${REQUEST_MUTANTS} request mutants, ${REPLY_MUTANTS} reply mutants`);

/** mulberry32: tiny, fast, good enough to drive mutations, reproducible from the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const SECRET = Buffer.from('fuzzing-shared-secret-7d1f0c');

function decoded(buf: Buffer): RadiusPacket {
  const p = decodePacket(buf);
  if (p instanceof RadiusDecodeError) throw p;
  return p;
}

/** Places a Message-Authenticator at attribute index `at` and signs the request with it there. */
function signedAt(attributes: RadiusAttribute[], at: number): Buffer {
  const authenticator = Buffer.from('0123456789abcdef');
  const list = [...attributes];
  list.splice(at, 0, { type: AttributeType.MessageAuthenticator, value: Buffer.alloc(16) });
  const raw = encodePacket({ code: Code.AccessRequest, identifier: 77, authenticator, attributes: list });
  let offset = 20;
  for (let i = 0; i < at; i++) offset += 2 + (list[i]?.value.length ?? 0);
  computeMessageAuthenticator(raw, offset + 2, authenticator, SECRET).copy(raw, offset + 2);
  return raw;
}

const common: RadiusAttribute[] = [
  attr.text(AttributeType.UserName, 'fuzz.user@example.org'),
  attr.ipv4(AttributeType.NasIpAddress, '192.0.2.10'),
  attr.text(AttributeType.NasIdentifier, 'edge-vpn-01'),
  attr.text(AttributeType.CallingStationId, '00-11-22-33-44-55'),
  attr.integer(AttributeType.NasPortType, 5),
  attr.octets(AttributeType.State, Buffer.from('c2VhbGVkLXN0YXRl', 'base64')),
  attr.octets(AttributeType.ProxyState, Buffer.from([1, 2, 3])),
  attr.octets(AttributeType.ProxyState, Buffer.from('proxy-two')),
];

// Fixed authenticators, so that a run is reproducible from the seed alone.
const fixed = (n: number): Buffer => Buffer.alloc(16, n);

const BASES: Buffer[] = [
  encodeAccessRequest({ identifier: 1, secret: SECRET, authenticator: fixed(0xa1), attributes: common, password: Buffer.from('hunter2-but-longer-than-16') }).packet,
  encodeAccessRequest({ identifier: 2, secret: SECRET, authenticator: fixed(0xa2), attributes: [attr.text(AttributeType.UserName, 'u')], password: Buffer.from('p') }).packet,
  encodeAccessRequest({ identifier: 3, secret: SECRET, authenticator: fixed(0xa3), attributes: [], code: Code.StatusServer }).packet,
  signedAt([...common, attr.octets(AttributeType.EapMessage, Buffer.from('0201000a01616c696365', 'hex'))], common.length + 1),
  signedAt(common, 4),
  encodeAccessRequest({
    identifier: 4,
    secret: SECRET,
    authenticator: fixed(0xa4),
    attributes: [...common, ...Array.from({ length: 6 }, (_, i) => attr.text(AttributeType.ReplyMessage, `${i}`.repeat(200)))],
    password: Buffer.alloc(128, 0x61),
  }).packet,
  encodeAccountingRequest({
    identifier: 5,
    secret: SECRET,
    messageAuthenticator: true,
    attributes: [attr.integer(AttributeType.AcctStatusType, 1), attr.text(AttributeType.AcctSessionId, 'session-1'), ...common],
  }),
];

/** Value offsets of each attribute (type octet) in a well-formed packet. */
function attributeOffsets(raw: Buffer): number[] {
  const out: number[] = [];
  for (let o = 20; o < raw.length; o += raw[o + 1] as number) out.push(o);
  return out;
}

type Random = () => number;
const int = (rnd: Random, n: number): number => Math.floor(rnd() * n);

/** Applies one random mutation; the packet's original attribute layout guides the structural ones. */
function mutate(rnd: Random, input: Buffer, offsets: readonly number[]): Buffer {
  let b = input;
  const pos = (): number => int(rnd, Math.max(b.length, 1));
  switch (int(rnd, 12)) {
    case 0:
    case 1: {
      if (b.length === 0) break;
      const i = pos();
      b[i] = (b[i] as number) ^ (1 << int(rnd, 8));
      break;
    }
    case 2: {
      if (b.length === 0) break;
      b[pos()] = int(rnd, 256);
      break;
    }
    case 3:
      b = b.subarray(0, int(rnd, b.length + 1));
      break;
    case 4: {
      const extra = Buffer.alloc(1 + int(rnd, 64));
      for (let i = 0; i < extra.length; i++) extra[i] = int(rnd, 256);
      b = Buffer.concat([b, extra]);
      break;
    }
    case 5: {
      // Attribute length tampering: small deltas and arbitrary values.
      const o = offsets[int(rnd, offsets.length)];
      if (o === undefined || o + 1 >= b.length) break;
      const delta = [-2, -1, 1, 2][int(rnd, 4)] as number;
      b[o + 1] = rnd() < 0.5 ? ((b[o + 1] as number) + delta) & 0xff : int(rnd, 256);
      break;
    }
    case 6: {
      if (b.length < 4) break;
      const length = b.readUInt16BE(2);
      b.writeUInt16BE(rnd() < 0.5 ? (length + int(rnd, 9) - 4) & 0xffff : int(rnd, 65536), 2);
      break;
    }
    case 7: {
      const i = int(rnd, b.length + 1);
      b = Buffer.concat([b.subarray(0, i), Buffer.of(int(rnd, 256)), b.subarray(i)]);
      break;
    }
    case 8: {
      if (b.length === 0) break;
      const i = pos();
      b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      break;
    }
    case 9: {
      // Duplicate an attribute at the end and fix Length, e.g. a second Message-Authenticator.
      const o = offsets[int(rnd, offsets.length)];
      if (o === undefined || o + 1 >= b.length) break;
      const copy = b.subarray(o, Math.min(b.length, o + (b[o + 1] as number)));
      b = Buffer.concat([b, copy]);
      if (b.length >= 4 && b.length <= 0xffff) b.writeUInt16BE(b.length, 2);
      break;
    }
    case 10: {
      // Swap two whole attributes (same-length swap keeps the framing valid).
      const i = offsets[int(rnd, offsets.length)];
      const j = offsets[int(rnd, offsets.length)];
      if (i === undefined || j === undefined || i === j || Math.max(i, j) + 1 >= b.length) break;
      const [lo, hi] = i < j ? [i, j] : [j, i];
      const loLen = b[lo + 1] as number;
      const hiLen = b[hi + 1] as number;
      if (lo + loLen > hi || hi + hiLen > b.length) break;
      b = Buffer.concat([b.subarray(0, lo), b.subarray(hi, hi + hiLen), b.subarray(lo + loLen, hi), b.subarray(lo, lo + loLen), b.subarray(hi + hiLen)]);
      break;
    }
    case 11:
      if (b.length > 0) b[0] = [1, 2, 3, 4, 5, 11, 12, 13, int(rnd, 256)][int(rnd, 9)] as number;
      break;
  }
  return b;
}

interface Tally {
  mutants: number;
  decoded: number;
  rejectedByDecoder: number;
  unchangedSigned: number;
  unchangedVerified: number;
  forgeriesAccepted: number;
  throws: number;
  firstThrow: string | undefined;
  firstForgery: string | undefined;
}

void t.test('mutated Access-Requests: decodePacket never throws, no altered request verifies', async (t) => {
  const rnd = prng(SEED);
  const tally: Tally = {
    mutants: 0,
    decoded: 0,
    rejectedByDecoder: 0,
    unchangedSigned: 0,
    unchangedVerified: 0,
    forgeriesAccepted: 0,
    throws: 0,
    firstThrow: undefined,
    firstForgery: undefined,
  };
  const bases = BASES.map((raw) => ({ raw, offsets: attributeOffsets(raw) }));
  for (const { raw } of bases) t.equal(verifyRequestMessageAuthenticator(decoded(raw), SECRET), 'valid', 'base packet verifies');

  const started = process.hrtime.bigint();
  for (let n = 0; n < REQUEST_MUTANTS; n++) {
    const base = bases[n % bases.length] as (typeof bases)[number];
    let mutant: Buffer = Buffer.from(base.raw);
    const rounds = 1 + int(rnd, 4);
    for (let r = 0; r < rounds; r++) mutant = mutate(rnd, mutant, base.offsets);
    tally.mutants++;
    try {
      const p = decodePacket(mutant);
      if (p instanceof RadiusDecodeError) {
        tally.rejectedByDecoder++;
        continue;
      }
      tally.decoded++;
      const verdict = verifyRequestMessageAuthenticator(p, SECRET);
      const unchanged = p.raw.equals(base.raw);
      if (unchanged) {
        tally.unchangedSigned++;
        if (verdict === 'valid') tally.unchangedVerified++;
      } else if (verdict === 'valid') {
        tally.forgeriesAccepted++;
        tally.firstForgery ??= mutant.toString('hex');
      }
      // Whatever the verdict, the rest of the read path must survive the packet too.
      formatAttributes(p.attributes);
      for (const a of p.attributes) if (a.type === AttributeType.UserPassword) unhidePassword(a.value, SECRET, p.authenticator);
    } catch (err) {
      tally.throws++;
      tally.firstThrow ??= `${String(err)} on ${mutant.toString('hex')}`;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  t.comment(`${tally.mutants} mutants in ${seconds.toFixed(1)} s: ${tally.rejectedByDecoder} refused by decodePacket, ${tally.decoded} decoded, ${tally.unchangedSigned} with unchanged signed bytes`);

  t.equal(tally.throws, 0, `nothing throws${tally.firstThrow ? `; first: ${tally.firstThrow}` : ''}`);
  t.equal(tally.forgeriesAccepted, 0, `no altered request verifies${tally.firstForgery ? `; first: ${tally.firstForgery}` : ''}`);
  t.ok(tally.unchangedSigned > 1000, 'the loop produced packets whose signed bytes are intact (padding, undone flips)');
  t.equal(tally.unchangedVerified, tally.unchangedSigned, 'and every one of those still verifies');
  t.ok(tally.decoded > REQUEST_MUTANTS / 10, 'a good share of mutants get past the decoder to the MAC check');
});

void t.test('mutated replies: no altered reply passes verifyReply', async (t) => {
  const rnd = prng(SEED ^ 0x5bd1e995);
  const requests = BASES.slice(0, 5).map(decoded);
  const replies = requests.flatMap((request) =>
    (request.code === Code.StatusServer ? [Code.AccessAccept] : [Code.AccessAccept, Code.AccessReject, Code.AccessChallenge]).map((code) => {
      const raw = encodeReply(request, code, [attr.text(AttributeType.ReplyMessage, 'hello'), attr.octets(AttributeType.State, Buffer.from('s'))], SECRET);
      return { request, raw, offsets: attributeOffsets(raw) };
    }),
  );
  for (const r of replies) t.ok(verifyReply(decoded(r.raw), r.request.authenticator, SECRET, { requireMessageAuthenticator: true }), 'base reply verifies');

  let forgeries = 0;
  let throws = 0;
  let unchanged = 0;
  let unchangedVerified = 0;
  for (let n = 0; n < REPLY_MUTANTS; n++) {
    const base = replies[n % replies.length] as (typeof replies)[number];
    let mutant: Buffer = Buffer.from(base.raw);
    const rounds = 1 + int(rnd, 3);
    for (let r = 0; r < rounds; r++) mutant = mutate(rnd, mutant, base.offsets);
    try {
      const p = decodePacket(mutant);
      if (p instanceof RadiusDecodeError) continue;
      // Not requiring the MAC: a mutant that merely drops or renames it must still fail on the Response Authenticator.
      const ok = verifyReply(p, base.request.authenticator, SECRET);
      if (p.raw.equals(base.raw)) {
        unchanged++;
        if (ok) unchangedVerified++;
      } else if (ok) forgeries++;
    } catch {
      throws++;
    }
  }
  t.equal(throws, 0, 'nothing throws');
  t.equal(forgeries, 0, 'no altered reply verifies');
  t.ok(unchanged > 100);
  t.equal(unchangedVerified, unchanged, 'intact replies still verify');
});
