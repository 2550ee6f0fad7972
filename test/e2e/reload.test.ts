import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Secret, TOTP } from 'otpauth';
import t from 'tap';
import {
  AttributeType,
  Code,
  RadiusDecodeError,
  attr,
  decodePacket,
  encodeAccessRequest,
  getAttribute,
  verifyReply,
  type RadiusAttribute,
  type RadiusPacket,
} from '../../src/radius/codec/index.js';
import { startGateway, type RunningGateway } from '../peers/gateway.js';
import { freePort } from '../peers/ports.js';
import { tempDir } from '../peers/temp.js';

/**
 * End to end: SIGHUP reloads clients and policies without a restart and without dropping the
 * attempts in flight; a challenge begun before the reload is finished after it; a new client's
 * `generate: true` secret is created by the reload; a broken file is refused and the running
 * configuration kept; SIGTERM still exits 0.
 */

const SEEDS: Record<string, string> = {
  alice: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXA',
  bob: 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLB',
  carol: 'MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LC',
};
const PASSWORDS: Record<string, string> = { alice: 'Alice-Pass-4711', bob: 'Bob-Pass-0815x', carol: 'Carol-Pass-1234' };
const pw = (user: string): string => PASSWORDS[user] ?? '';
const totp = (user: string): string => new TOTP({ secret: Secret.fromBase32(SEEDS[user] ?? '') }).generate();

/** Waits for the start of a fresh 30 s step when the current one is nearly over, so a code stays valid for the test. */
async function freshStep(): Promise<void> {
  const left = 30_000 - (Date.now() % 30_000);
  if (left < 8_000) await sleep(left + 100);
}

let nextId = 0;

/**
 * One Access-Request from the source address `from` (a loopback address), answered or not
 * within `timeoutMs`. A reply counts only when its authenticators verify with `secret`.
 */
async function request(
  port: number,
  from: string,
  secret: string,
  user: string,
  password: string,
  extra: RadiusAttribute[] = [],
  timeoutMs = 5000,
): Promise<RadiusPacket | undefined> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  const { packet, authenticator } = encodeAccessRequest({
    identifier: nextId++ % 256,
    secret: Buffer.from(secret),
    attributes: [attr.text(AttributeType.UserName, user), attr.text(AttributeType.NasIdentifier, 'e2e-reload'), ...extra],
    password: Buffer.from(password),
  });
  try {
    return await new Promise<RadiusPacket | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      socket.on('message', (msg) => {
        const decoded = decodePacket(msg);
        if (decoded instanceof RadiusDecodeError || !verifyReply(decoded, authenticator, Buffer.from(secret), { requireMessageAuthenticator: true })) return;
        clearTimeout(timer);
        resolve(decoded);
      });
      socket.send(packet, port, '127.0.0.1');
    });
  } finally {
    socket.close();
  }
}

const codeName = (p: RadiusPacket | undefined): string =>
  p === undefined ? 'no reply' : ({ [Code.AccessAccept]: 'Access-Accept', [Code.AccessReject]: 'Access-Reject', [Code.AccessChallenge]: 'Access-Challenge' }[p.code] ?? `code ${p.code}`);

t.test('SIGHUP reload: new client, new lockout policy, challenge across the reload, refused bad config', async (t) => {
  const dir = tempDir('mfa-e2e-reload-');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');
  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');
  const q = (s: string): string => JSON.stringify(s);
  const configYaml = (o: { second: boolean; maxFailures: number }): string => `# written by test/e2e/reload.test.ts
data_dir: ${q(dataDir)}
keys:
  master_key: {file: master.key, generate: true}
radius:
  listen: [{address: 127.0.0.1, port: ${radiusPort}}]
  accounting_listen: [{address: 127.0.0.1, port: ${acctPort}}]
clients:
  - name: nas-1
    addresses: [127.0.0.1]
    secret: {file: radius-secret, generate: true}
    policy: default
    challenge: true
${
  o.second
    ? `  - name: nas-2
    addresses: [127.0.0.2]
    secret: {file: nas2-secret, generate: true}
    policy: default
`
    : ''
}policies:
  default:
    first_factor: local
    methods: [totp]
lockout:
  max_failures: ${o.maxFailures}
  lock_minutes: 15
`;

  const gw: RunningGateway = await startGateway({ dir: dir.path, configYaml: configYaml({ second: false, maxFailures: 5 }), t });
  const secret1 = gw.secret();
  const nas2SecretFile = join(dataDir, 'nas2-secret');
  /** Replaces the config file atomically, as an editor or config management would. */
  const rewrite = (text: string): void => {
    const tmp = `${gw.configFile}.new`;
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, gw.configFile);
  };
  const logLines = (): string[] => gw.logs().split('\n');
  /** The index in logLines() of the next line the gateway will print. */
  const mark = (): number => (gw.logs().match(/\n/g) ?? []).length;
  const waitLog = (msg: string, after: number): Promise<string> =>
    gw.peer.waitForLine((l) => l.includes(`"msg":"${msg}"`) && logLines().indexOf(l) >= after, 10_000, `'${msg}' log line`);

  const provision = await Promise.all(
    Object.keys(SEEDS).map(async (user) => {
      const add = await gw.cli(['users', 'add', user, '--password-stdin'], `${pw(user)}\n`);
      const tok = add.code === 0 ? await gw.cli(['tokens', 'add-totp', user, '--secret', SEEDS[user] ?? '']) : add;
      return { user, add, tok };
    }),
  );
  for (const p of provision) {
    t.equal(p.add.code, 0, `users add ${p.user}: ${p.add.stderr}`);
    t.equal(p.tok.code, 0, `tokens add-totp ${p.user}: ${p.tok.stderr}`);
  }

  await freshStep();
  t.equal(await request(radiusPort, '127.0.0.2', secret1, 'carol', `${pw('carol')},${totp('carol')}`, [], 1000), undefined, 'before the reload, 127.0.0.2 is no client: no answer');

  // A challenge begun under the old configuration.
  const challenge = await request(radiusPort, '127.0.0.1', secret1, 'alice', pw('alice'));
  t.equal(codeName(challenge), 'Access-Challenge', 'password alone: a challenge');
  const state = challenge === undefined ? undefined : getAttribute(challenge, AttributeType.State);
  t.ok(state !== undefined && state.length > 0, 'with a State');

  // A burst in flight (unknown users cost a full password check each) while the file changes and SIGHUP arrives.
  const burst = Promise.all(Array.from({ length: 40 }, (_, i) => request(radiusPort, '127.0.0.1', secret1, `ghost-${i}`, 'whatever-password', [], 10_000)));
  await sleep(20);
  const before = mark();
  rewrite(configYaml({ second: true, maxFailures: 2 }));
  gw.process.kill('SIGHUP');
  const answered = await burst;
  t.equal(answered.filter((r) => r !== undefined).length, 40, 'every attempt in flight during the reload was answered');
  t.ok(answered.every((r) => r?.code === Code.AccessReject), 'each as a reject (unknown users)');

  const reloaded = await waitLog('configuration reloaded', before);
  t.match(reloaded, /"clients":2/, 'the reload saw two clients');
  const ghostLines = logLines()
    .map((l, i) => (l.includes('"msg":"attempt"') && l.includes('"user":"ghost-') ? i : -1))
    .filter((i) => i >= 0);
  t.ok(logLines().indexOf(reloaded) < Math.max(...ghostLines), 'the reload happened while attempts of the burst were still being decided');
  t.ok(existsSync(nas2SecretFile), 'the reload generated the new client secret file');
  t.equal(statSync(nas2SecretFile).mode & 0o777, 0o600, 'mode 0600');
  const secret2 = readFileSync(nas2SecretFile, 'utf8').trim();
  t.match(secret2, /^[A-Za-z0-9]{32}$/, 'a 32-character secret');
  t.not(secret2, secret1, 'its own secret');
  // As on a first start, the admin is told where the secret to configure on the new NAS was written.
  t.ok(
    logLines()
      .slice(before)
      .some((l) => l.includes(nas2SecretFile)),
    'the log says the reload generated the new client secret (naming the file)',
  );
  t.notOk(gw.logs().includes(secret2), 'the new secret itself is not logged');

  const fromNas2 = await request(radiusPort, '127.0.0.2', secret2, 'carol', `${pw('carol')},${totp('carol')}`);
  t.equal(codeName(fromNas2), 'Access-Accept', 'a request from 127.0.0.2 with its new secret is answered (accepted)');
  t.equal(await request(radiusPort, '127.0.0.2', secret1, 'carol', `${pw('carol')},000000`, [], 1000), undefined, "127.0.0.2 with nas-1's secret: no answer");

  const answer = await request(radiusPort, '127.0.0.1', secret1, 'alice', totp('alice'), [attr.octets(AttributeType.State, state ?? Buffer.alloc(0))]);
  t.equal(codeName(answer), 'Access-Accept', 'the challenge begun before the reload is completed after it');

  // lockout.max_failures 5 → 2 took effect: two bad passwords lock bob.
  t.equal(codeName(await request(radiusPort, '127.0.0.1', secret1, 'bob', 'wrong-password-1')), 'Access-Reject');
  t.equal(codeName(await request(radiusPort, '127.0.0.1', secret1, 'bob', 'wrong-password-2')), 'Access-Reject');
  t.equal(codeName(await request(radiusPort, '127.0.0.1', secret1, 'bob', `${pw('bob')},${totp('bob')}`)), 'Access-Reject', 'locked after 2 failures');

  const exported = await gw.cli(['audit', 'export', '--format', 'json']);
  t.equal(exported.code, 0, exported.stderr);
  const records = JSON.parse(exported.stdout) as Array<Record<string, unknown>>;
  t.same(
    records.filter((r) => r.username === 'bob').map((r) => r.reason),
    ['bad_password', 'bad_password', 'locked_out'],
    'bob: locked out after max_failures 2',
  );
  t.match(records.find((r) => r.username === 'carol'), { result: 'accept', clientName: 'nas-2', clientIp: '127.0.0.2' }, 'carol came through nas-2');
  t.same(
    records.filter((r) => r.username === 'alice').map((r) => r.result),
    ['challenge', 'accept'],
    'alice: challenge, then accept',
  );
  t.equal(records.filter((r) => String(r.username).startsWith('ghost-')).length, 40, 'one record per attempt of the burst');

  // A broken file: refused, the running configuration stays.
  const beforeBad = mark();
  rewrite(`${configYaml({ second: true, maxFailures: 2 })}\nradius_typo: true\n`.replace('addresses: [127.0.0.1]', 'addresses: [127.0.0.999]'));
  gw.process.kill('SIGHUP');
  const refused = await waitLog('reload refused; keeping the running configuration', beforeBad);
  t.match(refused, /clients\[0\]\.addresses\[0\]/, 'the refusal names the key');
  t.notOk(
    logLines()
      .slice(beforeBad)
      .some((l) => l.includes('"msg":"configuration reloaded"')),
    'not reloaded',
  );
  t.ok(gw.process.exitCode === null, 'still running');
  await freshStep();
  const stillNas2 = await request(radiusPort, '127.0.0.2', secret2, 'carol', `${pw('carol')},000000`);
  t.equal(codeName(stillNas2), 'Access-Reject', 'nas-2 (from the running configuration) is still answered');
  const stillNas1 = await request(radiusPort, '127.0.0.1', secret1, 'nobody', 'whatever-password');
  t.equal(codeName(stillNas1), 'Access-Reject', 'nas-1 is still answered');

  t.equal(await gw.stop('SIGTERM'), 0, 'SIGTERM: exit 0');
});
