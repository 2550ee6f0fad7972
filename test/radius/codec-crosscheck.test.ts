/**
 * Cross-check of our codec against a second implementation, the `radius` npm package (1.1.4):
 * each side decodes what the other encoded, hides/unhides the other's User-Password, and checks
 * the other's Response Authenticators and Message-Authenticators.
 *
 * Only what that package does right is compared. Its known flaws, and what we do about them:
 * - it compares Message-Authenticators as UTF-8 strings (lossy: unequal MACs can compare equal),
 *   so its MAC checks are used only positively (our good MAC must pass), never to show rejection;
 * - it appends Message-Authenticator last (we put it first): both positions must verify on our side;
 * - it mangles RFC 2868 tagged attributes and computes an Accounting-Request MAC after the
 *   authenticator (nobody else does): neither is compared;
 * - its User-Password decoding stops at the first NUL of each block and decodes UTF-8, and it
 *   encodes an empty password as an empty attribute: passwords here are 1..128 octets of NUL-free UTF-8;
 * - it skips empty strings on encode and has no bounds checks on decode: values are non-empty
 *   and it is only ever fed well-formed packets.
 */
import t from 'tap';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import radius from 'radius';
import {
  AttributeType,
  Code,
  RadiusDecodeError,
  STANDARD_ATTRIBUTES,
  attr,
  computeResponseAuthenticator,
  decodePacket,
  encodeAccessRequest,
  encodeAccountingRequest,
  encodePacket,
  encodeReply,
  getAttribute,
  getAttributes,
  readText,
  unhidePassword,
  verifyAccountingRequestAuthenticator,
  verifyReply,
  verifyReplyMessageAuthenticator,
  verifyRequestMessageAuthenticator,
} from '../../src/radius/codec/index.js';
import type { RadiusAttribute, RadiusPacket } from '../../src/radius/codec/index.js';

const SEED = 0x2865_3579;
const RUNS = 300;
t.comment(`fast-check seed ${SEED}, ${RUNS} runs per property`);

radius.load_dictionaries();

const REPLY_CODES = { 'Access-Accept': Code.AccessAccept, 'Access-Reject': Code.AccessReject, 'Access-Challenge': Code.AccessChallenge } as const;
type ReplyName = keyof typeof REPLY_CODES;

interface Sample {
  readonly secret: string;
  readonly identifier: number;
  readonly authenticator: Buffer;
  readonly userName: string;
  readonly nasIdentifier: string | undefined;
  readonly state: Buffer | undefined;
  readonly proxyStates: readonly Buffer[];
  readonly password: string;
  readonly withMac: boolean;
  readonly reply: ReplyName;
  readonly replyMessages: readonly string[];
  readonly classes: readonly Buffer[];
  readonly replyState: Buffer | undefined;
}

const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c));
const fits = (max: number) => (s: string) => Buffer.byteLength(s) <= max;
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter(fits(253));
const octets = fc.uint8Array({ minLength: 1, maxLength: 80 }).map((a) => Buffer.from(a));
const password = fc
  .oneof(fc.string({ unit: printable, minLength: 1, maxLength: 128 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }))
  .filter((s) => !s.includes('\0') && fits(128)(s));

const sample: fc.Arbitrary<Sample> = fc.record({
  secret: fc.string({ unit: printable, minLength: 1, maxLength: 48 }),
  identifier: fc.integer({ min: 0, max: 255 }),
  authenticator: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
  userName: text,
  nasIdentifier: fc.option(text, { nil: undefined }),
  state: fc.option(octets, { nil: undefined }),
  proxyStates: fc.array(octets, { maxLength: 3 }),
  password,
  withMac: fc.boolean(),
  reply: fc.constantFrom<ReplyName>('Access-Accept', 'Access-Reject', 'Access-Challenge'),
  replyMessages: fc.array(text, { maxLength: 3 }),
  classes: fc.array(octets, { maxLength: 2 }),
  replyState: fc.option(octets, { nil: undefined }),
});

const params = { seed: SEED, numRuns: RUNS };

function ours(s: Sample): RadiusAttribute[] {
  return [
    attr.text(AttributeType.UserName, s.userName),
    ...(s.nasIdentifier === undefined ? [] : [attr.text(AttributeType.NasIdentifier, s.nasIdentifier)]),
    ...(s.state === undefined ? [] : [attr.octets(AttributeType.State, s.state)]),
    ...s.proxyStates.map((p) => attr.octets(AttributeType.ProxyState, p)),
  ];
}

function theirs(s: Sample): Array<[string, string | Buffer]> {
  return [
    ['User-Name', s.userName],
    ['User-Password', s.password],
    ...(s.nasIdentifier === undefined ? [] : [['NAS-Identifier', s.nasIdentifier] as [string, string]]),
    ...(s.state === undefined ? [] : [['State', s.state] as [string, Buffer]]),
    ...s.proxyStates.map((p) => ['Proxy-State', p] as [string, Buffer]),
  ];
}

function replyAttributes(s: Sample): RadiusAttribute[] {
  return [
    ...s.replyMessages.map((m) => attr.text(AttributeType.ReplyMessage, m)),
    ...s.classes.map((c) => attr.octets(AttributeType.Class, c)),
    ...(s.replyState === undefined ? [] : [attr.octets(AttributeType.State, s.replyState)]),
  ];
}

function theirReplyAttributes(s: Sample): Array<[string, string | Buffer]> {
  return [
    ...s.replyMessages.map((m) => ['Reply-Message', m] as [string, string]),
    ...s.classes.map((c) => ['Class', c] as [string, Buffer]),
    ...(s.replyState === undefined ? [] : [['State', s.replyState] as [string, Buffer]]),
  ];
}

/** Their decoded attribute as a list, whether it appeared once (a value) or more (an array). */
function all(decoded: ReturnType<typeof radius.decode>, name: string): unknown[] {
  const v = decoded.attributes[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function decoded(buf: Buffer): RadiusPacket {
  const p = decodePacket(buf);
  if (p instanceof RadiusDecodeError) throw p;
  return p;
}

void t.test('our Access-Request, decoded by radius', async (t) => {
  fc.assert(
    fc.property(sample, (s) => {
      const { packet, authenticator } = encodeAccessRequest({
        identifier: s.identifier,
        secret: Buffer.from(s.secret),
        authenticator: s.authenticator,
        password: Buffer.from(s.password),
        attributes: ours(s),
      });
      // Throws if it finds our Message-Authenticator wrong.
      const d = radius.decode({ packet, secret: s.secret });
      assert.equal(d.code, 'Access-Request');
      assert.equal(d.identifier, s.identifier);
      assert.ok(d.authenticator.equals(authenticator));
      assert.equal(d.attributes['User-Name'], s.userName);
      assert.equal(d.attributes['User-Password'], s.password, 'our hiding, their unhiding');
      assert.equal(d.attributes['NAS-Identifier'], s.nasIdentifier);
      assert.deepEqual(all(d, 'State'), s.state ? [s.state] : []);
      assert.deepEqual(all(d, 'Proxy-State'), s.proxyStates);
      assert.equal(d.raw_attributes[0]?.[0], AttributeType.MessageAuthenticator);
    }),
    params,
  );
  t.pass(`${RUNS} packets`);
});

void t.test('radius Access-Request, decoded by us', async (t) => {
  fc.assert(
    fc.property(sample, (s) => {
      const packet = radius.encode({
        code: 'Access-Request',
        identifier: s.identifier,
        authenticator: s.authenticator,
        secret: s.secret,
        attributes: theirs(s),
        add_message_authenticator: s.withMac,
      });
      const p = decoded(packet);
      assert.equal(p.code, Code.AccessRequest);
      assert.equal(p.identifier, s.identifier);
      assert.ok(p.authenticator.equals(s.authenticator));
      assert.equal(readText(getAttribute(p, AttributeType.UserName) as Buffer), s.userName);
      const hidden = getAttribute(p, AttributeType.UserPassword) as Buffer;
      assert.equal(unhidePassword(hidden, Buffer.from(s.secret), p.authenticator)?.toString(), s.password, 'their hiding, our unhiding');
      assert.equal(getAttribute(p, AttributeType.NasIdentifier)?.toString(), s.nasIdentifier);
      assert.deepEqual(getAttributes(p, AttributeType.State), s.state ? [s.state] : []);
      assert.deepEqual(getAttributes(p, AttributeType.ProxyState), s.proxyStates);
      // Theirs puts the MAC last; ours must verify it wherever it is.
      assert.equal(verifyRequestMessageAuthenticator(p, Buffer.from(s.secret)), s.withMac ? 'valid' : 'missing');
      assert.ok(encodePacket(p).equals(packet), 'we re-encode it byte for byte');
    }),
    params,
  );
  t.pass(`${RUNS} packets`);
});

void t.test('our replies, verified and decoded by radius', async (t) => {
  fc.assert(
    fc.property(sample, (s) => {
      const requestBytes = radius.encode({
        code: 'Access-Request',
        identifier: s.identifier,
        authenticator: s.authenticator,
        secret: s.secret,
        attributes: theirs(s),
        add_message_authenticator: s.withMac,
      });
      const request = decoded(requestBytes);
      const reply = encodeReply(request, REPLY_CODES[s.reply], replyAttributes(s), Buffer.from(s.secret));
      // Response Authenticator, and our (first-position) MAC when their request had one.
      assert.ok(radius.verify_response({ request: Buffer.from(requestBytes), response: Buffer.from(reply), secret: s.secret }));
      const d = radius.decode({ packet: reply, secret: s.secret });
      assert.equal(d.code, s.reply);
      assert.equal(d.identifier, s.identifier);
      assert.deepEqual(all(d, 'Reply-Message'), s.replyMessages);
      assert.deepEqual(all(d, 'Class'), s.classes);
      assert.deepEqual(all(d, 'State'), s.replyState ? [s.replyState] : []);
      assert.deepEqual(all(d, 'Proxy-State'), s.proxyStates, 'Proxy-State echoed in order');
    }),
    params,
  );
  t.pass(`${RUNS} replies`);
});

void t.test('radius replies, verified and decoded by us', async (t) => {
  fc.assert(
    fc.property(sample, (s) => {
      const requestBytes = radius.encode({
        code: 'Access-Request',
        identifier: s.identifier,
        authenticator: s.authenticator,
        secret: s.secret,
        attributes: theirs(s),
        add_message_authenticator: s.withMac,
      });
      const theirRequest = radius.decode({ packet: requestBytes, secret: s.secret });
      const replyBytes = radius.encode_response({ packet: theirRequest, code: s.reply, secret: s.secret, attributes: theirReplyAttributes(s) });
      const reply = decoded(replyBytes);
      const secret = Buffer.from(s.secret);
      assert.equal(reply.code, REPLY_CODES[s.reply]);
      assert.equal(reply.identifier, s.identifier);
      assert.ok(verifyReply(reply, s.authenticator, secret, { requireMessageAuthenticator: s.withMac }));
      assert.equal(verifyReplyMessageAuthenticator(reply, s.authenticator, secret), s.withMac ? 'valid' : 'missing');
      assert.equal(verifyReply(reply, Buffer.alloc(16, 0xff), secret), false);
      assert.deepEqual(
        getAttributes(reply, AttributeType.ReplyMessage).map((b) => b.toString()),
        s.replyMessages,
      );
      assert.deepEqual(getAttributes(reply, AttributeType.Class), s.classes);
      assert.deepEqual(getAttributes(reply, AttributeType.ProxyState), s.proxyStates);
    }),
    params,
  );
  t.pass(`${RUNS} replies`);
});

void t.test('Response Authenticators agree byte for byte', async (t) => {
  fc.assert(
    fc.property(sample, (s) => {
      const theirBytes = radius.encode({
        code: s.reply,
        identifier: s.identifier,
        authenticator: s.authenticator,
        secret: s.secret,
        attributes: theirReplyAttributes(s),
        add_message_authenticator: false,
      });
      const ourBytes = encodePacket({
        code: REPLY_CODES[s.reply],
        identifier: s.identifier,
        authenticator: s.authenticator,
        attributes: replyAttributes(s),
      });
      computeResponseAuthenticator(ourBytes, s.authenticator, Buffer.from(s.secret)).copy(ourBytes, 4);
      assert.equal(ourBytes.toString('hex'), theirBytes.toString('hex'));
    }),
    params,
  );
  t.pass(`${RUNS} replies`);
});

void t.test('Accounting-Request authenticators (RFC 2866 §3), both ways', async (t) => {
  fc.assert(
    fc.property(sample, fc.constantFrom('Start', 'Stop', 'Interim-Update'), (s, status) => {
      const theirBytes = radius.encode({
        code: 'Accounting-Request',
        identifier: s.identifier,
        secret: s.secret,
        attributes: [
          ['Acct-Status-Type', status],
          ['User-Name', s.userName],
          ['Acct-Session-Id', s.secret],
        ],
      });
      const p = decoded(theirBytes);
      assert.ok(verifyAccountingRequestAuthenticator(p, Buffer.from(s.secret)));
      assert.ok(!verifyAccountingRequestAuthenticator(p, Buffer.from(`${s.secret}x`)));

      const ourBytes = encodeAccountingRequest({
        identifier: s.identifier,
        secret: Buffer.from(s.secret),
        attributes: [attr.integer(AttributeType.AcctStatusType, 1), attr.text(AttributeType.UserName, s.userName)],
      });
      // Throws if it finds our authenticator wrong.
      const d = radius.decode({ packet: ourBytes, secret: s.secret });
      assert.equal(d.attributes['Acct-Status-Type'], 'Start');
      assert.equal(d.attributes['User-Name'], s.userName);
    }),
    params,
  );
  t.pass(`${RUNS} packets`);
});

void t.test('dictionary names and named values agree with radius (FreeRADIUS dictionaries)', async (t) => {
  let compared = 0;
  const mismatches: string[] = [];
  for (const def of STANDARD_ATTRIBUTES.values()) {
    const theirName = radius.attr_id_to_name(def.type);
    if (theirName === undefined) continue;
    compared++;
    if (theirName !== def.name) mismatches.push(`${def.type}: ours ${def.name}, theirs ${theirName}`);
    // Tagged values are among the things radius mangles.
    if (!def.values || def.tagged) continue;
    for (const [n, label] of def.values) {
      const bytes = encodePacket({ code: Code.AccessAccept, identifier: 0, authenticator: Buffer.alloc(16), attributes: [attr.integer(def.type, n)] });
      const value = radius.decode({ packet: bytes, secret: 'x' }).attributes[def.name];
      if (value !== label && typeof value === 'string') mismatches.push(`${def.name} ${n}: ours ${label}, theirs ${value}`);
    }
  }
  t.ok(compared > 100, `${compared} attributes known to both`);
  t.same(mismatches, []);
});
