import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { Test } from 'tap';
import { checkConfig, formatPath, loadConfig } from '../../src/config/load.js';
import { resolveSecret } from '../../src/config/secrets.js';
import { ConfigError, SecretError } from '../../src/errors.js';

const SHIPPED = resolve(dirname(fileURLToPath(import.meta.url)), '../../conf/gateway.yaml');
const GOOD_SECRET = 'abcdefghijklmnop0123'; // 20 characters
const HEX_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

/** A fresh directory under os.tmpdir(), removed when the test ends. */
async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mfa-gw-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Writes `conf/gateway.yaml` (data_dir defaults to ../data) plus files under `data/` (mode 0600
 * unless given). Returns the config path.
 */
async function setup(t: Test, yaml: string, dataFiles: Record<string, string | { content: string; mode: number }> = {}): Promise<string> {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'conf'));
  await mkdir(join(dir, 'data'), { mode: 0o700 });
  for (const [name, spec] of Object.entries(dataFiles)) {
    const { content, mode } = typeof spec === 'string' ? { content: spec, mode: 0o600 } : spec;
    await writeFile(join(dir, 'data', name), content, { mode });
    await chmod(join(dir, 'data', name), mode); // umask-proof
  }
  const file = join(dir, 'conf', 'gateway.yaml');
  await writeFile(file, yaml);
  return file;
}

/** A valid config: master key and one client secret from files that `setup` writes. */
const VALID = `keys:
  master_key: {file: master.key}
clients:
  - name: nas
    addresses: [127.0.0.1]
    secret: {file: nas-secret}
`;
const VALID_FILES = { 'master.key': `${HEX_KEY}\n`, 'nas-secret': `${GOOD_SECRET}\n` };

async function configIssues(t: Test, file: string): Promise<readonly string[]> {
  try {
    await loadConfig(file, { generateSecrets: false });
  } catch (err) {
    t.type(err, ConfigError, 'invalid config throws ConfigError');
    t.equal((err as ConfigError).code, 'GW_ERR_CONFIG');
    const issues = (err as ConfigError).issues;
    t.same(await checkConfig(file), issues, 'checkConfig returns the same lines');
    return issues;
  }
  t.fail('loadConfig should have thrown');
  return [];
}

async function secretFailure(t: Test, file: string, env: NodeJS.ProcessEnv = {}): Promise<SecretError> {
  try {
    await loadConfig(file, { env });
  } catch (err) {
    t.type(err, SecretError, 'unresolvable secret throws SecretError');
    return err as SecretError;
  }
  t.fail('loadConfig should have thrown');
  return new SecretError('none');
}

void t.test('the shipped conf/gateway.yaml loads and generates its secrets once', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'conf'));
  const file = join(dir, 'conf', 'gateway.yaml');
  await copyFile(SHIPPED, file);

  t.same(await checkConfig(file), [], 'check-config finds nothing to complain about');
  t.same(await readdir(dir), ['conf'], 'check-config generated nothing');

  const first = await loadConfig(file);
  const dataDir = join(dir, 'data');
  t.equal(first.generated.length, 2, 'two secrets generated');
  t.match(first.generated[0], `keys.master_key: generated a new master key in ${join(dataDir, 'master.key')}`);
  t.match(first.generated[1], `client 'localhost' (clients[0].secret): generated a new RADIUS shared secret in ${join(dataDir, 'radius-secret')}`);

  t.equal((await stat(dataDir)).mode & 0o777, 0o700, 'data dir created 0700');
  for (const name of ['master.key', 'radius-secret']) {
    t.equal((await stat(join(dataDir, name))).mode & 0o777, 0o600, `${name} is 0600`);
  }
  t.same((await readdir(dataDir)).sort(), ['master.key', 'radius-secret'], 'no temp files left behind');
  t.match(await readFile(join(dataDir, 'radius-secret'), 'utf8'), /^[A-Za-z0-9]{32}\n$/, 'printable 32-character RADIUS secret');
  t.match(await readFile(join(dataDir, 'master.key'), 'utf8'), /^[0-9a-f]{64}\n$/, 'master key as 64 hex characters');

  const { config } = first;
  t.equal(config.file, file);
  t.equal(config.dataDir, dataDir);
  t.equal(config.gatewayName, hostname(), 'gateway name defaults to the host name');
  t.equal(config.masterKey.length, 32);
  t.same(config.radius.listen, [{ address: '127.0.0.1', port: 1812 }]);
  t.same(config.radius.accounting_listen, [{ address: '127.0.0.1', port: 1813 }]);
  t.equal(config.clients.length, 1);
  const [client] = config.clients;
  t.equal(client?.name, 'localhost');
  t.same(client?.addresses, ['127.0.0.1']);
  t.equal(client?.policy, 'default');
  t.equal(client?.secret.toString(), (await readFile(join(dataDir, 'radius-secret'), 'utf8')).trimEnd());
  t.same(config.policies, {
    default: { first_factor: 'local', methods: ['totp'], unenrolled: 'reject', unknown_users: 'reject', fail_mode: 'secure', remember_seconds: 0, method_menu: true },
  });
  t.same(config.store, { engine: 'sqlite', sqlite: { path: join(dataDir, 'gateway.db'), fsync_before_reply: true } });
  t.equal(config.lockout.max_failures, 5);
  t.equal(config.lockout.lock_minutes, 15);
  t.equal(config.challenge.ttl_seconds, 120);

  const second = await loadConfig(file);
  t.same(second.generated, [], 'second load generates nothing');
  t.ok(second.config.masterKey.equals(config.masterKey), 'same master key');
  t.ok(second.config.clients[0]?.secret.equals(client?.secret ?? Buffer.alloc(0)), 'same RADIUS secret');
});

void t.test('key-path error lines', async (t) => {
  await t.test('wrong type', async (t) => {
    const file = await setup(t, `${VALID}radius:\n  listen:\n    - address: 127.0.0.1\n      port: "1812"\n`, VALID_FILES);
    t.same(await configIssues(t, file), ['radius.listen[0].port: must be a number (got the string "1812") (line 10)']);
  });

  await t.test('unknown key, with a suggestion', async (t) => {
    const file = await setup(t, `${VALID}radius:\n  lisen: []\n  frobnicate: 1\n`, VALID_FILES);
    t.same(await configIssues(t, file), [
      "radius.lisen: unknown key (did you mean 'listen'?) (line 8)",
      'radius.frobnicate: unknown key (line 9)',
    ]);
  });

  await t.test('unknown key inside a secret reference', async (t) => {
    const file = await setup(t, VALID.replace('{file: nas-secret}', '{file: nas-secret, genrate: true}'), VALID_FILES);
    t.same(await configIssues(t, file), ["clients[0].secret.genrate: unknown key (did you mean 'generate'?) (line 6)"]);
  });

  await t.test('bad CIDR in clients[1].addresses[0]', async (t) => {
    const yaml = `${VALID}  - name: vpn\n    addresses:\n      - 10.0.0.0/33\n    secret: {file: nas-secret}\n`;
    const file = await setup(t, yaml, VALID_FILES);
    t.same(await configIssues(t, file), [
      'clients[1].addresses[0]: must be an IP address or CIDR block (e.g. 127.0.0.1 or 10.1.0.0/16) (line 9)',
    ]);
  });

  await t.test('missing clients', async (t) => {
    const file = await setup(t, 'keys:\n  master_key: {file: master.key}\n', VALID_FILES);
    t.same(await configIssues(t, file), ['clients: is required']);
  });

  await t.test('empty clients section', async (t) => {
    const file = await setup(t, 'clients:\n', VALID_FILES);
    t.same(await configIssues(t, file), ['clients: is required (line 1)']);
  });

  await t.test('empty list of clients', async (t) => {
    const file = await setup(t, 'clients: []\n', VALID_FILES);
    t.same(await configIssues(t, file), ['clients: must have at least 1 entry (line 1)']);
  });

  await t.test('undefined policy name', async (t) => {
    const file = await setup(t, `${VALID}    policy: vpn\n`, VALID_FILES);
    t.same(await configIssues(t, file), ["clients[0].policy: no policy named 'vpn' in policies (line 7)"]);
  });

  await t.test('default policy name missing from custom policies', async (t) => {
    const file = await setup(t, `${VALID}policies:\n  vpn: {}\n`, VALID_FILES);
    // The client has no `policy:` key: the line is the client's own.
    t.same(await configIssues(t, file), ["clients[0].policy: no policy named 'default' in policies (line 4)"]);
  });

  await t.test('bad enum value in a policy, and a missing client field', async (t) => {
    const yaml = `${VALID}  - name: b\n    secret: {file: nas-secret}\npolicies:\n  default:\n    unenrolled: maybe\n`;
    const file = await setup(t, yaml, VALID_FILES);
    t.same(await configIssues(t, file), [
      'clients[1].addresses: is required (line 7)',
      'policies.default.unenrolled: must be one of "reject", "allow" (line 11)',
    ]);
  });

  await t.test('a secret written inline instead of a reference', async (t) => {
    const file = await setup(t, VALID.replace('{file: nas-secret}', 'hunter2hunter2hunter2'), VALID_FILES);
    t.same(await configIssues(t, file), ['clients[0].secret: must be {file: path} or {env: NAME} (never the secret itself) (line 6)']);
  });

  await t.test('a client without a secret', async (t) => {
    const file = await setup(t, VALID.replace('    secret: {file: nas-secret}\n', ''), VALID_FILES);
    t.same(await configIssues(t, file), ['clients[0].secret: is required (line 4)']);
  });

  await t.test('both file and env', async (t) => {
    const file = await setup(t, VALID.replace('{file: nas-secret}', '{file: nas-secret, env: X}'), VALID_FILES);
    t.same(await configIssues(t, file), ['clients[0].secret: use either {file: …} or {env: …}, not both (line 6)']);
  });

  await t.test('several problems are all reported, in one ConfigError', async (t) => {
    const file = await setup(t, `${VALID}lockout:\n  max_failures: -1\n  lock_minutes: 0\nchallenge: {ttl_seconds: 1.5}\n`, VALID_FILES);
    t.same(await configIssues(t, file), [
      'challenge.ttl_seconds: must be a whole number (line 10)',
      'lockout.max_failures: must be at least 0 (line 8)',
      'lockout.lock_minutes: must be at least 0.1 (line 9)',
    ]);
    await t.rejects(loadConfig(file), { message: /^invalid configuration in .*gateway\.yaml: challenge\.ttl_seconds: .*; lockout\.max_failures: / });
  });

  await t.test('short RADIUS secret from a file', async (t) => {
    const file = await setup(t, VALID, { ...VALID_FILES, 'nas-secret': 'tooshort\n' });
    const err = await secretFailure(t, file);
    t.equal(err.message, 'clients[0].secret: must be at least 16 characters');
    t.equal(err.code, 'GW_ERR_SECRET');
    t.same(await checkConfig(file), ['clients[0].secret: must be at least 16 characters (line 6)']);
  });

  await t.test('group-readable secret file', async (t) => {
    const file = await setup(t, VALID, { ...VALID_FILES, 'nas-secret': { content: GOOD_SECRET, mode: 0o640 } });
    const secretFile = join(dirname(file), '..', 'data', 'nas-secret');
    const err = await secretFailure(t, file);
    t.equal(
      err.message,
      `clients[0].secret: secret file ${resolve(secretFile)} is accessible by group or others (mode 0640); restrict it with: chmod 600 ${resolve(secretFile)}`,
    );
    t.match((await checkConfig(file))[0], /^clients\[0\]\.secret: .*chmod 600 .* \(line 6\)$/);
  });

  await t.test('unset environment variable', async (t) => {
    const file = await setup(t, VALID.replace('{file: nas-secret}', '{env: MFA_GW_TEST_UNSET}'), VALID_FILES);
    const err = await secretFailure(t, file, { MFA_GW_TEST_EMPTY: '' });
    t.equal(err.message, 'clients[0].secret: environment variable MFA_GW_TEST_UNSET is not set');
    t.same(await checkConfig(file, { env: {} }), ['clients[0].secret: environment variable MFA_GW_TEST_UNSET is not set (line 6)']);
  });

  await t.test('empty environment variable', async (t) => {
    const file = await setup(t, VALID.replace('{file: nas-secret}', '{env: MFA_GW_TEST_EMPTY}'), VALID_FILES);
    const err = await secretFailure(t, file, { MFA_GW_TEST_EMPTY: '' });
    t.equal(err.message, 'clients[0].secret: environment variable MFA_GW_TEST_EMPTY is not set');
  });

  await t.test('bad master key', async (t) => {
    for (const content of ['0011\n', `${HEX_KEY}00\n`, `${'zz'.repeat(32)}\n`, `${Buffer.alloc(31).toString('base64')}\n`]) {
      const file = await setup(t, VALID, { ...VALID_FILES, 'master.key': content });
      const err = await secretFailure(t, file);
      t.equal(err.message, 'keys.master_key: must be 32 bytes (64 hex characters)', JSON.stringify(content));
      t.same(await checkConfig(file), ['keys.master_key: must be 32 bytes (64 hex characters) (line 2)']);
    }
  });

  await t.test('missing secret file without generate', async (t) => {
    const file = await setup(t, VALID, { 'master.key': `${HEX_KEY}\n` });
    const err = await secretFailure(t, file);
    t.equal(err.message, `clients[0].secret: secret file ${resolve(dirname(file), '../data/nas-secret')} does not exist`);
  });

  await t.test('several secret problems are reported together', async (t) => {
    const file = await setup(t, VALID.replace('{file: nas-secret}', '{env: MFA_GW_TEST_UNSET}'), { 'master.key': 'nope\n' });
    const err = await secretFailure(t, file);
    t.equal(
      err.message,
      'keys.master_key: must be 32 bytes (64 hex characters); clients[0].secret: environment variable MFA_GW_TEST_UNSET is not set',
    );
    t.equal((await checkConfig(file, { env: {} })).length, 2);
  });

  await t.test('YAML syntax error with its line number', async (t) => {
    const file = await setup(t, 'clients:\n  - name: nas\n    addresses: [127.0.0.1\n    secret: {file: nas-secret}\n', VALID_FILES);
    const issues = await configIssues(t, file);
    t.ok(issues.length >= 1);
    t.match(issues[0], /^line \d+, column \d+: \S/);
    t.match(issues.join('\n'), /^line (3|4), /m, 'points at the unterminated flow sequence');
  });

  await t.test('duplicate YAML key', async (t) => {
    const file = await setup(t, `${VALID}log: {level: info}\nlog: {level: debug}\n`, VALID_FILES);
    t.same(await configIssues(t, file), ['line 8, column 1: Map keys must be unique']);
  });

  await t.test('missing config file', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'nope.yaml');
    t.same(await configIssues(t, file), [`cannot read configuration file ${file}: file not found`]);
  });

  await t.test('empty config file', async (t) => {
    const file = await setup(t, '# nothing here\n');
    t.same(await configIssues(t, file), ['the configuration file is empty; at least `clients` is required']);
  });
});

void t.test('{env:} secrets resolve', async (t) => {
  const yaml = `keys:\n  master_key: {env: MFA_GW_TEST_KEY}\nclients:\n  - name: nas\n    addresses: [10.0.0.0/8]\n    secret: {env: MFA_GW_TEST_SECRET}\n`;
  const file = await setup(t, yaml);
  const { config, generated } = await loadConfig(file, { env: { MFA_GW_TEST_SECRET: GOOD_SECRET, MFA_GW_TEST_KEY: HEX_KEY } });
  t.equal(config.clients[0]?.secret.toString(), GOOD_SECRET);
  t.equal(config.masterKey.toString('hex'), HEX_KEY);
  t.same(generated, []);

  // Without opts.env the process environment is used.
  process.env.MFA_GW_TEST_SECRET = GOOD_SECRET;
  process.env.MFA_GW_TEST_KEY = Buffer.from(HEX_KEY, 'hex').toString('base64');
  t.teardown(() => {
    delete process.env.MFA_GW_TEST_SECRET;
    delete process.env.MFA_GW_TEST_KEY;
  });
  const again = await loadConfig(file);
  t.equal(again.config.clients[0]?.secret.toString(), GOOD_SECRET);
  t.equal(again.config.masterKey.toString('hex'), HEX_KEY, 'base64 master key accepted');
});

void t.test('relative paths resolve against the config file, then data_dir', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'etc'));
  await mkdir(join(dir, 'var', 'lib', 'keys'), { recursive: true });
  await writeFile(join(dir, 'var', 'lib', 'keys', 'nas'), `${GOOD_SECRET}\r\n`, { mode: 0o600 });
  const file = join(dir, 'etc', 'gw.yaml');
  await writeFile(
    file,
    `gateway: {name: gw-test}\ndata_dir: ../var/lib\nstore:\n  sqlite: {path: db/main.db}\nkeys:\n  master_key: {file: keys/master, generate: true}\n` +
      `clients:\n  - name: nas\n    addresses: [192.0.2.1]\n    secret: {file: keys/nas}\n  - name: abs\n    addresses: ['2001:db8::/32']\n` +
      `    secret: {file: ${join(dir, 'abs-secret')}, generate: true}\n`,
  );

  // A relative config path is taken relative to the working directory.
  const { config, generated } = await loadConfig(relative(process.cwd(), file));
  t.equal(config.file, file);
  t.equal(config.gatewayName, 'gw-test');
  t.equal(config.dataDir, join(dir, 'var', 'lib'));
  t.equal(config.store.sqlite.path, join(dir, 'var', 'lib', 'db', 'main.db'));
  t.equal(config.clients[0]?.secret.toString(), GOOD_SECRET, 'one trailing CRLF trimmed');
  t.equal((await readFile(join(dir, 'var', 'lib', 'keys', 'master'), 'utf8')).length, 65, 'master key generated under data_dir');
  t.equal((await readFile(join(dir, 'abs-secret'), 'utf8')).length, 33, 'absolute secret path used as is');
  t.equal(generated.length, 2);

  await writeFile(file, `data_dir: ${join(dir, 'absolute-data')}\nclients:\n  - {name: n, addresses: [::1], secret: {env: S}}\n`);
  const abs = await loadConfig(file, { env: { S: GOOD_SECRET } });
  t.equal(abs.config.dataDir, join(dir, 'absolute-data'), 'absolute data_dir kept');
  t.equal(abs.config.store.sqlite.path, join(dir, 'absolute-data', 'gateway.db'));
  t.ok(abs.generated[0]?.includes(join(dir, 'absolute-data', 'master.key')), 'default master key reference is generated');
});

void t.test('two clients sharing one generated file get the same secret, generated once', async (t) => {
  const yaml = `clients:\n  - {name: a, addresses: [10.0.0.1], secret: {file: shared, generate: true}}\n  - {name: b, addresses: [10.0.0.2], secret: {file: shared, generate: true}}\n`;
  const file = await setup(t, yaml);
  const { config, generated } = await loadConfig(file);
  const [a, b] = config.clients;
  t.ok(a && b && a.secret.equals(b.secret));
  t.equal(generated.filter((g) => g.includes('RADIUS')).length, 1, 'one notice for the shared file');
});

void t.test('generateSecrets: false and checkConfig never create files', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'conf'));
  const file = join(dir, 'conf', 'gateway.yaml');
  await copyFile(SHIPPED, file);
  const err = await loadConfig(file, { generateSecrets: false }).catch((e: unknown) => e);
  t.type(err, SecretError);
  t.match((err as Error).message, /^keys\.master_key: secret file .*master\.key does not exist yet/);
  t.same(await checkConfig(file), []);
  t.same(await readdir(dir), ['conf'], 'nothing generated');
});

void t.test('the returned config is deeply frozen', async (t) => {
  const file = await setup(t, VALID, VALID_FILES);
  const loaded = await loadConfig(file);
  const { config } = loaded;
  t.ok(Object.isFrozen(loaded) && Object.isFrozen(config));
  t.throws(() => {
    (config as { gatewayName: string }).gatewayName = 'x';
  }, TypeError);
  t.throws(() => {
    (config.radius.listen[0] as { port: number }).port = 1;
  }, TypeError);
  t.throws(() => {
    (config.clients as unknown[]).push({});
  }, TypeError);
  t.throws(() => {
    (config.policies as Record<string, unknown>).extra = {};
  }, TypeError);
  t.throws(() => {
    (loaded.generated as string[]).push('x');
  }, TypeError);

  // Freezing must not leak into the schema's shared defaults: a second load still works and is independent.
  const again = await loadConfig(file);
  t.not(again.config.radius, config.radius);
  t.equal(again.config.radius.listen[0]?.port, 1812);
});

void t.test('resolveSecret on its own', async (t) => {
  const dir = await tempDir(t);
  const ctx = { baseDir: dir, env: {}, generate: true, kind: 'radius-secret' } as const;
  const first = await resolveSecret({ file: 'sub/dir/s', generate: true }, 'clients[3].secret', ctx);
  t.match(first.generated, join(dir, 'sub/dir/s'));
  t.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700, 'directories created 0700');
  const second = await resolveSecret({ file: 'sub/dir/s', generate: true }, 'clients[3].secret', ctx);
  t.equal(second.generated, undefined);
  t.ok(first.value.equals(second.value));

  // Many concurrent first starts: exactly one creates the file, all see the same secret.
  const racers = await Promise.all(Array.from({ length: 8 }, () => resolveSecret({ file: 'race', generate: true }, 'k', ctx)));
  t.equal(racers.filter((r) => r.generated !== undefined).length, 1);
  t.ok(racers.every((r) => r.value.equals(racers[0]?.value ?? Buffer.alloc(0))));

  await t.rejects(resolveSecret({ file: 'missing', generate: true }, 'clients[3].secret', { ...ctx, generate: false }), {
    message: /^clients\[3\]\.secret: secret file .*missing does not exist yet/,
  });
  await writeFile(join(dir, 'world'), GOOD_SECRET, { mode: 0o600 });
  await chmod(join(dir, 'world'), 0o604);
  await t.rejects(resolveSecret({ file: 'world', generate: false }, 'k', ctx), { message: /mode 0604.*chmod 600/ });
});

void t.test('formatPath', async (t) => {
  t.equal(formatPath(['clients', 0, 'secret']), 'clients[0].secret');
  t.equal(formatPath(['clients', 1, 'addresses', 0]), 'clients[1].addresses[0]');
  t.equal(formatPath(['policies', 'vpn-users', 'methods', 2]), 'policies.vpn-users.methods[2]');
  t.equal(formatPath(['policies', 'a.b', 'methods']), 'policies["a.b"].methods');
  t.equal(formatPath([]), '(top level)');
});

void t.test('directories and upstreams', async (t) => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const withTargets = `${VALID}policies:
  default: {first_factor: 'ldap:corp'}
  nps: {first_factor: 'radius:nps'}
directories:
  corp:
    flavour: ad
    urls: [ldaps://127.0.0.1:636, ldap://127.0.0.2:389]
    ca_file: corp-ca.pem
    bind_dn: svc-mfa@example.test
    bind_password: {file: corp-bind}
    base_dn: DC=example,DC=test
upstreams:
  nps:
    servers:
      - {address: 127.0.0.1, port: 1912, secret: {file: nps-secret}}
      - {address: 127.0.0.2, secret: {env: MFA_GW_NPS2}}
`;
  const files = { ...VALID_FILES, 'corp-ca.pem': PEM, 'corp-bind': 'bind password\n', 'nps-secret': `${GOOD_SECRET}\n` };

  await t.test('resolved: passwords, secrets and the CA read, defaults applied', async (t) => {
    const file = await setup(t, withTargets, files);
    const { config } = await loadConfig(file, { env: { MFA_GW_NPS2: 'another-secret-0123' } });
    const corp = config.directories.corp;
    t.match(corp, { name: 'corp', flavour: 'ad', start_tls: true, insecure: false, bind_password: 'bind password', timeout_ms: 5000, pool_size: 8 });
    t.equal(corp?.ca?.toString(), PEM);
    t.same(
      config.upstreams.nps?.servers.map((s) => [s.address, s.port, s.secret.toString()]),
      [
        ['127.0.0.1', 1912, GOOD_SECRET],
        ['127.0.0.2', 1812, 'another-secret-0123'],
      ],
    );
    t.match(config.upstreams.nps, { timeout_ms: 3000, tries: 2, dead_time_seconds: 30 });
  });

  await t.test('a first factor naming a directory or upstream that is not there', async (t) => {
    const file = await setup(t, `${VALID}policies:\n  default: {first_factor: 'ldap:corp'}\n  other: {first_factor: 'radius:nps'}\n`, VALID_FILES);
    t.same(await configIssues(t, file), [
      "policies.default.first_factor: no directory named 'corp' in directories (line 8)",
      "policies.other.first_factor: no upstream named 'nps' in upstreams (line 9)",
    ]);
  });

  await t.test('plain ldap:// needs start_tls or an explicit insecure: true', async (t) => {
    const file = await setup(t, withTargets.replace('    ca_file: corp-ca.pem\n', '    ca_file: corp-ca.pem\n    start_tls: false\n'), files);
    t.same(await configIssues(t, file), [
      'directories.corp.urls[1]: ldap:// without start_tls sends passwords in clear text; use ldaps://, start_tls: true, or insecure: true (line 13)',
    ]);
    const insecure = await setup(t, withTargets.replace('    ca_file: corp-ca.pem\n', '    ca_file: corp-ca.pem\n    start_tls: false\n    insecure: true\n'), files);
    t.equal((await loadConfig(insecure, { env: { MFA_GW_NPS2: 'another-secret-0123' } })).config.directories.corp?.insecure, true);
  });

  await t.test('bad URL, missing password, short upstream secret: each named by its key path', async (t) => {
    const file = await setup(t, withTargets.replace('ldaps://127.0.0.1:636', 'https://127.0.0.1'), files);
    t.match((await configIssues(t, file))[0], /^directories\.corp\.urls\[0\]: must be ldap:\/\/host\[:port\] or ldaps:\/\/host\[:port\]/);
    const noPassword = await setup(t, withTargets, { ...files, 'corp-bind': '' });
    t.match((await secretFailure(t, noPassword, { MFA_GW_NPS2: 'another-secret-0123' })).message, /^directories\.corp\.bind_password: must not be empty/);
    const shortSecret = await setup(t, withTargets, files);
    t.match((await secretFailure(t, shortSecret, { MFA_GW_NPS2: 'short' })).message, /^upstreams\.nps\.servers\[1\]\.secret: must be at least 16 characters/);
  });

  await t.test('a CA file that is missing or holds no certificate', async (t) => {
    const file = await setup(t, withTargets, { ...files, 'corp-ca.pem': 'not a certificate' });
    await t.rejects(loadConfig(file, { env: { MFA_GW_NPS2: 'another-secret-0123' } }), /directories\.corp\.ca_file: .* holds no PEM certificate/);
  });
});

void t.test('providers, methods and the callback listener: checked by key path, secrets resolved', async (t) => {
  const providers = `providers:
  tw:
    type: twilio
    account_sid: AC0123456789abcdef0123456789abcdef
    auth_token: {file: tw-token}
    from: "+15005550006"
  hook:
    type: webhook
    url: https://sms.example.test/send
    secret: {file: hook-secret}
  mail:
    type: smtp
    host: smtp.example.test
    from: mfa@example.test
    tls: none
`;
  const bad = await setup(
    t,
    `${VALID}${providers}methods:
  sms: {providers: [hook, nope]}
  push: {providers: [tw]}
  voice: {providers: [hook]}
policies:
  default: {methods: [totp, email]}
fraud: {notify: [not-an-address]}
`,
    VALID_FILES,
  );
  const issues = await configIssues(t, bad);
  t.match(issues.join('\n'), /methods\.sms\.providers\[1\]: no provider named 'nope' in providers/);
  t.match(issues.join('\n'), /methods\.push\.providers\[0\]: provider 'tw' \(twilio\) cannot do push/);
  t.match(issues.join('\n'), /methods\.voice\.providers\[0\]: webhook provider 'hook' does not list voice in its channels/);
  t.match(issues.join('\n'), /policies\.default\.methods\[1\]: method 'email' needs methods\.email\.providers/);
  t.match(issues.join('\n'), /http: twilio and ntfy providers call the gateway back: set http\.listen and http\.public_url/);
  t.match(issues.join('\n'), /providers\.mail\.tls: tls: none sends codes in clear text/);
  t.match(issues.join('\n'), /fraud\.notify\[0\]: must be an email address/);

  const modes = await setup(
    t,
    `${VALID}${providers.replace('tls: none', 'tls: starttls')}  duo:
    type: duo
    api_host: api-x.duosecurity.com
    integration_key: DIAAAAAAAAAAAAAAAAAA
    secret_key: {file: tw-token}
methods:
  sms: {providers: [tw, hook], mode: two_way}
  phone: {providers: [tw, duo], mode: pin, pin_min_length: 8, pin_max_length: 6}
http: {listen: [{address: 127.0.0.1, port: 8443}], public_url: "https://mfa.example.test", insecure: true}
`,
    { ...VALID_FILES, 'tw-token': 'x\n', 'hook-secret': `${'h'.repeat(40)}\n` },
  );
  const modeIssues = (await configIssues(t, modes)).join('\n');
  t.match(modeIssues, /methods\.sms\.providers\[1\]: mode two_way needs a twilio provider, not webhook/);
  t.match(modeIssues, /methods\.phone\.providers\[1\]: mode pin needs a twilio provider, not duo/);
  t.match(modeIssues, /methods\.phone\.pin_min_length: pin_min_length must not exceed pin_max_length/);

  const plainHttp = await setup(t, `${VALID}providers:\n  n: {type: ntfy, base_url: "http://ntfy.example.test"}\n`, VALID_FILES);
  t.match((await configIssues(t, plainHttp)).join('\n'), /providers\.n\.base_url: must be an https:\/\/ URL \(http:\/\/ only to a loopback address\)/);

  const good = await setup(
    t,
    `${VALID}${providers.replace('tls: none', 'tls: starttls')}methods:
  sms: {providers: [tw, hook]}
  phone: {providers: [tw], mode: pin}
policies:
  default: {methods: [totp, sms, phone], remember_seconds: 60}
http:
  listen: [{address: 127.0.0.1, port: 8443}]
  public_url: https://mfa.example.test
  insecure: true
`,
    { ...VALID_FILES, 'tw-token': 'twilio-token-value\n', 'hook-secret': `${'h'.repeat(40)}\n` },
  );
  const { config } = await loadConfig(good, { generateSecrets: false });
  t.match(config.providers.tw, { type: 'twilio', auth_token: 'twilio-token-value', name: 'tw', ca: undefined });
  t.match(config.providers.hook, { type: 'webhook', secret: 'h'.repeat(40), channels: ['sms'] });
  t.match(config.methods.sms, { providers: ['tw', 'hook'], mode: 'one_way', code_length: 6, ttl_seconds: 300, per_user_per_hour: 5 });
  t.match(config.methods.phone, { mode: 'pin', pin_min_length: 4 });
  t.equal(config.clients[0]?.approval_timeout_seconds, 60);
  t.match(config.policies.default, { remember_seconds: 60, method_menu: true });
  t.same(await checkConfig(good), []);

  const short = await setup(t, `${VALID}providers:\n  hook: {type: webhook, url: "https://sms.example.test", secret: {file: hook-secret}}\n`, { ...VALID_FILES, 'hook-secret': 'short\n' });
  await t.rejects(loadConfig(short, { generateSecrets: false }), { code: 'GW_ERR_CONFIG', message: 'providers.hook.secret: must be at least 32 characters' });
});
