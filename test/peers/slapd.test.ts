import { existsSync } from 'node:fs';
import t from 'tap';
import { trackedChildren } from './process-reaper.js';
import type { PeerTest } from './require-peer.js';
import { requirePeer } from './require-peer.js';
import type { RunningSlapd } from './slapd.js';
import { DEFAULT_SLAPD_USERS, escapeDnValue, ldapUtil, ldifLine, startSlapd } from './slapd.js';

// The harness itself against the real slapd 2.5: if these fail, no end-to-end test that uses
// OpenLDAP as the first factor can be trusted.

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function passwordOf(uid: string): string {
  const user = DEFAULT_SLAPD_USERS.find((u) => u.uid === uid);
  if (user === undefined) throw new Error(`no default user ${uid}`);
  return user.password;
}

/** A simple bind and a base search of the rootDSE: the exit code is the LDAP result code. */
function bind(s: RunningSlapd, how: { url?: string; startTls?: boolean; caFile?: string }, bindDn: string, password: string) {
  return ldapUtil('ldapsearch', {
    url: how.url ?? s.url,
    bindDn,
    password,
    caFile: how.caFile ?? s.caFile,
    ...(how.startTls === true ? { startTls: true } : {}),
    args: ['-b', '', '-s', 'base', '1.1'],
  });
}

function hasPeers(t: PeerTest): boolean {
  return requirePeer(t, 'slapd', 'slapd') && requirePeer(t, 'ldapsearch', 'ldap-utils');
}

void t.test('slapd from a generated cn=config: seeded users bind over StartTLS, LDAPS and plain LDAP', async (t) => {
  if (!hasPeers(t)) return;
  const started = Date.now();
  const s = await startSlapd({ t });
  t.comment(`slapd started and seeded in ${Date.now() - started} ms`);
  t.ok(isRunning(s.pid), 'slapd runs');
  t.match(s.url, /^ldap:\/\/127\.0\.0\.1:\d+$/);
  t.match(s.ldapsUrl, /^ldaps:\/\/127\.0\.0\.1:\d+$/);
  t.not(s.port, s.ldapsPort);
  t.equal(s.userDn('user1'), 'uid=user1,ou=people,dc=example,dc=test');
  t.equal(s.userDn('other1'), 'uid=other1,ou=other,dc=example,dc=test');
  const user1 = s.userDn('user1');

  const startTls = await ldapUtil('ldapsearch', {
    url: s.url,
    startTls: true,
    caFile: s.caFile,
    bindDn: user1,
    password: passwordOf('user1'),
    args: ['-b', user1, '-s', 'base', 'uid', 'cn', 'givenName', 'sn', 'mail', 'telephoneNumber', 'mobile', 'memberOf'],
  });
  t.equal(startTls.exitCode, 0, `StartTLS (-ZZ) bind as user1 with the CA: ${startTls.stderr}`);
  t.match(startTls.stdout, /^mail: user1@example\.test$/m);
  t.match(startTls.stdout, /^mobile: \+1 555 0201$/m);
  t.match(startTls.stdout, /^telephoneNumber: \+1 555 0101$/m);
  t.match(startTls.stdout, /^cn: User Number1$/m);
  t.match(startTls.stdout, /^memberOf: cn=VPN-Users,ou=groups,dc=example,dc=test$/m, 'memberOf maintained by the overlay');

  t.equal((await bind(s, { url: s.ldapsUrl }, user1, passwordOf('user1'))).exitCode, 0, 'LDAPS bind with the CA');
  t.equal((await bind(s, {}, s.userDn('user2'), passwordOf('user2'))).exitCode, 0, 'plain simple bind on ldap://');
  t.equal((await bind(s, {}, s.adminDn, s.adminPassword)).exitCode, 0, 'the rootdn binds');
  t.equal((await bind(s, {}, s.userDn('other1'), passwordOf('other1'))).exitCode, 0, 'a user outside ou=people binds');

  const wrong = await bind(s, { startTls: true }, user1, 'wrong-password');
  t.equal(wrong.exitCode, 49, 'wrong password: invalidCredentials (49)');
  t.match(wrong.stderr, /Invalid credentials \(49\)/);
  t.equal((await bind(s, {}, 'uid=nobody,ou=people,dc=example,dc=test', 'x')).exitCode, 49, 'unknown DN: 49');
  t.equal((await bind(s, {}, user1, passwordOf('user2'))).exitCode, 49, "another user's password: 49");

  const unauthenticated = await ldapUtil('ldapwhoami', { url: s.url, bindDn: user1, password: '' });
  t.equal(unauthenticated.exitCode, 0, 'a DN with an empty password is an unauthenticated bind that succeeds');
  t.match(unauthenticated.stdout, /anonymous/, '... as anonymous');
  const anonymous = await ldapUtil('ldapsearch', { url: s.url, args: ['-b', s.baseDn, '(uid=user3)', 'mail', 'userPassword'] });
  t.equal(anonymous.exitCode, 0, 'anonymous search allowed');
  t.match(anonymous.stdout, /^mail: user3@example\.test$/m);
  t.notMatch(anonymous.stdout, /userPassword/i, 'userPassword is not readable');

  const untrustedLdaps = await bind(s, { url: s.ldapsUrl, caFile: s.untrustedCaFile }, user1, passwordOf('user1'));
  t.not(untrustedLdaps.exitCode, 0, 'LDAPS with an unrelated CA is refused');
  t.match(untrustedLdaps.stderr, /Can't contact LDAP server/);
  const untrustedStartTls = await bind(s, { startTls: true, caFile: s.untrustedCaFile }, user1, passwordOf('user1'));
  t.not(untrustedStartTls.exitCode, 0, 'StartTLS with an unrelated CA is refused');
  t.match(untrustedStartTls.stderr, /ldap_start_tls/);

  const groups = await ldapUtil('ldapsearch', { url: s.url, args: ['-b', `ou=groups,${s.baseDn}`, '(objectClass=groupOfNames)', 'member', 'memberOf'] });
  t.equal(groups.exitCode, 0);
  t.match(groups.stdout, /dn: cn=VPN-Users,ou=groups,dc=example,dc=test\nmember: uid=user1,ou=people,dc=example,dc=test\nmember: uid=user2,[^\n]*\nmember: uid=user3,[^\n]*\nmember: cn=VPN-Admins,ou=groups,dc=example,dc=test\n/);
  t.match(groups.stdout, /dn: cn=VPN-Admins,ou=groups,dc=example,dc=test\nmember: uid=user4,ou=people,dc=example,dc=test\nmemberOf: cn=VPN-Users,/, 'nested group');

  await s.ldapadd(
    [`dn: uid=newbie,ou=people,${s.baseDn}`, 'objectClass: inetOrgPerson', 'uid: newbie', 'cn: New Bie', 'sn: Bie', ldifLine('userPassword', 'first-Pass 1'), ''].join('\n'),
  );
  t.equal((await bind(s, {}, `uid=newbie,ou=people,${s.baseDn}`, 'first-Pass 1')).exitCode, 0, 'ldapadd() adds a user who can bind');
  await s.ldapmodify(`dn: uid=newbie,ou=people,${s.baseDn}\nchangetype: modify\nreplace: userPassword\nuserPassword: second-Pass-2\n`);
  t.equal((await bind(s, {}, `uid=newbie,ou=people,${s.baseDn}`, 'second-Pass-2')).exitCode, 0, 'ldapmodify() changes it');
  await s.ldapmodify('dn: cn=config\nchangetype: modify\nreplace: olcSizeLimit\nolcSizeLimit: 2\n');
  const limited = await ldapUtil('ldapsearch', { url: s.url, args: ['-b', s.baseDn, '(uid=*)', '1.1'] });
  t.equal(limited.exitCode, 4, 'ldapmodify() reaches cn=config too (size limit 2: sizeLimitExceeded)');
  await t.rejects(s.ldapadd(`dn: uid=user1,ou=people,${s.baseDn}\nobjectClass: inetOrgPerson\nuid: user1\ncn: x\nsn: x\n`), /Already exists \(68\)/, 'ldapadd() throws with the reason');

  const pid = s.pid;
  await s.stop();
  t.notOk(isRunning(pid), 'stop() leaves no process');
  t.notOk(existsSync(s.dir), 'stop() removes the temp dir');
  await s.stop(); // idempotent
  t.match(s.logs(), /slapd starting/);
  t.same(trackedChildren(), [], 'no tracked child process is still running');
});

void t.test('custom users and groups; unauthenticated binds refused on request', async (t) => {
  if (!hasPeers(t)) return;
  const password = `pä ss:wörd ${'\u00e9'} `; // non-ASCII, a colon and a trailing space: base64 in LDIF
  const s = await startSlapd({
    t,
    allowUnauthenticatedBind: false,
    users: [
      { uid: 'ann', password, mobile: '+49 170 0000001' },
      { uid: 'bo,b', password: 'b-pass', ou: 'contractors', givenName: 'Bob', sn: 'Comma' },
    ],
    groups: [
      { cn: 'inner', members: ['bo,b'] },
      { cn: 'outer', members: ['ann', 'inner', 'cn=external,dc=example,dc=test'] },
    ],
  });
  t.equal((await bind(s, {}, s.userDn('ann'), password)).exitCode, 0, 'a password that needs base64 in LDIF');
  const bobDn = s.userDn('bo,b');
  t.equal(bobDn, `uid=${escapeDnValue('bo,b')},ou=contractors,dc=example,dc=test`);
  t.equal(bobDn, 'uid=bo\\,b,ou=contractors,dc=example,dc=test', 'DN value escaped (RFC 4514)');
  t.equal((await bind(s, { startTls: true }, bobDn, 'b-pass')).exitCode, 0, 'a user in an ou made for it');

  const empty = await bind(s, {}, s.userDn('ann'), '');
  t.equal(empty.exitCode, 53, "empty password refused by slapd's own default (unwillingToPerform)");
  t.equal(empty.diagnostic, 'unauthenticated bind (DN with no password) disallowed');

  const outer = await ldapUtil('ldapsearch', { url: s.url, args: ['-b', s.groupDn('outer'), '-s', 'base', 'member'] });
  t.match(outer.stdout, /member: uid=ann,ou=people,dc=example,dc=test\nmember: cn=inner,ou=groups,dc=example,dc=test\nmember: cn=external,dc=example,dc=test/);
  const bob = await ldapUtil('ldapsearch', { url: s.url, args: ['-b', bobDn, '-s', 'base', 'memberOf', 'mail', 'cn'] });
  t.match(bob.stdout, /^memberOf: cn=inner,ou=groups,dc=example,dc=test$/m);
  t.match(bob.stdout, /^cn: Bob Comma$/m);
  t.match(bob.stdout, /^mail: bo,b@example\.test$/m);

  await t.rejects(startSlapd({ users: [{ uid: 'x', password: 'x' }], groups: [{ cn: 'g', members: ['nobody'] }] }), /member "nobody" of group g/);
  await s.stop();
});
