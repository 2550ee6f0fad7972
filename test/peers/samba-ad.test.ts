import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { trackedChildren } from './process-reaper.js';
import { requirePeer } from './require-peer.js';
import type { RunningSambaAd } from './samba-ad.js';
import { SAMBA_AD_SEED, requireSambaAd, startSambaAd } from './samba-ad.js';
import { ldapUtil } from './slapd.js';

// The harness itself against the real Samba 4.17 AD DC: binds over StartTLS, LDAPS and plain
// LDAP, and Active Directory's bind diagnostics (data 52e/533/701/773/775) that the gateway maps
// to reject reasons. One DC for the whole file: provisioning takes seconds.

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A simple bind and a base search of the rootDSE: the exit code is the LDAP result code. */
function bind(ad: RunningSambaAd, who: string, password: string, how: { url?: string; startTls?: boolean; caFile?: string } = {}) {
  return ldapUtil('ldapsearch', {
    url: how.url ?? ad.ldapUrl,
    bindDn: who,
    password,
    caFile: how.caFile ?? ad.caFile,
    ...(how.startTls === true ? { startTls: true } : {}),
    args: ['-b', '', '-s', 'base', '1.1'],
  });
}

/** The `data XXX` of AD's "AcceptSecurityContext error, data 52e, v1db1". */
function adData(diagnostic: string | undefined): string | undefined {
  return /\bdata ([0-9a-f]{3,8}),/.exec(diagnostic ?? '')?.[1];
}

function samba(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      return ['/usr/sbin/samba', '/usr/sbin/smbd', '/usr/sbin/winbindd'].includes(readlinkSync(`/proc/${pid}/exe`));
    } catch {
      return false;
    }
  });
}

function processesInNamespace(namespace: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return readlinkSync(`/proc/${name}/ns/mnt`) === namespace;
      } catch {
        return false;
      }
    })
    .map(Number);
}

void t.test('a throwaway Samba AD DC: seeded accounts, AD bind diagnostics, TLS, clean stop', async (t) => {
  if (!requirePeer(t, 'samba', 'samba-ad-dc') || !requirePeer(t, 'samba-tool', 'samba-ad-provision') || !requirePeer(t, 'ldapsearch', 'ldap-utils')) return;
  if (!requireSambaAd(t)) return;

  const t0 = Date.now();
  const ad = await startSambaAd({ t });
  const startedMs = Date.now() - t0;
  const t1 = Date.now();
  await ad.seed();
  const seedMs = Date.now() - t1;
  t.comment(`Samba AD DC on ${ad.ip}: provision ${ad.timings.provisionMs} ms, LDAPS ready ${ad.timings.readyMs} ms after start, start total ${startedMs} ms, seed ${seedMs} ms`);
  t.match(ad.ip, /^127\./, 'a loopback address');
  t.equal(ad.ldapUrl, `ldap://${ad.ip}:389`);
  t.equal(ad.ldapsUrl, `ldaps://${ad.ip}:636`);
  t.equal(ad.baseDn, 'DC=example,DC=test');
  t.equal(ad.userDn('user1'), 'CN=user1,OU=Staff,DC=example,DC=test');
  const namespace = readlinkSync(`/proc/${ad.pid}/ns/mnt`);
  t.not(namespace, readlinkSync('/proc/self/ns/mnt'), 'samba runs in a mount namespace of its own');

  const startTls = await ldapUtil('ldapsearch', {
    url: ad.ldapUrl,
    startTls: true,
    caFile: ad.caFile,
    bindDn: ad.upn('user1'),
    password: ad.userPassword,
    args: ['-b', ad.userDn('user1'), '-s', 'base', 'sAMAccountName', 'userPrincipalName', 'givenName', 'sn', 'mail', 'telephoneNumber', 'mobile', 'memberOf'],
  });
  t.equal(startTls.exitCode, 0, `StartTLS (-ZZ) bind as user1@example.test, certificate checked against the CA: ${startTls.stderr}`);
  t.match(startTls.stdout, /^userPrincipalName: user1@example\.test$/m);
  t.match(startTls.stdout, /^mail: user1@example\.test$/m);
  t.match(startTls.stdout, /^givenName: User$/m);
  t.match(startTls.stdout, /^sn: Number1$/m);
  t.match(startTls.stdout, /^telephoneNumber: \+1 555 0101$/m);
  t.match(startTls.stdout, /^mobile: \+1 555 0201$/m);
  t.match(startTls.stdout, /^memberOf: CN=VPN-Users,CN=Users,DC=example,DC=test$/m);

  t.equal((await bind(ad, 'EXAMPLE\\user2', ad.userPassword, { url: ad.ldapsUrl })).exitCode, 0, 'LDAPS bind as EXAMPLE\\user2');
  t.equal((await bind(ad, ad.userDn('user3'), ad.userPassword)).exitCode, 0, 'plain simple bind on 389 by DN (strong auth off)');
  t.equal((await bind(ad, ad.adminUpn, ad.adminPassword, { url: ad.ldapsUrl })).exitCode, 0, 'Administrator binds');

  const wrong = await bind(ad, ad.upn('user1'), 'wrong-password', { startTls: true });
  t.equal(wrong.exitCode, 49, 'wrong password: 49');
  t.equal(adData(wrong.diagnostic), '52e', `... data 52e (${wrong.diagnostic})`);
  t.match(wrong.diagnostic, /^80090308: LdapErr: DSID-[0-9A-F]+, comment: AcceptSecurityContext error, data 52e, v1db1$/);
  const unknown = await bind(ad, 'nosuchuser@example.test', 'whatever');
  t.same([unknown.exitCode, adData(unknown.diagnostic)], [49, '52e'], 'unknown user: 49, data 52e');
  const empty = await bind(ad, ad.upn('user1'), '');
  t.same([empty.exitCode, adData(empty.diagnostic)], [49, '52e'], 'empty password: Samba refuses (49/52e; Windows would grant an unauthenticated bind)');

  for (const u of SAMBA_AD_SEED.users.filter((x) => x.expect !== 'ok')) {
    const r = await bind(ad, ad.upn(u.sam), ad.userPassword, { url: ad.ldapsUrl });
    t.same([r.exitCode, adData(r.diagnostic)], [49, u.expect], `${u.sam} with the right password: 49, data ${u.expect}`);
  }

  t.equal(ad.lockoutThreshold, 5);
  for (let i = 0; i < ad.lockoutThreshold; i++) {
    const bad = await bind(ad, ad.upn('locked1'), `bad-${i}`);
    t.equal(adData(bad.diagnostic), '52e', `bad password ${i + 1} for locked1: 52e`);
  }
  const locked = await bind(ad, ad.upn('locked1'), ad.userPassword);
  t.same([locked.exitCode, adData(locked.diagnostic)], [49, '775'], `after ${ad.lockoutThreshold} bad passwords locked1 is locked out: 49, data 775 even with the right password`);
  await ad.unlock('locked1');
  t.equal((await bind(ad, ad.upn('locked1'), ad.userPassword)).exitCode, 0, 'unlock() lifts it');

  const untrusted = await bind(ad, ad.upn('user1'), ad.userPassword, { url: ad.ldapsUrl, caFile: ad.untrustedCaFile });
  t.not(untrusted.exitCode, 0, 'LDAPS with an unrelated CA is refused');
  t.match(untrusted.stderr, /Can't contact LDAP server/);
  const untrustedStartTls = await bind(ad, ad.upn('user1'), ad.userPassword, { startTls: true, caFile: ad.untrustedCaFile });
  t.not(untrustedStartTls.exitCode, 0, 'StartTLS with an unrelated CA is refused');

  const admin = { url: ad.ldapsUrl, caFile: ad.caFile, bindDn: ad.adminUpn, password: ad.adminPassword };
  const groups = await ldapUtil('ldapsearch', { ...admin, args: ['-b', ad.baseDn, '(objectClass=group)', 'member'], timeoutMs: 30000 });
  const vpnUsers = /dn: CN=VPN-Users,CN=Users,DC=example,DC=test\n((?:member: [^\n]+\n)+)/.exec(groups.stdout)?.[1] ?? '';
  t.same(
    vpnUsers.trim().split('\n').map((l) => l.replace(/^member: /, '')).sort(),
    [...['user1', 'user2', 'user3', 'disabled1', 'expired1', 'mustchange1', 'locked1'].map((u) => ad.userDn(u)), ad.groupDn('VPN-Admins')].sort(),
    'VPN-Users: user1-3, the special accounts and the nested VPN-Admins',
  );
  t.match(groups.stdout, /dn: CN=VPN-Admins,CN=Users,DC=example,DC=test\nmember: CN=user4,OU=Staff,DC=example,DC=test\n/, 'VPN-Admins: user4');
  const user5 = await ldapUtil('ldapsearch', { ...admin, args: ['-b', ad.userDn('user5'), '-s', 'base', 'memberOf', 'mail'] });
  t.notMatch(user5.stdout, /memberOf/, 'user5 is in no group');

  await ad.ldapadd(`dn: OU=Extra,${ad.baseDn}\nobjectClass: organizationalUnit\nou: Extra\n`);
  await ad.ldapmodify(`dn: ${ad.userDn('user5')}\nchangetype: modify\nreplace: mobile\nmobile: +1 555 9999\n`);
  const changed = await ldapUtil('ldapsearch', { ...admin, args: ['-b', ad.userDn('user5'), '-s', 'base', 'mobile'] });
  t.match(changed.stdout, /^mobile: \+1 555 9999$/m, 'ldapmodify() as Administrator');

  // Stop: every process in the DC's namespace, the alias and the dir go.
  const before = samba(processesInNamespace(namespace));
  t.ok(before.length > 5, `${before.length} samba processes ran`);
  const t2 = Date.now();
  await ad.stop();
  t.comment(`stop and cleanup ${Date.now() - t2} ms`);
  t.same(before.filter(isRunning), [], 'no samba, smbd or winbindd process is left');
  t.same(samba(processesInNamespace(namespace)), [], 'nothing runs in its namespace');
  t.notOk(isRunning(ad.pid));
  t.notOk(existsSync(ad.dir), 'the dir is removed');
  const lo = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  if (ad.ip !== '127.0.0.1') t.notMatch(lo, ` inet ${ad.ip}/32 `, 'the loopback alias is removed');
  t.notOk(existsSync(join(tmpdir(), `mfa-samba-ad-${ad.ip}.lock`)), 'the address is free again');
  await ad.stop(); // idempotent
  t.same(trackedChildren(), [], 'no tracked child process is still running');
  t.match(ad.logs(), /samba version 4\./i);
});
