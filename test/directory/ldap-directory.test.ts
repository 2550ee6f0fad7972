import { readFileSync } from 'node:fs';
import { Socket, createServer, type Server as NetServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { DestinationStream } from 'pino';
import { Client } from 'ldapts';
import t from 'tap';
import { ConfigError, UpstreamUnavailable } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/log.js';
import { LdapDirectory, isEmptyPassword, isUnderDn, parseLogin, splitDn, type DirectoryOptions } from '../../src/directory/ldap-directory.js';
import { freePort } from '../peers/ports.js';
import { requirePeer } from '../peers/require-peer.js';
import { requireSambaAd, sambaDirectoryOptions, startSambaAd } from '../peers/samba-ad.js';
import { slapdDirectoryOptions, startSlapd, type RunningSlapd } from '../peers/slapd.js';

// The directory client against the real thing: OpenLDAP 2.5 (slapd) and a Samba 4.17 AD DC, each
// started by the harness in test/peers on loopback. The first tests need no peer.

/** A logger whose every line (debug and up) is kept, to check what was logged and what never was. */
function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination: DestinationStream = { write: (line: string) => void lines.push(line) };
  return { log: createLogger({ level: 'debug' }, destination), lines };
}

/**
 * Every TCP connection this process starts while `fn` runs, as `host:port` (a name, if one was
 * given, before any lookup). node:net's `net.client.socket` channel misses tls.connect(), so the
 * one method both paths go through is wrapped for the duration.
 */
async function connectionsDuring<T>(fn: () => Promise<T>): Promise<{ result: T; connections: string[] }> {
  const connections: string[] = [];
  const proto = Socket.prototype as unknown as { connect: (this: Socket, ...args: unknown[]) => Socket };
  const original = proto.connect;
  proto.connect = function (this: Socket, ...args: unknown[]) {
    const [first, second] = args;
    if (typeof first === 'object' && first !== null && 'port' in first) {
      const o = first as { host?: string; port: number };
      connections.push(`${o.host ?? 'localhost'}:${o.port}`);
    } else if (typeof first === 'number' || typeof first === 'string') {
      connections.push(`${typeof second === 'string' ? second : 'localhost'}:${String(first)}`);
    }
    return original.apply(this, args);
  };
  try {
    return { result: await fn(), connections };
  } finally {
    proto.connect = original;
  }
}

t.test('login forms', async (t) => {
  t.same(parseLogin('alice'), { kind: 'name', name: 'alice' });
  t.same(parseLogin('  alice '), { kind: 'name', name: 'alice' }, 'trimmed');
  t.same(parseLogin('EXAMPLE\\alice'), { kind: 'domain', domain: 'EXAMPLE', name: 'alice' });
  t.same(parseLogin('alice@example.test'), { kind: 'principal', principal: 'alice@example.test', name: 'alice', realm: 'example.test' });
  t.same(parseLogin('uid=alice,ou=people,dc=example,dc=test'), { kind: 'dn', dn: 'uid=alice,ou=people,dc=example,dc=test' });
  t.same(parseLogin('CN=Smith\\, John,OU=Staff,DC=example,DC=test'), { kind: 'dn', dn: 'CN=Smith\\, John,OU=Staff,DC=example,DC=test' }, 'escaped comma');
  t.same(parseLogin('cn=a@b,dc=x'), { kind: 'dn', dn: 'cn=a@b,dc=x' }, 'a DN holding @ stays a DN');
  for (const nobody of ['', '   ', 'EXAMPLE\\', '\\alice', 'a\\b\\c', '@example.test', 'alice@', 'cn=', 'cn=x,', 'cn=x\\']) {
    t.equal(parseLogin(nobody), undefined, JSON.stringify(nobody));
  }
  t.ok(isEmptyPassword(''));
  t.ok(isEmptyPassword('\0'));
  t.ok(isEmptyPassword('\0\0\0'));
  t.notOk(isEmptyPassword(' '));
  t.notOk(isEmptyPassword('a\0'));
});

t.test('DN containment is decided on RDNs, not on string suffixes', async (t) => {
  t.same(splitDn('UID=Alice , ou=People,DC=example, dc=test'), ['uid=alice', 'ou=people', 'dc=example', 'dc=test']);
  const base = 'dc=example,dc=test';
  t.ok(isUnderDn('uid=alice,ou=people,dc=example,dc=test', base));
  t.ok(isUnderDn('UID=alice, OU=people, DC=Example, DC=Test', base), 'case and blanks');
  t.ok(isUnderDn(base, base), 'the base itself');
  t.notOk(isUnderDn('cn=config', base));
  t.notOk(isUnderDn('dc=test', base));
  t.notOk(isUnderDn('uid=alice,dc=otherexample,dc=test', base), 'suffix of a value is not a suffix of the DN');
  t.notOk(isUnderDn('cn=x\\,dc=example\\,dc=test', base), 'escaped commas are not separators');
  t.notOk(isUnderDn('cn=x,dc=example\\,dc=test', base));
});

function baseOptions(log: Logger): DirectoryOptions {
  return {
    name: 'corp',
    flavour: 'ldap',
    urls: ['ldaps://127.0.0.1:636'],
    startTls: false,
    insecure: false,
    bindDn: 'cn=svc,dc=example,dc=test',
    bindPassword: 'service-secret',
    baseDn: 'dc=example,dc=test',
    timeoutMs: 2000,
    poolSize: 2,
    log,
  };
}

t.test('configuration is checked at construction', async (t) => {
  const { log, lines } = captureLog();
  const ok = new LdapDirectory(baseOptions(log));
  await ok.close();
  const refused = (overrides: Partial<DirectoryOptions>, issue: RegExp, what: string): void => {
    try {
      new LdapDirectory({ ...baseOptions(log), ...overrides });
      t.fail(`${what}: accepted`);
    } catch (err) {
      t.ok(err instanceof ConfigError && err.code === 'GW_ERR_CONFIG', `${what}: ConfigError`);
      t.match((err as ConfigError).issues, [issue], `${what}: ${String((err as ConfigError).issues)}`);
    }
  };
  refused({ urls: ['ldap://127.0.0.1:389'] }, /^urls\[0\]: plain ldap:\/\/ would send passwords in clear text/, 'plain ldap:// without StartTLS or insecure');
  refused({ urls: ['ldaps://127.0.0.1:636', 'ldap://127.0.0.1:389'] }, /^urls\[1\]: plain ldap/, 'a plain second URL too');
  refused({ urls: [] }, /^urls: at least one/, 'no URL');
  refused({ urls: ['http://127.0.0.1'] }, /^urls\[0\]: must be ldaps/, 'another scheme');
  refused({ urls: ['ldaps://127.0.0.1:636/dc=example,dc=test??sub'] }, /^urls\[0\]: only ldap\[s\]:\/\/host:port/, 'URL with a DN');
  refused({ urls: ['not a url'] }, /^urls\[0\]: not a URL/, 'garbage');
  refused({ bindPassword: '' }, /^bindPassword: must not be empty/, 'empty service password (an anonymous bind in disguise)');
  refused({ bindPassword: '\0' }, /^bindPassword: must not be empty/, 'NUL service password');
  refused({ bindDn: '' }, /^bindDn:/, 'no service account');
  refused({ baseDn: 'example.test' }, /^baseDn: not a DN/, 'base that is no DN');
  refused({ poolSize: 0 }, /^poolSize:/, 'pool of 0');
  refused({ timeoutMs: 0 }, /^timeoutMs:/, 'timeout of 0');

  const before = lines.length;
  const startTls = new LdapDirectory({ ...baseOptions(log), urls: ['ldap://127.0.0.1:389'], startTls: true });
  await startTls.close();
  t.equal(lines.length, before, 'ldap:// with StartTLS: accepted without a warning');
  const insecure = new LdapDirectory({ ...baseOptions(log), urls: ['ldap://127.0.0.1:389'], insecure: true });
  await insecure.close();
  const warning = lines.slice(before).map((l) => JSON.parse(l) as { level: number; msg: string; url?: string });
  t.match(warning, [{ level: 40, msg: /^INSECURE: .*clear text/, url: 'ldap://127.0.0.1:389' }], 'insecure plain ldap:// is warned at construction');
});

t.test('an empty password is refused before any connection is made', async (t) => {
  // Nothing listens on these: a connection attempt would show up (and fail).
  const { log } = captureLog();
  const port = await freePort('tcp');
  const dir = new LdapDirectory({ ...baseOptions(log), urls: [`ldaps://127.0.0.1:${port}`] });
  t.teardown(() => dir.close());
  for (const password of ['', '\0', '\0\0\0\0']) {
    const { result, connections } = await connectionsDuring(() => dir.authenticate('alice', password));
    t.same(result, { ok: false, reason: 'bad_password' }, `${JSON.stringify(password)}: bad_password`);
    t.same(connections, [], 'no connection opened');
  }
  // The same directory with a real password does try to connect (so the check above can see one).
  const { connections } = await connectionsDuring(() => dir.authenticate('alice', 'x').catch((err: unknown) => err));
  t.same(connections, [`127.0.0.1:${port}`], 'a non-empty password does reach for the server');
});

// ---------------------------------------------------------------------------------------------
// OpenLDAP

const ALICE = { uid: 'alice', password: `Alice-pw 9 (é)*\\`, givenName: 'Alice', sn: 'Liddell', mail: 'alice@example.test', telephoneNumber: '+1 555 0100', mobile: '+1 555 0200' };
const BOB = { uid: 'bob', password: 'Bob-pw-4', mail: 'robert@example.test' };
const CAROL = { uid: 'carol', password: 'Carol-pw-5', ou: 'other' };
// Two entries behind one mail address: a login by that address is ambiguous.
const DAVE = { uid: 'dave', password: 'Dave-pw-6', mail: 'shared@example.test' };
const EVE = { uid: 'eve', password: 'Eve-pw-7', mail: 'shared@example.test' };

/** slapd over ldap:// with StartTLS, unless `overrides` say otherwise. */
function slapdOptions(slapd: RunningSlapd, log: Logger, overrides: Partial<DirectoryOptions> = {}): DirectoryOptions {
  return slapdDirectoryOptions(slapd, log, { urls: [slapd.url], startTls: true, timeoutMs: 2000, ...overrides });
}

/** Simple binds slapd has logged (log level stats: `conn=… op=… BIND dn="…" method=128`), for `dn` or for anyone. */
async function binds(slapd: RunningSlapd, dn?: string): Promise<number> {
  const lines = (await settledLogs(slapd)).split('\n').filter((l) => l.includes(' BIND dn="') && l.endsWith(' method=128'));
  return dn === undefined ? lines.length : lines.filter((l) => l.includes(` BIND dn="${dn}" `)).length;
}

/** Connections slapd has accepted (`conn=… fd=… ACCEPT from IP=…`). */
function accepted(slapd: RunningSlapd): Promise<number> {
  return logCount(slapd, ' ACCEPT from IP=127.0.0.1');
}

/** slapd's log once it has stopped growing for 150 ms: it arrives through a pipe, after the answers. */
async function settledLogs(slapd: RunningSlapd): Promise<string> {
  let last = slapd.logs();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const now = slapd.logs();
    if (now.length === last.length) return now;
    last = now;
  }
}

/** Lines of slapd's (settled) log that contain `text`. */
async function logCount(slapd: RunningSlapd, text: string): Promise<number> {
  return (await settledLogs(slapd)).split('\n').filter((l) => l.includes(text)).length;
}

/** A TCP server that accepts connections and never says a word: a hung directory. */
async function silentServer(t: { teardown(fn: () => unknown): unknown }): Promise<string> {
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `ldap://127.0.0.1:${address.port}`;
}

t.test('OpenLDAP (slapd)', async (t) => {
  if (!requirePeer(t, 'slapd', 'slapd') || !requirePeer(t, 'ldapsearch', 'ldap-utils')) return;
  const started = performance.now();
  const slapd = await startSlapd({ t, users: [ALICE, BOB, CAROL, DAVE, EVE], groups: [{ cn: 'VPN-Users', members: ['alice'] }] });
  t.comment(`slapd up in ${Math.round(performance.now() - started)} ms`);
  const { log, lines } = captureLog();
  const aliceDn = slapd.userDn('alice');

  t.test('StartTLS: every login form binds as the entry found', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, log));
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn }, 'uid');
    t.same(await dir.authenticate(aliceDn, ALICE.password), { ok: true, dn: aliceDn }, 'full DN');
    t.same(await dir.authenticate('UID=alice, OU=people, DC=example, DC=test', ALICE.password), { ok: true, dn: aliceDn }, 'DN in another spelling');
    t.same(await dir.authenticate('alice@example.test', ALICE.password), { ok: true, dn: aliceDn }, 'mail');
    t.same(await dir.authenticate('EXAMPLE\\alice', ALICE.password), { ok: true, dn: aliceDn }, 'DOMAIN\\uid');
    t.same(await dir.authenticate('bob@example.test', BOB.password), { ok: true, dn: slapd.userDn('bob') }, 'uid@realm when no mail matches: the part before @');
    t.same(await dir.authenticate('robert@example.test', BOB.password), { ok: true, dn: slapd.userDn('bob') }, 'mail that is not uid@realm');
    t.same(await dir.authenticate('carol', CAROL.password), { ok: true, dn: slapd.userDn('carol') }, 'in another ou under the base');
  });

  t.test('with the DN the sync stored: one bind and no search; a DN gone stale is looked up again', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, log));
    t.teardown(() => dir.close());
    /** slapd logs each operation at level stats; its stderr reaches us a moment after the answer. */
    const searches = async (): Promise<number> => {
      await delay(300);
      return (slapd.logs().match(/ SRCH base=/g) ?? []).length;
    };
    t.same(await dir.authenticate('alice', ALICE.password, aliceDn), { ok: true, dn: aliceDn }, 'the pool is warm now');
    const before = await searches();
    t.same(await dir.authenticate('alice', ALICE.password, aliceDn), { ok: true, dn: aliceDn });
    t.same(await dir.authenticate('no-such-login', ALICE.password, aliceDn), { ok: true, dn: aliceDn }, 'the known DN is what gets bound');
    t.equal((await searches()) - before, 0, 'no search');
    t.same(await dir.authenticate('alice', 'wrong', aliceDn), { ok: false, reason: 'bad_password' }, 'a wrong password is still wrong');
    t.equal((await searches()) - before, 1, '… after one search found the DN unchanged');
    t.same(await dir.authenticate('alice', ALICE.password, 'uid=alice,ou=people,dc=elsewhere'), { ok: true, dn: aliceDn }, 'a DN outside the base is not bound: searched');

    // Moved (and renamed) since the last sync: the stale DN fails, the search finds the entry's new DN.
    const oldDn = `uid=frank,ou=people,${slapd.baseDn}`;
    await slapd.ldapmodify(`dn: ${oldDn}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: frank\ncn: Frank\nsn: Stale\nuserPassword: Frank-pw-7\n`);
    t.same(await dir.authenticate('frank', 'Frank-pw-7', oldDn), { ok: true, dn: oldDn });
    await slapd.ldapmodify(`dn: ${oldDn}\nchangetype: modrdn\nnewrdn: uid=frank\ndeleteoldrdn: 1\nnewsuperior: ou=other,${slapd.baseDn}\n`);
    const newDn = `uid=frank,ou=other,${slapd.baseDn}`;
    t.same(await dir.authenticate('frank', 'Frank-pw-7', oldDn), { ok: true, dn: newDn }, 'bound with the DN it has now');
    t.same(await dir.authenticate('frank', 'wrong', oldDn), { ok: false, reason: 'bad_password' });
    t.same(await dir.authenticate('frank', '', oldDn), { ok: false, reason: 'bad_password' }, 'an empty password never reaches the directory');
  });

  t.test('rejections are values', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, log));
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('alice', 'wrong'), { ok: false, reason: 'bad_password' }, 'wrong password');
    t.same(await dir.authenticate('alice', `${ALICE.password}x`), { ok: false, reason: 'bad_password' }, 'password plus a character');
    t.same(await dir.authenticate(aliceDn, BOB.password), { ok: false, reason: 'bad_password' }, 'DN with another user\'s password');

    const before = await binds(slapd);
    t.same(await dir.authenticate('nobody', 'whatever'), { ok: false, reason: 'user_unknown' }, 'unknown uid');
    t.same(await dir.authenticate('nobody@example.test', 'whatever'), { ok: false, reason: 'user_unknown' }, 'unknown mail');
    t.same(await dir.authenticate('uid=nobody,ou=people,dc=example,dc=test', 'whatever'), { ok: false, reason: 'user_unknown' }, 'unknown DN');
    // Filter metacharacters travel as values: they match nobody, least of all everybody.
    for (const login of ['*', 'a*', 'alice)(uid=*', '*)(objectClass=*', 'alice\\2a', '(uid=alice)']) {
      t.same(await dir.authenticate(login, ALICE.password), { ok: false, reason: 'user_unknown' }, `injection ${JSON.stringify(login)}`);
    }
    // The rootdn has a password but no entry; cn=config is outside the base: neither is a user.
    t.same(await dir.authenticate(slapd.adminDn, slapd.adminPassword), { ok: false, reason: 'user_unknown' }, 'rootdn (no entry) is no user');
    t.same(await dir.authenticate('cn=config', slapd.adminPassword), { ok: false, reason: 'user_unknown' }, 'DN outside the base');
    t.same(await dir.authenticate('shared@example.test', DAVE.password), { ok: false, reason: 'user_unknown' }, 'a mail two entries share binds neither');
    t.same(await dir.authenticate('ou=people,dc=example,dc=test', 'x'), { ok: false, reason: 'user_unknown' }, 'an entry that is no person');
    t.equal(await binds(slapd), before, 'no bind at all for unknown or ambiguous users (the pooled service connection did the searches)');
    t.same(await dir.authenticate('dave', DAVE.password), { ok: true, dn: slapd.userDn('dave') }, 'while the uid is unique');
    t.equal(await binds(slapd), before + 1, 'and that one bind shows in the log');
  });

  t.test('an EMPTY password never reaches slapd, where it would have "succeeded"', async (t) => {
    // slapd here allows the unauthenticated bind (RFC 4513 §5.1.2), as AD does: prove it first.
    const raw = new Client({ url: slapd.ldapsUrl, tlsOptions: { ca: readFileSync(slapd.caFile) }, timeout: 2000 });
    await raw.bind(aliceDn, '');
    t.ok(raw.isBound, 'a raw bind as alice with an empty password is a success on this slapd');
    await raw.unbind();

    const dir = new LdapDirectory(slapdOptions(slapd, log));
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn }, 'warm: connections open');
    const before = await binds(slapd, aliceDn);
    for (const login of ['alice', aliceDn, 'alice@example.test']) {
      for (const password of ['', '\0', '\0\0']) {
        t.same(await dir.authenticate(login, password), { ok: false, reason: 'bad_password' }, `${login} / ${JSON.stringify(password)}`);
      }
    }
    t.equal(await binds(slapd, aliceDn), before, 'slapd logged no bind as alice');
  });

  t.test('LDAPS', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, log, { urls: [slapd.ldapsUrl], startTls: false }));
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn });
    t.same(await dir.authenticate('alice', 'wrong'), { ok: false, reason: 'bad_password' });
  });

  t.test('a server certificate the CA did not sign is a fault, never a reject', async (t) => {
    const untrusted = readFileSync(slapd.untrustedCaFile);
    for (const [what, overrides] of [
      ['LDAPS', { urls: [slapd.ldapsUrl], startTls: false, ca: untrusted }],
      ['StartTLS', { urls: [slapd.url], startTls: true, ca: untrusted }],
    ] as const) {
      const dir = new LdapDirectory(slapdOptions(slapd, log, overrides));
      const before = await binds(slapd, aliceDn);
      await t.rejects(dir.authenticate('alice', ALICE.password), { name: 'UpstreamUnavailable', code: 'GW_ERR_UPSTREAM_UNAVAILABLE', message: /certificate/ }, what);
      await t.rejects(dir.findUser('alice'), UpstreamUnavailable, `${what}: findUser too`);
      t.equal(await binds(slapd, aliceDn), before, `${what}: no bind as alice`);
      await dir.close();
    }
    // The system's CAs (no `ca`) do not know the test CA either.
    const { ca: _ca, ...noCa } = slapdOptions(slapd, log, { urls: [slapd.ldapsUrl], startTls: false });
    const system = new LdapDirectory(noCa);
    await t.rejects(system.authenticate('alice', ALICE.password), UpstreamUnavailable, 'system CAs');
    await system.close();
  });

  t.test('plain ldap:// needs `insecure`, and then works', async (t) => {
    t.throws(() => new LdapDirectory(slapdOptions(slapd, log, { startTls: false })), ConfigError, 'refused at construction');
    const dir = new LdapDirectory(slapdOptions(slapd, log, { startTls: false, insecure: true }));
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn });
  });

  t.test('failover: a refused and a hung server are skipped, all down is UpstreamUnavailable', async (t) => {
    const closed = `ldap://127.0.0.1:${await freePort('tcp')}`;
    const hung = await silentServer(t);
    const logged = lines.length;
    const dir = new LdapDirectory(slapdOptions(slapd, log, { urls: [closed, hung, slapd.url], timeoutMs: 400 }));
    t.teardown(() => dir.close());
    let begin = performance.now();
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn }, 'third URL answers');
    const first = performance.now() - begin;
    t.ok(first >= 400 && first < 2500, `first attempt waited for the hung server once (${Math.round(first)} ms)`);
    begin = performance.now();
    t.same(await dir.authenticate('alice', 'wrong'), { ok: false, reason: 'bad_password' });
    const second = performance.now() - begin;
    t.ok(second < 400, `failed servers are tried last afterwards: no wait for the hung one (${Math.round(second)} ms)`);
    t.match(
      lines
        .slice(logged)
        .map((l) => JSON.parse(l) as { msg: string; url?: string })
        .filter((l) => l.msg.startsWith('directory server failed')),
      [{ url: closed }, { url: hung }],
      'each failure logged with its URL',
    );

    const down = new LdapDirectory(slapdOptions(slapd, log, { urls: [closed, hung], timeoutMs: 300 }));
    await t.rejects(down.authenticate('alice', ALICE.password), { name: 'UpstreamUnavailable', code: 'GW_ERR_UPSTREAM_UNAVAILABLE', message: /no server could look the user up/ });
    await t.rejects(down.findUser('alice'), UpstreamUnavailable);
    await down.close();
    await t.rejects(down.authenticate('alice', ALICE.password), UpstreamUnavailable, 'closed directory');
  });

  t.test('findUser returns the entry with its attributes', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, log));
    t.teardown(() => dir.close());
    const alice = await dir.findUser('alice@example.test');
    t.same(alice, {
      dn: aliceDn,
      username: 'alice',
      givenName: 'Alice',
      sn: 'Liddell',
      mail: 'alice@example.test',
      telephoneNumber: '+1 555 0100',
      mobile: '+1 555 0200',
      memberOf: [slapd.groupDn('VPN-Users')],
    });
    t.same(await dir.findUser('EXAMPLE\\bob'), { dn: slapd.userDn('bob'), username: 'bob', givenName: 'Bob', sn: 'User', mail: 'robert@example.test', memberOf: [] });
    t.equal(await dir.findUser('nobody'), undefined);
    t.equal(await dir.findUser('*'), undefined);
  });

  t.test('pooling: many concurrent logins share a few connections, each gets its own answer', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, log, { poolSize: 3 }));
    t.teardown(() => dir.close());
    const before = await accepted(slapd);
    const logins = Array.from({ length: 60 }, (_, i) => {
      const user = [ALICE, BOB, CAROL][i % 3] ?? ALICE;
      const right = i % 2 === 0;
      return { user, right, promise: dir.authenticate(user.uid, right ? user.password : 'wrong') };
    });
    for (const [i, { user, right, promise }] of logins.entries()) {
      const outcome = await promise;
      if (right) t.same(outcome, { ok: true, dn: slapd.userDn(user.uid) }, `#${i} ${user.uid} right`);
      else t.same(outcome, { ok: false, reason: 'bad_password' }, `#${i} ${user.uid} wrong`);
    }
    const opened = (await accepted(slapd)) - before;
    t.ok(opened <= 3 + 3, `at most poolSize bind + min(poolSize, 4) search connections (${opened})`);
  });

  t.test('a connection the server dropped is replaced, never silently re-opened without TLS', async (t) => {
    // From now on slapd lets nobody but its rootdn (our service account) bind or read without
    // TLS: a user connection re-opened in clear would get bad_password, a search connection
    // re-opened in clear (hence anonymous) would find nobody.
    const acl = (rules: string[]): string =>
      `dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcAccess\n${rules.map((r, i) => `olcAccess: {${i}}${r}\n`).join('')}`;
    await slapd.ldapmodify(acl(['to attrs=userPassword by anonymous tls_ssf=1 auth by * none', 'to * by users tls_ssf=1 read by * none']));
    t.teardown(() => slapd.ldapmodify(acl(['to attrs=userPassword by self write by anonymous auth by * none', 'to * by * read'])));
    const plain = new Client({ url: slapd.url, timeout: 2000 });
    await t.rejects(plain.bind(aliceDn, ALICE.password), { code: 49 }, 'alice cannot bind in clear any more');
    await plain.unbind();
    const dir = new LdapDirectory(slapdOptions(slapd, log, { poolSize: 1 }));
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn });
    // slapd closes connections idle for 1 s: both pooled connections go.
    await slapd.ldapmodify('dn: cn=config\nchangetype: modify\nreplace: olcIdleTimeout\nolcIdleTimeout: 1\n');
    const before = await accepted(slapd);
    t.teardown(() => slapd.ldapmodify('dn: cn=config\nchangetype: modify\nreplace: olcIdleTimeout\nolcIdleTimeout: 0\n'));
    await new Promise((resolve) => setTimeout(resolve, 2500));
    t.same(await dir.authenticate('alice', ALICE.password), { ok: true, dn: aliceDn }, 'works after the server closed the pooled connections');
    t.same(await dir.authenticate('bob', 'wrong'), { ok: false, reason: 'bad_password' });
    t.equal((await accepted(slapd)) - before, 2, 'one new search and one new bind connection');
  });

  t.test('passwords never reach the log', async (t) => {
    const all = lines.join('\n');
    t.ok(lines.some((l) => l.includes('"level":20')), 'debug lines were written');
    for (const secret of [ALICE.password, BOB.password, CAROL.password, DAVE.password, slapd.adminPassword]) {
      t.notOk(all.includes(secret) || all.includes(JSON.stringify(secret).slice(1, -1)), 'no password in the log');
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Active Directory

t.test('Active Directory (Samba AD DC)', async (t) => {
  if (!requirePeer(t, 'samba', 'samba-ad-dc')) return;
  if (!requireSambaAd(t)) return;
  const started = performance.now();
  const dc = await startSambaAd({ t });
  await dc.seed();
  t.comment(`Samba AD DC up and seeded in ${Math.round(performance.now() - started)} ms (provision ${dc.timings.provisionMs} ms, ready ${dc.timings.readyMs} ms)`);
  const { log, lines } = captureLog();
  const ca = readFileSync(dc.caFile);
  const options = (overrides: Partial<DirectoryOptions> = {}): DirectoryOptions => sambaDirectoryOptions(dc, log, { ...overrides });
  const user1 = dc.userDn('user1');
  const pw = dc.userPassword;

  t.test('every login form of user1 authenticates, over LDAPS and StartTLS', async (t) => {
    for (const [what, overrides] of [
      ['LDAPS', {}],
      ['StartTLS', { urls: [dc.ldapUrl], startTls: true }],
    ] as const) {
      const dir = new LdapDirectory(options(overrides));
      for (const login of ['user1', 'user1@example.test', 'USER1@EXAMPLE.TEST', 'EXAMPLE\\user1', user1]) {
        t.same(await dir.authenticate(login, pw), { ok: true, dn: user1 }, `${what}: ${login}`);
      }
      await dir.close();
    }
  });

  t.test("AD's reasons come through as reject reasons with their data code", async (t) => {
    const dir = new LdapDirectory(options());
    t.teardown(() => dir.close());
    t.same(await dir.authenticate('user1', 'Wrong-Pass-1'), { ok: false, reason: 'bad_password', diagnostic: 'data 52e' }, 'wrong password: 52e');
    t.same(await dir.authenticate('disabled1', pw), { ok: false, reason: 'account_disabled', diagnostic: 'data 533' }, 'disabled1: 533');
    t.same(await dir.authenticate('expired1', pw), { ok: false, reason: 'account_expired', diagnostic: 'data 701' }, 'expired1: 701');
    t.same(await dir.authenticate('mustchange1', pw), { ok: false, reason: 'must_change_password', diagnostic: 'data 773' }, 'mustchange1: 773');
    t.same(await dir.authenticate('nobody', pw), { ok: false, reason: 'user_unknown' }, 'unknown sAMAccountName');
    t.same(await dir.authenticate('user1@other.test', pw), { ok: false, reason: 'user_unknown' }, 'UPN of another realm');
    t.same(await dir.authenticate('*', pw), { ok: false, reason: 'user_unknown' }, 'a filter wildcard matches nobody');
    t.same(await dir.authenticate('user1', ''), { ok: false, reason: 'bad_password' }, 'empty password');
    // Administrator is a person under the domain root: a directory scoped to the whole domain
    // checks its password like any user's. Scoped to OU=Staff, it is nobody.
    t.same(await dir.authenticate('Administrator', dc.adminPassword), { ok: true, dn: dc.adminDn }, 'base = domain: Administrator is a user');
    const staff = new LdapDirectory(options({ baseDn: `OU=Staff,${dc.baseDn}` }));
    t.teardown(() => staff.close());
    t.same(await staff.authenticate('user1', pw), { ok: true, dn: user1 }, 'base = OU=Staff: user1');
    t.same(await staff.authenticate('Administrator', dc.adminPassword), { ok: false, reason: 'user_unknown' }, 'base = OU=Staff: Administrator by name');
    t.same(await staff.authenticate(dc.adminDn, dc.adminPassword), { ok: false, reason: 'user_unknown' }, 'base = OU=Staff: Administrator by DN');
  });

  t.test('lockout: after the threshold of bad passwords, even the right one gets 775', async (t) => {
    const dir = new LdapDirectory(options());
    t.teardown(() => dir.close());
    t.teardown(() => dc.unlock('locked1'));
    t.same(await dir.authenticate('locked1', pw), { ok: true, dn: dc.userDn('locked1') }, 'fine before');
    for (let i = 1; i <= dc.lockoutThreshold; i++) {
      t.same(await dir.authenticate('locked1', `Wrong-${i}`), { ok: false, reason: 'bad_password', diagnostic: 'data 52e' }, `bad password ${i}`);
    }
    t.same(await dir.authenticate('locked1', pw), { ok: false, reason: 'locked_out', diagnostic: 'data 775' }, 'locked out');
    t.same(await dir.authenticate('locked1@example.test', 'Wrong-x'), { ok: false, reason: 'locked_out', diagnostic: 'data 775' }, 'locked out, wrong password too');
  });

  t.test('findUser maps the AD attributes', async (t) => {
    const dir = new LdapDirectory(options());
    t.teardown(() => dir.close());
    t.same(await dir.findUser('EXAMPLE\\user4'), {
      dn: dc.userDn('user4'),
      username: 'user4',
      userPrincipalName: 'user4@example.test',
      givenName: 'User',
      sn: 'Number4',
      mail: 'user4@example.test',
      telephoneNumber: '+1 555 0104',
      mobile: '+1 555 0204',
      userAccountControl: 512,
      memberOf: [dc.groupDn('VPN-Admins')],
    });
    const disabled = await dir.findUser('disabled1');
    t.equal(disabled?.userAccountControl, 514, 'disabled: ACCOUNTDISABLE set');
    t.same(await dir.findUser('user5'), { dn: dc.userDn('user5'), username: 'user5', userPrincipalName: 'user5@example.test', givenName: 'User', sn: 'Number5', mail: 'user5@example.test', telephoneNumber: '+1 555 0105', mobile: '+1 555 0205', userAccountControl: 512, memberOf: [] });
    t.equal(await dir.findUser('nobody'), undefined);
  });

  t.test('referrals in subtree searches are dropped, never chased', async (t) => {
    // The same subtree search, raw: Samba answers with refldap:// references to its other partitions.
    const raw = new Client({ url: dc.ldapsUrl, tlsOptions: { ca }, timeout: 5000 });
    await raw.bind(dc.adminDn, dc.adminPassword);
    const { searchReferences } = await raw.search(dc.baseDn, { scope: 'sub', filter: '(sAMAccountName=user1)', attributes: ['dn'] });
    await raw.unbind();
    t.ok(searchReferences.length > 0, `Samba returns referrals: ${searchReferences.join(' ')}`);
    t.ok(
      searchReferences.every((r) => /^(ldaps?|refldap):\/\/example\.test\//.test(r)),
      'to example.test, a name a chaser would have to look up and connect to',
    );

    const before = lines.length;
    const dir = new LdapDirectory(options());
    t.teardown(() => dir.close());
    const { result, connections } = await connectionsDuring(async () => [await dir.findUser('user1'), await dir.authenticate('user1', pw)] as const);
    t.equal(result[0]?.dn, user1, 'found');
    t.same(result[1], { ok: true, dn: user1 }, 'authenticated');
    t.ok(connections.length > 0, 'the directory opened its connections');
    t.same([...new Set(connections)], [`${dc.ip}:636`], 'every connection went to the DC itself');
    const ignored = lines
      .slice(before)
      .map((l) => JSON.parse(l) as { msg: string; referrals?: number })
      .filter((l) => l.referrals !== undefined);
    t.ok(ignored.length > 0, 'the referrals were seen');
    t.ok(
      ignored.every((l) => l.msg === 'search referrals ignored (never chased)' && (l.referrals ?? 0) > 0),
      `and dropped: ${ignored.map((l) => l.referrals).join(', ')}`,
    );
  });

  t.test('the untrusted CA is refused, against AD too', async (t) => {
    const dir = new LdapDirectory(options({ ca: readFileSync(dc.untrustedCaFile) }));
    await t.rejects(dir.authenticate('user1', pw), { name: 'UpstreamUnavailable', message: /certificate/ });
    await dir.close();
  });

  t.test('passwords never reach the log', async (t) => {
    const all = lines.join('\n');
    t.notOk(all.includes(pw), 'user password');
    t.notOk(all.includes(dc.adminPassword), 'service password');
  });
});
