import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { Secret, TOTP, URI } from 'otpauth';
import t from 'tap';
import { parseDocument } from 'yaml';
import { REPO_ROOT, runCli, startGateway, type CliResult, type RunningGateway } from '../peers/gateway.js';
import { freePort } from '../peers/ports.js';
import { radclient } from '../peers/radclient.js';
import { requirePeer } from '../peers/require-peer.js';
import { tempDir } from '../peers/temp.js';

/**
 * End to end: the CLI contract (README "Commands", ARCHITECTURE "Contract") against a real gateway
 * process started from the SHIPPED conf/gateway.yaml (only its two ports changed), and its store:
 * first-start secret generation, check-config, users, tokens, audit export/verify, backup/restore
 * while running, tamper detection on copies of the database, --help and usage errors.
 */

const SEED_BOB = 'KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLB';
const SEED_CAROL = 'MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LC';
const PASSWORDS: Record<string, string> = {
  alice: 'Alice-Pass-4711',
  bob: 'Bob-Pass-0815x',
  carol: 'Carol-Pass-1234',
  erin: 'Erin-Pass-9012',
};
const pw = (user: string): string => PASSWORDS[user] ?? '';

/** `node bin/mfa-gateway.js <args> --config F` from the repository root; `input` goes to stdin. */
function cli(args: readonly string[], config: string, input?: string): Promise<CliResult> {
  // The config path (in this test's temp dir) is the child's marker.
  return runCli([...args, '--config', config], process.env, config, input);
}

/** Non-empty lines of a text. */
const lines = (text: string): string[] => text.split(/\r?\n/).filter((l) => l.trim() !== '');

/** The last used TOTP step per token seed: a code is good once, and only for a later step than the last one used. */
const lastStep = new Map<string, number>();

/**
 * A code for the earliest step that is both unused and within the gateway's window (±1 step):
 * the current step, or the next one when the current one was used already. Waits for a new step
 * only when both were used. A code for step s stays valid until step s+2 begins (≥ 30 s).
 */
async function code(seed: string): Promise<string> {
  for (;;) {
    const now = Math.floor(Date.now() / 30_000);
    const step = Math.max(now, (lastStep.get(seed) ?? -1) + 1);
    if (step <= now + 1) {
      lastStep.set(seed, step);
      return new TOTP({ secret: Secret.fromBase32(seed) }).generate({ timestamp: step * 30_000 });
    }
    await sleep(30_000 - (Date.now() % 30_000) + 100);
  }
}

/** The current code, without using it up: for attempts rejected before the code is checked. */
function peek(seed: string): string {
  return new TOTP({ secret: Secret.fromBase32(seed) }).generate();
}

interface Expected {
  user: string;
  result: 'accept' | 'reject';
  reason: string;
}

t.test('CLI contract against a running gateway started from the shipped conf/gateway.yaml', async (t) => {
  if (!requirePeer(t, 'radclient', 'freeradius-utils')) return;
  const dir = tempDir('mfa-e2e-cli-');
  t.teardown(() => dir.cleanup());
  const confDir = join(dir.path, 'conf');
  const dataDir = join(dir.path, 'data');
  const radiusPort = await freePort('udp');
  const acctPort = await freePort('udp');

  // The shipped file, comments and all; only the two ports move to free ones.
  const shipped = parseDocument(readFileSync(join(REPO_ROOT, 'conf', 'gateway.yaml'), 'utf8'));
  t.equal(shipped.getIn(['radius', 'listen', 0, 'port']), 1812, 'shipped auth port');
  t.equal(shipped.getIn(['radius', 'accounting_listen', 0, 'port']), 1813, 'shipped accounting port');
  shipped.setIn(['radius', 'listen', 0, 'port'], radiusPort);
  shipped.setIn(['radius', 'accounting_listen', 0, 'port'], acctPort);
  const configYaml = shipped.toString();
  const configFile = join(confDir, 'gateway.yaml');
  const run = (args: readonly string[], input?: string, config = configFile): Promise<CliResult> => cli(args, config, input);

  const start = (): Promise<RunningGateway> => startGateway({ dir: confDir, configYaml, t });
  let gw = await start();
  const secret = gw.secret();
  const expected: Expected[] = [];

  const login = async (user: string, password: string, want: Expected['result'] | 'none', reason: string): Promise<string> => {
    const r = await radclient({
      host: '127.0.0.1',
      port: radiusPort,
      secret,
      type: 'auth',
      packets: [{ 'User-Name': user, 'User-Password': password, 'NAS-Identifier': 'e2e-cli', 'Message-Authenticator': '0x00' }],
      retries: 1,
      timeoutSec: 5,
    });
    const got = r.replies[0]?.code ?? `no reply (${r.stdout}${r.stderr})`;
    if (want !== 'none') expected.push({ user, result: want, reason });
    return got;
  };

  await t.test('first start generates the secrets, mode 0600, and says so without printing them', async (t) => {
    t.equal(gw.dataDir, dataDir, 'data_dir ../data is resolved against the config file directory');
    const secretFile = join(dataDir, 'radius-secret');
    const keyFile = join(dataDir, 'master.key');
    for (const f of [secretFile, keyFile]) {
      t.ok(existsSync(f), `${f} exists`);
      t.equal(statSync(f).mode & 0o777, 0o600, `${f} is mode 0600`);
    }
    t.equal(statSync(dataDir).mode & 0o777, 0o700, 'the data directory is mode 0700');
    t.match(secret, /^[A-Za-z0-9]{32}$/, 'a 32-character alphanumeric secret');
    const masterKey = readFileSync(keyFile, 'utf8').trim();
    t.match(masterKey, /^[0-9a-f]{64}$/, 'a 64-hex-digit master key');
    const logLines = lines(gw.logs());
    t.ok(logLines.some((l) => /generat/i.test(l) && l.includes(secretFile)), 'the log names the generated secret file');
    t.ok(logLines.some((l) => /generat/i.test(l) && l.includes(keyFile)), 'the log names the generated master key file');
    t.notOk(gw.logs().includes(secret), 'the secret itself is not logged');
    t.notOk(gw.logs().includes(masterKey), 'the master key itself is not logged');

    t.equal(await gw.stop(), 0, 'SIGTERM: exit 0');
    gw = await start();
    t.notMatch(gw.logs(), /generat/i, 'second start: nothing generated');
    t.equal(gw.secret(), secret, 'same secret after a restart');
    t.equal(readFileSync(keyFile, 'utf8').trim(), masterKey, 'same master key after a restart');
  });

  await t.test('check-config', async (t) => {
    const badFile = join(confDir, 'bad.yaml');
    writeFileSync(
      badFile,
      `data_dir: ../data
lockuot:
  max_failures: 3
clients:
  - name: nas
    addresses: [127.0.0.300]
    secret: plain-secret-in-the-yaml-1234
    policy: default
    colour: red
`,
      { mode: 0o600 },
    );
    // A secret file others may read is refused by check-config too.
    const looseDir = join(dir.path, 'loose');
    mkdirSync(join(looseDir, 'data'), { recursive: true, mode: 0o700 });
    writeFileSync(join(looseDir, 'data', 'nas-secret'), 'a-long-enough-shared-secret\n', { mode: 0o644 });
    chmodSync(join(looseDir, 'data', 'nas-secret'), 0o644);
    const looseFile = join(looseDir, 'gateway.yaml');
    writeFileSync(looseFile, 'data_dir: ./data\nclients:\n  - name: nas\n    addresses: [127.0.0.1]\n    secret: {file: nas-secret}\n', { mode: 0o600 });

    const [ok, bad, loose, serve] = await Promise.all([
      run(['check-config']),
      run(['check-config'], undefined, badFile),
      run(['check-config'], undefined, looseFile),
      run(['serve'], undefined, badFile),
    ]);
    t.equal(ok.code, 0, ok.stderr);
    t.equal(ok.stdout, `${configFile}: ok\n`, 'prints ok');
    t.equal(ok.stderr, '', 'nothing on stderr');

    t.not(bad.code, 0, 'invalid config: non-zero exit');
    const problems = lines(bad.stderr);
    t.ok(problems.length >= 4, `one line per problem:\n${bad.stderr}`);
    for (const line of problems) t.match(line, /^[a-z_]+(\[\d+\]|\.[a-z_]+)*: \S/, `"${line}" has the form path.to.key: message`);
    t.ok(problems.some((l) => l.startsWith('clients[0].addresses[0]: ')), 'the bad address is named');
    t.ok(problems.some((l) => l.startsWith('clients[0].secret: ')), 'the plain-string secret is named');
    t.ok(problems.some((l) => /^clients\[0\]\.colour: unknown key/.test(l)), 'the unknown key is named');
    t.ok(problems.some((l) => /^lockuot: unknown key \(did you mean 'lockout'\?\)/.test(l)), 'a typo gets a suggestion');
    t.notOk(bad.stderr.includes('plain-secret-in-the-yaml-1234'), 'the secret written in the YAML is not echoed');

    t.not(loose.code, 0, 'a group/world-readable secret file: non-zero exit');
    t.match(loose.stderr, /^clients\[0\]\.secret: .*chmod 600/m, 'names the key and the fix');

    t.not(serve.code, 0, 'serve on an invalid config: non-zero exit');
    t.match(serve.stderr, /^clients\[0\]\.addresses\[0\]: /m, 'serve names the key path');
    t.notMatch(serve.stderr, /^\s+at /m, 'no stack trace');
    t.notOk(serve.stderr.includes('plain-secret-in-the-yaml-1234'), 'serve does not echo the secret either');
  });

  let aliceSeed = '';
  await t.test('users and tokens change the running gateway at once', async (t) => {
    const adds = await Promise.all(
      ['alice', 'bob', 'carol'].map((u) =>
        run(['users', 'add', u, '--password-stdin', '--email', `${u}@example.test`, '--first-name', u.toUpperCase()], `${pw(u)}\n`),
      ),
    );
    for (const a of adds) {
      t.equal(a.code, 0, a.stderr);
      t.match(a.stdout, /^added user \w+ \(id [0-9a-f-]{36}\)$/m);
    }

    const badSeeds = ['NOT-BASE32!!1!', 'JBSWY3DP', '01234567890123456789'];
    const [dup, short, list, gen, imp, carolTok, ...bads] = await Promise.all([
      run(['users', 'add', 'Alice', '--password-stdin'], `${pw('alice')}\n`),
      run(['users', 'add', 'dave', '--password-stdin'], 'Short7!\n'),
      run(['users', 'list']),
      run(['tokens', 'add-totp', 'alice']),
      run(['tokens', 'add-totp', 'bob', '--secret', SEED_BOB, '--label', 'bob@corp.example']),
      run(['tokens', 'add-totp', 'carol', '--secret', SEED_CAROL.toLowerCase().replace(/(.{4})/g, '$1 ').trim()]),
      ...badSeeds.map((seed) => run(['tokens', 'add-totp', 'bob', '--secret', seed])),
    ]);
    if (dup === undefined || short === undefined || list === undefined || gen === undefined || imp === undefined || carolTok === undefined) {
      throw new Error('missing results');
    }
    t.not(dup.code, 0, 'duplicate (case-insensitive): non-zero exit');
    t.equal(lines(dup.stderr).length, 1, `one line: ${dup.stderr}`);
    t.match(dup.stderr, /taken|exists/i);
    t.not(short.code, 0, 'a 7-character password is refused');
    t.equal(lines(short.stderr).length, 1, `one line: ${short.stderr}`);
    t.match(short.stderr, /at least 8/);

    t.equal(list.code, 0, list.stderr);
    t.same(lines(list.stdout).map((l) => l.split('\t')[0]).sort(), ['alice', 'bob', 'carol'], 'list: the three users, not dave');
    t.match(list.stdout, /^alice\talice@example\.test\tenabled,password\t[0-9a-f-]{36}$/m);

    // A generated token: the printed URI carries the issuer, the label and a seed that works.
    t.equal(gen.code, 0, gen.stderr);
    const genUri = lines(gen.stdout)[0] ?? '';
    t.match(genUri, /^otpauth:\/\/totp\/mfa-gateway:alice\?/, 'otpauth URI with issuer and label');
    t.match(genUri, /[?&]issuer=mfa-gateway(&|$)/);
    const parsed = URI.parse(genUri);
    t.ok(parsed instanceof TOTP, 'a TOTP URI');
    t.equal(parsed.issuer, 'mfa-gateway');
    t.equal(parsed.label, 'alice');
    aliceSeed = parsed.secret.base32;
    t.ok(aliceSeed.length >= 32, 'a seed of at least 160 bits');

    t.equal(imp.code, 0, imp.stderr);
    const impUri = URI.parse(lines(imp.stdout)[0] ?? '');
    t.equal(impUri.label, 'bob@corp.example', '--label');
    t.equal(impUri.secret.base32, SEED_BOB, '--secret imports the given seed');
    t.equal(carolTok.code, 0, `a lower-case, spaced seed is accepted: ${carolTok.stderr}`);
    t.equal(URI.parse(lines(carolTok.stdout)[0] ?? '').secret.base32, SEED_CAROL);

    bads.forEach((bad, i) => {
      t.not(bad.code, 0, `--secret ${badSeeds[i]} refused`);
      t.equal(lines(bad.stderr).length, 1, `one line: ${bad.stderr}`);
      t.match(bad.stderr, /--secret must be base32/);
      t.equal(bad.stdout, '', 'no URI printed');
    });

    const [bobTokens, show] = await Promise.all([run(['tokens', 'list', 'bob']), run(['users', 'show', 'alice'])]);
    t.equal(bobTokens.code, 0, bobTokens.stderr);
    t.equal(lines(bobTokens.stdout).length, 1, 'the refused seeds enrolled nothing');
    t.match(bobTokens.stdout, /^[0-9a-f-]{36}\ttotp\tSHA1\/6\/30s\tbob@corp\.example\tenabled\tnever used$/m);
    t.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as Record<string, unknown>;
    t.match(shown, { username: 'alice', email: 'alice@example.test', firstName: 'ALICE', enabled: true, blocked: false, hasPassword: true });
    t.match(shown.tokens, [{ kind: 'totp', label: 'alice', digits: 6, enabled: true }]);
    t.same(shown.lockout, { failures: 0, lockedUntil: null });
    t.notOk('passwordHash' in shown, 'no password hash shown');
    t.notMatch(show.stdout, /scrypt\$/, 'no password hash in the output');

    const [aliceFirst, bobFirst] = await Promise.all([
      login('alice', `${pw('alice')},${await code(aliceSeed)}`, 'accept', 'accepted'),
      login('bob', `${pw('bob')},${await code(SEED_BOB)}`, 'accept', 'accepted'),
    ]);
    t.equal(aliceFirst, 'Access-Accept', 'the generated token works at once');
    t.equal(bobFirst, 'Access-Accept', 'an imported seed works');

    const [set, block] = await Promise.all([run(['users', 'set', 'alice', '--email', 'alice.new@example.test']), run(['users', 'block', 'bob'])]);
    t.equal(set.code, 0, set.stderr);
    t.equal(block.code, 0, block.stderr);
    const [disable, blockedShow, blockedLogin] = await Promise.all([
      run(['users', 'disable', 'alice']),
      run(['users', 'show', 'bob']),
      login('bob', `${pw('bob')},${peek(SEED_BOB)}`, 'reject', 'user_blocked'),
    ]);
    t.equal(disable.code, 0, disable.stderr);
    t.match(JSON.parse(blockedShow.stdout), { blocked: true }, 'show: blocked');
    t.equal(blockedLogin, 'Access-Reject', 'blocked: rejected');
    const [disabledShow, disabledLogin] = await Promise.all([
      run(['users', 'show', 'alice']),
      login('alice', `${pw('alice')},${peek(aliceSeed)}`, 'reject', 'user_disabled'),
    ]);
    t.match(JSON.parse(disabledShow.stdout), { enabled: false, email: 'alice.new@example.test' }, 'show: disabled, new email');
    t.equal(disabledLogin, 'Access-Reject', 'disabled: rejected');

    const [enable, unblock] = await Promise.all([run(['users', 'enable', 'alice']), run(['users', 'unblock', 'bob'])]);
    t.equal(enable.code, 0, enable.stderr);
    t.equal(unblock.code, 0, unblock.stderr);
    t.equal(await login('alice', `${pw('alice')},${await code(aliceSeed)}`, 'accept', 'accepted'), 'Access-Accept', 'enabled again: accepted');
    t.equal(await login('bob', `${pw('bob')},${await code(SEED_BOB)}`, 'accept', 'accepted'), 'Access-Accept', 'unblocked: accepted');

    // A wrong password counts as a failure; `unlock` forgets it.
    t.equal(await login('bob', 'not-the-password', 'reject', 'bad_password'), 'Access-Reject');
    t.match(JSON.parse((await run(['users', 'show', 'bob'])).stdout), { lockout: { failures: 1 } });
    const unlock = await run(['users', 'unlock', 'bob']);
    t.equal(unlock.code, 0, unlock.stderr);

    const tokenId = (lines(bobTokens.stdout)[0] ?? '').split('\t')[0] ?? '';
    const [unlocked, del, delUser] = await Promise.all([
      run(['users', 'show', 'bob']),
      run(['tokens', 'delete', tokenId]),
      run(['users', 'delete', 'alice']),
    ]);
    t.match(JSON.parse(unlocked.stdout), { lockout: { failures: 0, lockedUntil: null } }, 'unlock: no failures');
    t.equal(del.code, 0, del.stderr);
    t.equal(delUser.code, 0, delUser.stderr);
    const [bobNoToken, aliceGone, noTokens, delAgain, gone] = await Promise.all([
      login('bob', `${pw('bob')},${peek(SEED_BOB)}`, 'reject', 'not_enrolled'),
      login('alice', `${pw('alice')},${peek(aliceSeed)}`, 'reject', 'user_unknown'),
      run(['tokens', 'list', 'bob']),
      run(['tokens', 'delete', tokenId]),
      run(['users', 'show', 'alice']),
    ]);
    t.equal(bobNoToken, 'Access-Reject', 'token deleted: rejected');
    t.equal(aliceGone, 'Access-Reject', 'user deleted: rejected');
    t.equal(noTokens.stdout, '', 'no token left');
    t.not(delAgain.code, 0, 'deleting the token again fails');
    t.equal(lines(delAgain.stderr).length, 1, delAgain.stderr);
    t.not(gone.code, 0, 'show of a deleted user fails');
    t.equal(lines(gone.stderr).length, 1, gone.stderr);
    t.match(gone.stderr, /no user 'alice'/);

    // The audit names each reason, in order, with the profile as it was at that moment.
    const json = await run(['audit', 'export', '--format', 'json']);
    t.equal(json.code, 0, json.stderr);
    const records = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    const key = (e: { user: unknown; result: unknown; reason: unknown }): string => `${String(e.user)} ${String(e.result)} ${String(e.reason)}`;
    // Logins sent at the same time may be recorded in either order: compare as sorted lists.
    t.same(
      records.map((r) => key({ user: r.username, result: r.result, reason: r.reason })).sort(),
      expected.map(key).sort(),
      'one audit record per attempt, with its reason',
    );
    const aliceRecords = records.filter((r) => r.username === 'alice');
    t.same(
      aliceRecords.map((r) => r.reason),
      ['accepted', 'user_disabled', 'accepted', 'user_unknown'],
      'alice: in order',
    );
    t.equal(aliceRecords[0]?.email, 'alice@example.test', 'the first login recorded the old email');
    t.equal(aliceRecords[1]?.email, 'alice.new@example.test', 'the next one the new email (set took effect at once)');
    t.equal(aliceRecords[0]?.nasIdentifier, 'e2e-cli');
    t.same(
      records.filter((r) => r.username === 'bob').map((r) => r.reason),
      ['accepted', 'user_blocked', 'accepted', 'bad_password', 'not_enrolled'],
      'bob: in order',
    );
  });

  await t.test('audit export (csv, json, --user, --since/--until) and verify', async (t) => {
    const [csv, json, bobOnly] = await Promise.all([
      run(['audit', 'export', '--format', 'csv']),
      run(['audit', 'export', '--format', 'json']),
      run(['audit', 'export', '--format', 'json', '--user', 'BOB']),
    ]);
    t.equal(csv.code, 0, csv.stderr);
    const rows = csv.stdout.split('\r\n');
    t.equal(rows.pop(), '', 'CRLF line ends, the last one too');
    const header = (rows.shift() ?? '').split(',');
    for (const col of ['seq', 'id', 'receivedAt', 'username', 'result', 'reason', 'clientIp', 'nasIdentifier', 'prevHash', 'hash']) {
      t.ok(header.includes(col), `header has ${col}`);
    }
    t.equal(rows.length, expected.length, 'one CSV row per attempt');
    t.same(
      rows.map((r) => r.split(',')[0]),
      expected.map((_, i) => String(i + 1)),
      'rows in seq order',
    );
    t.equal(json.code, 0, json.stderr);
    const all = JSON.parse(json.stdout) as Array<{ username: string; receivedAt: number; seq: number }>;
    t.equal(all.length, expected.length, 'json: one record per attempt');
    // Two logins sent at once are recorded in either order, so the column is checked against the
    // JSON export of the same records (seq order) and, as a multiset, against what was sent.
    const userCol = header.indexOf('username');
    const usernames = rows.map((r) => r.split(',')[userCol]);
    t.same(usernames, all.map((r) => r.username), 'the username column, in seq order as the JSON export');
    t.same([...usernames].sort(), expected.map((e) => e.user).sort(), 'the username column holds every login sent');

    t.equal(bobOnly.code, 0, bobOnly.stderr);
    const bobs = JSON.parse(bobOnly.stdout) as Array<{ username: string }>;
    t.equal(bobs.length, expected.filter((e) => e.user === 'bob').length, '--user (case-insensitive): only that user');
    t.ok(bobs.every((r) => r.username === 'bob'));

    const mid = all[Math.floor(all.length / 2)];
    if (mid === undefined) throw new Error('no records');
    const at = new Date(mid.receivedAt).toISOString();
    const [since, until, empty, badTime] = await Promise.all([
      run(['audit', 'export', '--format', 'json', '--since', at]),
      run(['audit', 'export', '--format', 'json', '--until', at]),
      run(['audit', 'export', '--format', 'csv', '--since', '2001-01-01', '--until', '2001-01-02']),
      run(['audit', 'export', '--since', 'yesterday-ish']),
    ]);
    const sinceRecs = JSON.parse(since.stdout) as Array<{ receivedAt: number }>;
    const untilRecs = JSON.parse(until.stdout) as Array<{ receivedAt: number }>;
    t.ok(sinceRecs.length > 0 && sinceRecs.every((r) => r.receivedAt >= mid.receivedAt), '--since: at or after');
    t.ok(untilRecs.length > 0 && untilRecs.every((r) => r.receivedAt < mid.receivedAt), '--until: before');
    t.equal(sinceRecs.length + untilRecs.length, all.length, '--since T and --until T split the log');
    t.equal(empty.code, 0, empty.stderr);
    t.equal(lines(empty.stdout).length, 1, 'an empty range: the header row only');
    t.not(badTime.code, 0, 'a bad --since: non-zero');
    t.equal(lines(badTime.stderr).length, 1, badTime.stderr);
    t.match(badTime.stderr, /--since/);

    const verify = await run(['audit', 'verify']);
    t.equal(verify.code, 0, verify.stdout + verify.stderr);
    t.match(verify.stdout, new RegExp(`audit chain intact: ${expected.length} records`));
  });

  const backupFile = join(dir.path, 'backups', 'store.backup');
  await t.test('backup while the gateway runs; restore refused while it runs, done once it stopped', async (t) => {
    const burst = Array.from({ length: 60 }, (_, i) => ({ 'User-Name': `ghost-${i}`, 'User-Password': 'no-such-user-pw', 'Message-Authenticator': '0x00' }));
    // Retransmitting as a NAS does (a copy joins the attempt in progress): on a loaded machine an
    // unknown user's password check (scrypt, to hide who exists) and the backup's reads may delay an answer.
    const [flood, backup] = await Promise.all([
      radclient({ host: '127.0.0.1', port: radiusPort, secret, type: 'auth', packets: burst, parallel: 30, retries: 3, timeoutSec: 10 }),
      sleep(100).then(() => run(['backup', backupFile])),
    ]);
    t.equal(flood.replies.length, burst.length, 'every login of the burst answered');
    t.equal(backup.code, 0, backup.stderr);
    t.match(backup.stdout, /backup written to /);
    t.ok(existsSync(backupFile), 'the backup file exists');
    t.equal(statSync(backupFile).mode & 0o777, 0o600, 'the backup file is mode 0600');
    const again = await run(['backup', backupFile]);
    t.not(again.code, 0, 'an existing backup file is not overwritten');
    t.equal(lines(again.stderr).length, 1, again.stderr);

    // Changes after the backup, which the restore undoes.
    t.equal((await run(['users', 'delete', 'carol'])).code, 0);
    t.equal((await run(['users', 'add', 'erin', '--password-stdin'], `${pw('erin')}\n`)).code, 0);

    const refused = await run(['restore', backupFile]);
    t.not(refused.code, 0, 'restore into the store of a running gateway: refused');
    t.equal(lines(refused.stderr).length, 1, refused.stderr);
    t.match(refused.stderr, /running gateway|in use/);
    t.match(JSON.parse((await run(['users', 'show', 'erin'])).stdout), { username: 'erin' }, 'the refused restore changed nothing');

    t.equal(await gw.stop(), 0, 'gateway stopped');
    const restored = await run(['restore', backupFile]);
    t.equal(restored.code, 0, restored.stderr);
    t.match(restored.stdout, /^restored .*chain verified/m);

    gw = await start();
    t.equal(await login('carol', `${pw('carol')},${await code(SEED_CAROL)}`, 'none', ''), 'Access-Accept', 'carol (deleted after the backup) logs in with her token');
    t.equal(await login('erin', `${pw('erin')},123456`, 'none', ''), 'Access-Reject', 'erin (added after the backup) is gone');
    const list = await run(['users', 'list']);
    t.same(lines(list.stdout).map((l) => l.split('\t')[0]).sort(), ['bob', 'carol'], 'the users of the backup');
    const verify = await run(['audit', 'verify']);
    t.equal(verify.code, 0, verify.stdout + verify.stderr);
    const missing = await run(['restore', join(dir.path, 'no-such-backup')]);
    t.not(missing.code, 0, 'restore of a missing file fails');
    t.equal(lines(missing.stderr).length, 1, missing.stderr);
  });

  await t.test('audit verify names tampered records on copies of the database', async (t) => {
    t.equal(await gw.stop(), 0, 'gateway stopped');
    const db = join(dataDir, 'gateway.db');
    const copy = (name: string): { config: string; db: string } => {
      const base = join(dir.path, `tamper-${name}`);
      mkdirSync(join(base, 'data'), { recursive: true, mode: 0o700 });
      for (const f of ['gateway.db', 'gateway.db-wal', 'master.key', 'radius-secret']) {
        if (!existsSync(join(dataDir, f))) continue;
        copyFileSync(join(dataDir, f), join(base, 'data', f));
        chmodSync(join(base, 'data', f), 0o600);
      }
      const config = join(base, 'gateway.yaml');
      writeFileSync(
        config,
        `data_dir: ./data
keys:
  master_key: {file: master.key}
clients:
  - name: nas
    addresses: [127.0.0.1]
    secret: {file: radius-secret}
`,
        { mode: 0o600 },
      );
      return { config, db: join(base, 'data', 'gateway.db') };
    };
    const edited = copy('edit');
    const deleted = copy('delete');
    const inserted = copy('insert');

    interface Row {
      seq: number;
      id: string;
    }
    const rowsOf = (file: string): Row[] => {
      const d = new Database(file, { readonly: true });
      try {
        return d.prepare<[], Row>('SELECT seq, id FROM audit_log ORDER BY seq').all();
      } finally {
        d.close();
      }
    };
    const rows = rowsOf(db);
    t.ok(rows.length >= 10, `${rows.length} records to tamper with`);
    const victim = rows[3];
    const middle = rows[Math.floor(rows.length / 2)];
    const last = rows[rows.length - 1];
    if (victim === undefined || middle === undefined || last === undefined) throw new Error('too few records');
    const forgedId = randomUUID();

    const tamper = (file: string, sql: (d: Database.Database) => void): void => {
      const d = new Database(file);
      try {
        // Someone with write access to the file removes the append-only guard first.
        d.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;');
        sql(d);
      } finally {
        d.close();
      }
    };
    tamper(edited.db, (d) => d.prepare('UPDATE audit_log SET username = ? WHERE seq = ?').run('mallory', victim.seq));
    tamper(deleted.db, (d) => d.prepare('DELETE FROM audit_log WHERE seq = ?').run(middle.seq));
    tamper(inserted.db, (d) => {
      const neighbour = d.prepare<[number], Record<string, unknown>>('SELECT * FROM audit_log WHERE seq = ?').get(middle.seq);
      if (neighbour === undefined) throw new Error('no neighbour row');
      const forged = { ...neighbour, id: forgedId, seq: last.seq + 1, attempt_id: randomUUID() };
      const cols = Object.keys(forged);
      d.prepare(`INSERT INTO audit_log (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(forged);
    });
    t.equal(rowsOf(edited.db).length, rows.length, 'edit: same number of rows');
    t.equal(rowsOf(deleted.db).length, rows.length - 1, 'delete: one row fewer');
    t.equal(rowsOf(inserted.db).length, rows.length + 1, 'insert: one row more');

    const [original, vEdit, vDelete, vInsert] = await Promise.all([
      run(['audit', 'verify']),
      run(['audit', 'verify'], undefined, edited.config),
      run(['audit', 'verify'], undefined, deleted.config),
      run(['audit', 'verify'], undefined, inserted.config),
    ]);
    t.equal(original.code, 0, `the untouched original verifies: ${original.stdout}${original.stderr}`);
    t.match(original.stdout, new RegExp(`audit chain intact: ${rows.length} records`));

    t.not(vEdit.code, 0, 'edited record: non-zero exit');
    t.match(vEdit.stdout, new RegExp(`seq ${victim.seq} \\(id ${victim.id}\\).*edited`), `names the edited record:\n${vEdit.stdout}`);
    t.match(vEdit.stderr, /BROKEN/);

    t.not(vDelete.code, 0, 'deleted record: non-zero exit');
    t.match(vDelete.stdout, new RegExp(`seq ${middle.seq} is missing.*deleted`), `names the deleted record:\n${vDelete.stdout}`);

    t.not(vInsert.code, 0, 'inserted record: non-zero exit');
    t.match(vInsert.stdout, new RegExp(`seq ${last.seq + 1} \\(id ${forgedId}\\).*inserted`), `names the forged record:\n${vInsert.stdout}`);

    // The tampered copies are refused as backups as well.
    const restoreTampered = await run(['restore', edited.db], undefined, deleted.config);
    t.not(restoreTampered.code, 0, 'restore of a tampered store: refused');
    t.match(restoreTampered.stderr, /audit chain is broken/);
  });

  await t.test('--help of every command; unknown command and missing argument', async (t) => {
    const commands = [
      [],
      ['serve'],
      ['check-config'],
      ['users'],
      ...['add', 'list', 'show', 'set', 'set-password', 'set-pin', 'disable', 'enable', 'block', 'unblock', 'unlock', 'delete'].map((c) => ['users', c]),
      ['tokens'],
      ...['add-totp', 'list', 'delete'].map((c) => ['tokens', c]),
      ['audit'],
      ['audit', 'verify'],
      ['audit', 'export'],
      ['backup'],
      ['restore'],
      ['try'],
      ['bypass'],
      ...['add', 'list', 'delete'].map((c) => ['bypass', c]),
      ['devices'],
      ...['add-ntfy', 'list', 'delete'].map((c) => ['devices', c]),
    ];
    const groups = new Set(['', 'users', 'tokens', 'audit', 'bypass', 'devices']);
    for (let i = 0; i < commands.length; i += 6) {
      const batch = commands.slice(i, i + 6);
      const results = await Promise.all(batch.map((c) => run([...c, '--help'])));
      batch.forEach((c, j) => {
        const r = results[j];
        const name = ['mfa-gateway', ...c].join(' ');
        t.equal(r?.code, 0, `${name} --help: exit 0 ${r?.stderr ?? ''}`);
        t.match(r?.stdout, new RegExp(`^Usage: ${name.replace(/[-]/g, '\\-')}`), `${name} --help prints its usage`);
        if (!groups.has(c.join(' '))) t.match(r?.stdout, /--config <file>/, `${name} takes --config`);
      });
    }

    const [unknown, unknownSub, missingArg, missingUser] = await Promise.all([
      run(['frobnicate']),
      run(['users', 'frobnicate']),
      run(['tokens', 'delete']),
      run(['users', 'add'], `${pw('alice')}\n`),
    ]);
    for (const [what, r] of [
      ['unknown command', unknown],
      ['unknown subcommand', unknownSub],
      ['missing argument', missingArg],
      ['missing user argument', missingUser],
    ] as const) {
      t.not(r.code, 0, `${what}: non-zero exit`);
      t.equal(r.stdout, '', `${what}: nothing on stdout`);
      t.match(r.stderr, /unknown command|missing required argument/, `${what}: says what is wrong`);
      // The contract (README "Commands") is one line on stderr.
      t.equal(lines(r.stderr).length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
    }
  });
});
