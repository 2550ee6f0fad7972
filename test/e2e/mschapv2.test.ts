import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { MS_CHAP_V2_UNSUPPORTED_MESSAGE } from '../../src/auth/steps/first-factor.js';
import { MS_CHAP_V2_NO_CODE_MESSAGE } from '../../src/auth/steps/second-factor.js';
import {
  AttributeType,
  Code,
  MicrosoftAttributeType as MS,
  RadiusDecodeError,
  VendorId,
  attr,
  decodePacket,
  decryptMppeKey,
  encodeAccessRequest,
  getAttribute,
  getVendorAttributes,
  readInteger,
  readText,
  verifyReply,
  type RadiusAttribute,
  type RadiusPacket,
} from '../../src/radius/codec/index.js';
import { startFreeRadius } from '../peers/freeradius.js';
import { startGateway } from '../peers/gateway.js';
import { msChapV2Login, ntPasswordHash, type MsChapV2Login } from '../peers/mschapv2.js';
import { assertLoopback, freePort } from '../peers/ports.js';
import { radclient } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { tempDir } from '../peers/temp.js';
import { TotpCodes, exportedAudit } from '../peers/totp-codes.js';

/**
 * End to end: MS-CHAPv2 logins as a VPN concentrator sends them (raw UDP from the test, on five
 * loopback source addresses, one per NAS client), through the real gateway process, to a real
 * FreeRADIUS 3.2 upstream that holds the passwords (one in clear text, one as an NT hash only).
 * The test computes, per RFC 2759 and RFC 3079, what the NAS must receive: MS-CHAP2-Success with
 * the authenticator response, and the MPPE keys FreeRADIUS derived from the password, which the
 * gateway must have decrypted from FreeRADIUS's answer and encrypted again for the NAS.
 */

const MS_PASSWORD = 'Ms-Pass-1234';
const NT_PASSWORD = 'Nt-Pass-5678';
const FR_SECRET = 'upstream-secret-0123456789';
const USERS = ['msuser', 'ntuser'];
const codes = new TotpCodes(4, 'mschap-seed');

/** A NAS: one UDP socket on its own loopback address, so a retransmission comes from the same port. */
class Nas {
  private constructor(
    private readonly socket: Socket,
    private readonly gatewayPort: number,
  ) {}

  static async open(address: string, gatewayPort: number): Promise<Nas> {
    assertLoopback(address);
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    return new Nas(socket, gatewayPort);
  }

  /** Sends `packet` and resolves the first reply with its identifier (undefined after `timeoutMs`). */
  exchange(packet: Buffer, timeoutMs = 8000): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const onMessage = (msg: Buffer, rinfo: { port: number }): void => {
        if (rinfo.port !== this.gatewayPort || msg[1] !== packet[1]) return;
        finish(msg);
      };
      const finish = (reply: Buffer | undefined): void => {
        clearTimeout(timer);
        this.socket.off('message', onMessage);
        resolve(reply);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      this.socket.on('message', onMessage);
      this.socket.send(packet, this.gatewayPort, '127.0.0.1');
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

const ms = (type: number, value: Buffer): RadiusAttribute => attr.vendorSpecific(VendorId.Microsoft, type, value);
const msValues = (p: RadiusPacket, type: number): Buffer[] => getVendorAttributes(p, VendorId.Microsoft, type).map((a) => a.value);

t.test('MS-CHAPv2 through the gateway to a FreeRADIUS that holds the passwords', async (t) => {
  if (!requirePeer(t, 'freeradius', 'freeradius') || !requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const dir = tempDir('mfa-e2e-mschap-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');

  const fr = await startFreeRadius({
    t,
    clients: [{ address: '127.0.0.1', secret: FR_SECRET, requireMessageAuthenticator: true }],
    replyMessageAuthenticator: true,
    users: [
      { name: 'msuser', cleartext: MS_PASSWORD, reply: { 'Filter-Id': 'vpn-ms' } },
      { name: 'ntuser', ntHash: ntPasswordHash(NT_PASSWORD).toString('hex') },
      { name: 'msnotoken', cleartext: MS_PASSWORD },
    ],
  });

  const radiusPort = await freePort('udp');
  const client = (name: string, address: string, policy: string, more = ''): string => `
  - name: ${name}
    addresses: [${address}]
    secret: {file: radius-secret, generate: true}
    policy: ${policy}${more}`;
  const configYaml = `data_dir: ${JSON.stringify(dataDir)}
keys:
  master_key: {file: master.key, generate: true}
log:
  level: info
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${await freePort('udp')}}]
clients:${client('vpn', '127.0.0.1', 'upstream')}${client('vpn-nochallenge', '127.0.0.2', 'upstream', '\n    challenge: false')}${client('vpn-local', '127.0.0.3', 'local')}${client('vpn-ldap', '127.0.0.4', 'ldap')}${client('vpn-allow', '127.0.0.5', 'allow')}
policies:
  upstream: {first_factor: 'radius:fr'}
  allow: {first_factor: 'radius:fr', unenrolled: allow}
  local: {first_factor: local}
  ldap: {first_factor: 'ldap:corp'}
directories:
  corp:
    flavour: ldap
    urls: ['ldaps://127.0.0.1:${await freePort('tcp')}']
    bind_dn: 'cn=admin,dc=example,dc=test'
    bind_password: {file: corp-bind}
    base_dn: 'dc=example,dc=test'
    timeout_ms: 1000
upstreams:
  fr:
    servers:
      - {address: 127.0.0.1, port: ${fr.port}, secret: {file: fr-secret}}
    timeout_ms: 2000
    tries: 1
lockout:
  max_failures: 0
`;
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'fr-secret'), `${FR_SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(dataDir, 'corp-bind'), 'unused-bind-password\n', { mode: 0o600 });
  const gw = await startGateway({ dir: dir.path, configYaml, t });
  const secret = Buffer.from(gw.secret());

  for (const user of [...USERS, 'msnotoken']) {
    const add = await gw.cli(['users', 'add', user, '--no-password']);
    t.equal(add.code, 0, `users add ${user}: ${add.stderr}`);
    if (user === 'msnotoken') continue;
    await codes.enrol(gw, user);
  }

  const nases = new Map<string, Nas>();
  for (const address of ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) nases.set(address, await Nas.open(address, radiusPort));
  t.teardown(() => Promise.all([...nases.values()].map((n) => n.close())));
  let identifier = 0;

  /** An Access-Request from the NAS at `from`; the reply decoded and checked as a NAS checks it. */
  async function send(from: string, attributes: RadiusAttribute[], password?: string) {
    const { packet, authenticator } = encodeAccessRequest({
      identifier: ++identifier % 256,
      secret,
      attributes,
      ...(password === undefined ? {} : { password: Buffer.from(password) }),
    });
    const raw = await (nases.get(from) as Nas).exchange(packet);
    if (raw === undefined) throw new Error(`no reply from the gateway to ${from}`);
    const reply = decodePacket(raw);
    if (reply instanceof RadiusDecodeError) throw reply;
    if (!verifyReply(reply, authenticator, secret, { requireMessageAuthenticator: true })) throw new Error('reply does not verify');
    return { packet, authenticator, raw, reply };
  }
  const loginAttributes = (user: string, login: MsChapV2Login): RadiusAttribute[] => [
    attr.text(AttributeType.UserName, user),
    attr.text(AttributeType.NasIdentifier, 'vpn-ms'),
    ms(MS.MsChapChallenge, login.challenge),
    ms(MS.MsChap2Response, login.response),
  ];
  const replyMessage = (p: RadiusPacket): string | undefined => {
    const v = getAttribute(p, AttributeType.ReplyMessage);
    return v === undefined ? undefined : readText(v);
  };
  /** What the NAS gets to finish MS-CHAPv2 and key MPPE, checked against the RFC computations. */
  const keysSeen: string[] = [];
  const checkKeys = (t: Test, reply: RadiusPacket, requestAuthenticator: Buffer, login: MsChapV2Login): void => {
    keysSeen.push(login.sendKey.toString('hex'), login.recvKey.toString('hex'));
    t.same(msValues(reply, MS.MsChap2Success), [login.success], 'MS-CHAP2-Success is the RFC 2759 authenticator response');
    const sends = msValues(reply, MS.MsMppeSendKey);
    const recvs = msValues(reply, MS.MsMppeRecvKey);
    t.equal(sends.length + recvs.length, 2, 'one MS-MPPE-Send-Key, one MS-MPPE-Recv-Key');
    const [send = Buffer.alloc(0)] = sends;
    const [recv = Buffer.alloc(0)] = recvs;
    t.same(decryptMppeKey(send, secret, requestAuthenticator), login.sendKey, "MS-MPPE-Send-Key: with the NAS's secret and this request's authenticator, the RFC 3079 send key");
    t.same(decryptMppeKey(recv, secret, requestAuthenticator), login.recvKey, 'MS-MPPE-Recv-Key: likewise, the receive key');
    t.ok(((send[0] ?? 0) & 0x80) !== 0 && ((recv[0] ?? 0) & 0x80) !== 0 && !send.subarray(0, 2).equals(recv.subarray(0, 2)), 'salts with the high bit set, one per attribute');
    t.notOk(decryptMppeKey(send, Buffer.from(FR_SECRET), requestAuthenticator)?.equals(login.sendKey), "not readable with the upstream's secret");
    t.same(msValues(reply, MS.MsMppeEncryptionPolicy).map(readInteger), [2], 'MS-MPPE-Encryption-Policy carried');
    t.same(msValues(reply, MS.MsMppeEncryptionTypes).map(readInteger), [4], 'MS-MPPE-Encryption-Types carried');
  };

  await t.test('challenge for the TOTP code, then the accept with MS-CHAP2-Success and the MPPE keys; a retransmission gets the same bytes', async (t) => {
    const login = msChapV2Login('msuser', MS_PASSWORD);
    const first = await send('127.0.0.1', loginAttributes('msuser', login));
    t.equal(first.reply.code, Code.AccessChallenge, 'FreeRADIUS accepted the MS-CHAPv2 response: the gateway asks for the code');
    const state = getAttribute(first.reply, AttributeType.State);
    t.ok(state, 'with a State');
    t.ok(replyMessage(first.reply), 'and a prompt');
    t.same([msValues(first.reply, MS.MsChap2Success), msValues(first.reply, MS.MsMppeSendKey), msValues(first.reply, MS.MsMppeRecvKey)], [[], [], []], 'nothing of MS-CHAPv2 in the challenge');

    const answer = await send('127.0.0.1', [attr.text(AttributeType.UserName, 'msuser'), attr.octets(AttributeType.State, state ?? Buffer.alloc(1))], await codes.next('msuser'));
    t.equal(answer.reply.code, Code.AccessAccept);
    checkKeys(t, answer.reply, answer.authenticator, login);
    t.equal(readText(getAttribute(answer.reply, AttributeType.FilterId) ?? Buffer.alloc(0)), 'vpn-ms', "the upstream's other reply attributes too");

    const again = await (nases.get('127.0.0.1') as Nas).exchange(answer.packet);
    t.ok(again?.equals(answer.raw), 'the retransmitted final request gets the byte-identical reply (same salts, same keys)');
  });

  await t.test('an NT-hash-only user; the final answer sent by radclient, which decrypts the keys itself', async (t) => {
    const login = msChapV2Login('ntuser', NT_PASSWORD);
    const first = await send('127.0.0.1', loginAttributes('ntuser', login));
    t.equal(first.reply.code, Code.AccessChallenge);
    const state = getAttribute(first.reply, AttributeType.State) ?? Buffer.alloc(1);
    const r = await radclient({
      host: '127.0.0.1',
      port: radiusPort,
      secret: secret.toString(),
      type: 'auth',
      packets: [{ 'User-Name': 'ntuser', 'User-Password': await codes.next('ntuser'), State: `0x${state.toString('hex')}`, 'Message-Authenticator': '0x00' }],
      retries: 1,
      timeoutSec: 8,
    });
    const reply = r.replies[0];
    t.equal(reply?.code, 'Access-Accept', `radclient: ${r.stderr}`);
    t.same(reply?.attributes['MS-MPPE-Send-Key'], [`0x${login.sendKey.toString('hex')}`], "FreeRADIUS's decoder reads the gateway's MS-MPPE-Send-Key as the RFC 3079 send key");
    t.same(reply?.attributes['MS-MPPE-Recv-Key'], [`0x${login.recvKey.toString('hex')}`], 'and MS-MPPE-Recv-Key as the receive key');
    t.same(reply?.attributes['MS-CHAP2-Success'], [`0x${login.success.toString('hex')}`], 'MS-CHAP2-Success');
  });

  await t.test('a wrong password: Access-Reject with the upstream MS-CHAP-Error', async (t) => {
    const login = msChapV2Login('msuser', 'not-the-password', { ident: 0x3c });
    const { reply } = await send('127.0.0.1', loginAttributes('msuser', login));
    t.equal(reply.code, Code.AccessReject);
    const [error] = msValues(reply, MS.MsChapError);
    t.equal(error?.[0], 0x3c, "MS-CHAP-Error with the response's Ident");
    t.match(readText(error?.subarray(1) ?? Buffer.alloc(0)), /^E=691 R=\d C=[0-9A-Fa-f]{32} V=3/, 'E=691 (RFC 2759 §6)');
    t.same([msValues(reply, MS.MsMppeSendKey), msValues(reply, MS.MsChap2Success)], [[], []], 'no keys, no success');
  });

  await t.test('a client that cannot show a challenge: rejected, and told why', async (t) => {
    const { reply } = await send('127.0.0.2', loginAttributes('msuser', msChapV2Login('msuser', MS_PASSWORD)));
    t.equal(reply.code, Code.AccessReject);
    t.equal(replyMessage(reply), MS_CHAP_V2_NO_CODE_MESSAGE);
    t.same(msValues(reply, MS.MsMppeSendKey), [], 'no keys with a reject');
  });

  await t.test('first factors local and ldap: cannot check MS-CHAPv2', async (t) => {
    for (const from of ['127.0.0.3', '127.0.0.4']) {
      const { reply } = await send(from, loginAttributes('msuser', msChapV2Login('msuser', MS_PASSWORD)));
      t.equal(reply.code, Code.AccessReject, from);
      t.equal(replyMessage(reply), MS_CHAP_V2_UNSUPPORTED_MESSAGE, `${from}: told why`);
    }
  });

  await t.test('unenrolled: allow: accepted on the upstream alone, with MS-CHAP2-Success and the keys', async (t) => {
    const login = msChapV2Login('msnotoken', MS_PASSWORD);
    const { reply, authenticator } = await send('127.0.0.5', loginAttributes('msnotoken', login));
    t.equal(reply.code, Code.AccessAccept);
    checkKeys(t, reply, authenticator, login);
  });

  await t.test('one audit record per attempt, each with its reason; no password, key or secret in any log', async (t) => {
    const view = (await exportedAudit(gw)).map((r) => `${String(r.username)} ${String(r.clientName)} ${String(r.firstFactor)} ${String(r.result)} ${String(r.reason)}`);
    t.same(
      view.filter((v) => v.startsWith('msuser ')),
      [
        'msuser vpn radius:fr challenge challenge_code',
        'msuser vpn radius:fr accept accepted',
        'msuser vpn radius:fr reject upstream_rejected',
        'msuser vpn-nochallenge radius:fr reject code_missing',
        'msuser vpn-local local reject first_factor_unsupported',
        'msuser vpn-ldap ldap:corp reject first_factor_unsupported',
      ],
      'msuser: the retransmission made no second record',
    );
    t.same(view.filter((v) => v.startsWith('ntuser ')), ['ntuser vpn radius:fr challenge challenge_code', 'ntuser vpn radius:fr accept accepted']);
    t.same(view.filter((v) => v.startsWith('msnotoken ')), ['msnotoken vpn-allow radius:fr accept accepted_unenrolled']);
    const logs = gw.allLogs();
    t.notOk(logs.includes(MS_PASSWORD) || logs.includes(NT_PASSWORD) || logs.includes(FR_SECRET) || logs.includes(secret.toString()), 'no password or secret in the logs');
    t.ok(keysSeen.length >= 4 && !keysSeen.some((k) => logs.toLowerCase().includes(k)), 'no MPPE key in the logs');
  });

  t.equal(await gw.stop(), 0, 'SIGTERM: exit 0');
  await fr.stop();
});
