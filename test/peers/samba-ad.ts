import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DirectoryOptions } from '../../src/directory/ldap-directory.js';
import type { Logger } from '../../src/log.js';
import type { PeerProcess } from './peer-process.js';
import { spawnPeer } from './peer-process.js';
import { assertLoopback } from './ports.js';
import { onProcessEnd } from './process-reaper.js';
import { findBinary, requireAvailable, type PeerTest } from './require-peer.js';
import { ldapUtil, ldifLine } from './slapd.js';
import { tempDir } from './temp.js';
import { makeTlsFiles } from './tls-ca.js';

/**
 * A throwaway Samba Active Directory DC (Debian's samba-ad-dc, Samba 4.17) for one test file:
 * provisioned into a temp dir, realm EXAMPLE.TEST, NetBIOS domain EXAMPLE, base
 * DC=example,DC=test, with its own CA and certificate (SANs IP:<ip>, DNS:dc1.example.test,
 * DNS:example.test) so clients verify it while connecting by IP.
 *
 * Samba hard-codes the LDAP ports (389, 636, 3268, 3269): each DC gets a loopback address of its
 * own (127.0.10.1 by default, added to `lo` as a /32 alias and removed again by stop()). Samba
 * and samba-tool run in a private mount namespace with their own /etc/resolv.conf (a nameserver
 * where nothing answers) and /etc/hosts, so none of their lookups leaves the machine and the
 * host's files stay untouched. DNS, dynamic DNS updates and NetBIOS are not started.
 *
 * Needs root: provision chowns files and sets NT ACLs, Samba binds ports below 1024, and the
 * alias and the namespace need CAP_NET_ADMIN / CAP_SYS_ADMIN. sambaAdUnavailable() says why not.
 *
 * Active Directory's answers to a simple bind that fails are LDAP result 49 with
 * "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data XXX, v1db1" in
 * the diagnosticMessage: 52e bad password or unknown user, 533 disabled, 701 expired,
 * 773 must change password, 775 locked out. Samba differs from Windows in that a DN with an
 * empty password is refused (49/52e) where Windows grants an unauthenticated bind.
 */

export type StrongAuth = 'no' | 'allow_sasl_over_tls' | 'yes';

export interface SambaAdOptions {
  /**
   * The DC's loopback address (127.0.0.0/8, not 127.0.0.53). Default: 127.0.10.1, or the next
   * 127.0.10.x not held by another DC of this machine (test files run in parallel).
   */
  ip?: string;
  /** `ldap server require strong auth`. Default 'no' (plain simple binds on 389 allowed); Samba's own default is 'yes'. */
  strongAuth?: StrongAuth;
  /**
   * Account lockout for the whole domain, applied by seed(). Default: 5 bad passwords lock an
   * account for 1 minute (the observation window is the same minute). false: no lockout.
   */
  lockout?: false | { threshold?: number; minutes?: number };
  /** Administrator's password (default: random, meeting the complexity rules). */
  adminPassword?: string;
  /** The password of every seeded user (default SAMBA_AD_USER_PASSWORD). */
  userPassword?: string;
  /** Directory for the provisioned DC, TLS files and logs (default: a new temp dir, which stop() removes; a given one is kept). */
  dir?: string;
  /** Register stop() as a teardown of this tap test. */
  t?: { teardown(fn: () => unknown): unknown };
  /** Milliseconds to wait for LDAPS after starting samba (default 60000). */
  startTimeoutMs?: number;
}

export interface RunningSambaAd {
  ip: string;
  /** ldap://IP:389 (StartTLS available) */
  ldapUrl: string;
  /** ldaps://IP:636 */
  ldapsUrl: string;
  /** ldap://IP:3268, the global catalog */
  gcUrl: string;
  baseDn: 'DC=example,DC=test';
  realm: 'EXAMPLE.TEST';
  netbios: 'EXAMPLE';
  /** CN=Administrator,CN=Users,DC=example,DC=test */
  adminDn: string;
  /** Administrator@example.test */
  adminUpn: string;
  adminPassword: string;
  caFile: string;
  untrustedCaFile: string;
  /** The password of the seeded users. */
  userPassword: string;
  strongAuth: StrongAuth;
  /** Bad passwords before lockout (0 = lockout off), as seed() sets it. */
  lockoutThreshold: number;
  /** A krb5.conf naming this KDC (no DNS lookups), for KRB5_CONFIG (kinit, kpasswd). */
  krb5Config: string;
  dir: string;
  /** PID of the samba root process. */
  pid: number;
  /** Milliseconds spent provisioning (with the TLS files made meanwhile) and from starting samba until LDAPS answered. */
  timings: { provisionMs: number; readyMs: number };
  /** CN=<sam>,OU=Staff,DC=example,DC=test: the DN of a seeded user. */
  userDn(sam: string): string;
  /** <sam>@example.test */
  upn(sam: string): string;
  /** CN=<cn>,CN=Users,DC=example,DC=test: the DN of a seeded group. */
  groupDn(cn: string): string;
  /** Creates OU=Staff, the users and groups of SAMBA_AD_SEED and the domain's password policy: one ldapmodify over LDAPS. */
  seed(): Promise<void>;
  /** Clears a lockout (lockoutTime: 0). */
  unlock(sam: string): Promise<void>;
  /** ldapadd as Administrator over LDAPS; throws with ldapadd's stderr on failure. */
  ldapadd(ldif: string): Promise<void>;
  /** ldapmodify as Administrator over LDAPS (unicodePwd changes need TLS on Windows: LDAPS works on both). */
  ldapmodify(ldif: string): Promise<void>;
  /** samba's output (-d1), then provision's log. */
  logs(): string;
  /** TERM to samba (KILL after 15 s), every process it started gone, alias removed, dir removed. Idempotent. */
  stop(): Promise<void>;
  readonly process: PeerProcess;
}

export const SAMBA_AD_BASE_DN = 'DC=example,DC=test';
export const SAMBA_AD_REALM = 'EXAMPLE.TEST';
export const SAMBA_AD_NETBIOS = 'EXAMPLE';
export const SAMBA_AD_DOMAIN = 'example.test';
export const SAMBA_AD_USER_PASSWORD = 'Seeded-Pass-1';
export const DEFAULT_SAMBA_AD_IP = '127.0.10.1';

export interface SambaAdSeedUser {
  sam: string;
  givenName: string;
  sn: string;
  telephoneNumber: string;
  mobile: string;
  /** What a simple bind with the right password gets: 'ok', or the AD data code. */
  expect: 'ok' | '533' | '701' | '773';
}

/**
 * What seed() creates, all in OU=Staff with the password `userPassword`, mail and
 * userPrincipalName <sam>@example.test, displayName "<givenName> <sn>". Groups (global security,
 * in CN=Users): VPN-Users = user1, user2, user3, the special accounts and the nested group
 * VPN-Admins (= user4); user5 is in no group. locked1 is an ordinary account for lockout tests.
 */
export const SAMBA_AD_SEED: { readonly users: readonly SambaAdSeedUser[]; readonly groups: Readonly<Record<string, readonly string[]>> } = Object.freeze({
  users: Object.freeze([
    ...[1, 2, 3, 4, 5].map((n): SambaAdSeedUser => ({ sam: `user${n}`, givenName: 'User', sn: `Number${n}`, telephoneNumber: `+1 555 010${n}`, mobile: `+1 555 020${n}`, expect: 'ok' })),
    { sam: 'disabled1', givenName: 'Dis', sn: 'Abled', telephoneNumber: '+1 555 0111', mobile: '+1 555 0211', expect: '533' },
    { sam: 'expired1', givenName: 'Ex', sn: 'Pired', telephoneNumber: '+1 555 0112', mobile: '+1 555 0212', expect: '701' },
    { sam: 'mustchange1', givenName: 'Must', sn: 'Change', telephoneNumber: '+1 555 0113', mobile: '+1 555 0213', expect: '773' },
    { sam: 'locked1', givenName: 'Lock', sn: 'Out', telephoneNumber: '+1 555 0114', mobile: '+1 555 0214', expect: 'ok' },
  ] satisfies SambaAdSeedUser[]),
  groups: Object.freeze({
    'VPN-Admins': Object.freeze(['user4']),
    'VPN-Users': Object.freeze(['user1', 'user2', 'user3', 'disabled1', 'expired1', 'mustchange1', 'locked1', 'VPN-Admins']),
  }),
});

const HOST_NAME = 'dc1';
const SAMBA_EXES = new Set(['/usr/sbin/samba', '/usr/sbin/smbd', '/usr/sbin/nmbd', '/usr/sbin/winbindd']);
// FILETIMEs (100 ns units): 2009-10-11, for an account that expired long ago; "never" for maxPwdAge.
const EXPIRED_FILETIME = '129000000000000000';
const NEVER = '-9223372036854775808';
const UF_NORMAL_ACCOUNT = 0x200;
const UF_ACCOUNTDISABLE = 0x2;
const GLOBAL_SECURITY_GROUP = '-2147483646';
// Samba and samba-tool run with these in place of the host's files (a private mount namespace).
const NAMESPACE_SCRIPT = 'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"';

const run = promisify(execFile);

/** true when a Samba AD DC can run here; otherwise fails the test (MFA_REQUIRE_PEERS=1) or skips it. */
export function requireSambaAd(t: PeerTest): boolean {
  return requireAvailable(t, 'no Samba AD DC here', sambaAdUnavailable());
}

/** Why no Samba AD DC can run here, or undefined when it can (root, and the binaries). */
export function sambaAdUnavailable(): string | undefined {
  for (const [binary, pkg] of [['samba', 'samba-ad-dc'], ['samba-tool', 'samba-ad-provision'], ['ldapsearch', 'ldap-utils'], ['unshare', 'util-linux'], ['ip', 'iproute2'], ['openssl', 'openssl']] as const) {
    if (findBinary(binary) === undefined) return `'${binary}' not found: install the Debian package '${pkg}' (as root: scripts/install-test-peers.sh)`;
  }
  if (!existsSync('/usr/share/samba/setup/provision.ldif')) return "Samba's provisioning data is missing: install the Debian package 'samba-ad-provision'";
  if (process.getuid?.() !== 0) return 'a Samba AD DC needs root (provision, ports below 1024, a loopback alias, a mount namespace)';
  return undefined;
}

export async function startSambaAd(opts: SambaAdOptions = {}): Promise<RunningSambaAd> {
  const unavailable = sambaAdUnavailable();
  if (unavailable !== undefined) throw new Error(unavailable);
  const samba = realpathSync(findBinary('samba') ?? 'samba');
  const sambaTool = findBinary('samba-tool') ?? 'samba-tool';
  const unshare = findBinary('unshare') ?? 'unshare';
  const ipTool = findBinary('ip') ?? 'ip';
  const strongAuth = opts.strongAuth ?? 'no';
  const lockoutThreshold = opts.lockout === false ? 0 : (opts.lockout?.threshold ?? 5);
  const lockoutMinutes = opts.lockout === false ? 1 : (opts.lockout?.minutes ?? 1);
  const adminPassword = opts.adminPassword ?? `Adm1n-${randomBytes(6).toString('hex')}`;
  const userPassword = opts.userPassword ?? SAMBA_AD_USER_PASSWORD;

  const lease = await leaseIp(opts.ip);
  const ip = lease.ip;
  const owned = opts.dir === undefined ? tempDir('samba-ad') : undefined;
  const dir = opts.dir ?? owned?.path ?? '';
  let addedIp = false;
  let peer: PeerProcess | undefined;
  let namespace: string | undefined;
  let stopped = false;
  const conf = join(dir, 'etc', 'smb.conf');
  const provisionLog = join(dir, 'log', 'provision.log');
  let provision: PeerProcess | undefined;
  const record = (): void => lease.record({ namespace, addedIp, dir: owned === undefined ? '' : dir });

  /** Every samba process of this DC: in its mount namespace, by executable. */
  const ourProcesses = (): number[] => (namespace === undefined ? [] : processesIn(namespace));
  const removeAlias = (): void => {
    if (!addedIp) return;
    addedIp = false;
    try {
      execFileSync(ipTool, ['addr', 'del', `${ip}/32`, 'dev', 'lo'], { stdio: 'ignore' });
    } catch {
      // gone already
    }
  };
  // Samba renames its processes ("samba: root process"), so the reaper's watchdog, which checks
  // a marker in the command line, cannot find them after a SIGKILL of the test process; and a
  // SIGKILLed samba root leaves its children running. Both cleanups go by the mount namespace.
  // In-process endings (exit, SIGINT/SIGTERM): the reaper SIGKILLs the root process, then this runs.
  onProcessEnd(() => {
    if (stopped) return;
    const deadline = Date.now() + 3000;
    for (let left = ourProcesses(); left.length > 0 && Date.now() < deadline; left = ourProcesses()) {
      for (const pid of left) signal(pid, 'SIGKILL');
      sleepSync(50);
    }
    removeAlias();
    lease.release();
    owned?.cleanup(); // again: samba recreates files in its dir until it is gone
  });
  // A SIGKILLed test process: a detached shell does the same once our PID is gone.
  startWatchdog(lease.lockFile, ipTool);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await provision?.stop('SIGTERM', 5000);
    if (peer !== undefined) {
      const before = ourProcesses();
      await peer.stop('SIGTERM', 15000);
      // smbd and winbindd run in sessions of their own; TERM to samba normally takes them along.
      const deadline = Date.now() + 5000;
      let left = [...new Set([...before, ...ourProcesses()])].filter(isAlive);
      while (left.length > 0 && Date.now() < deadline) {
        await sleep(100);
        left = [...new Set([...left, ...ourProcesses()])].filter(isAlive);
      }
      for (const pid of left) signal(pid, 'SIGKILL');
      while (left.some(isAlive)) await sleep(50);
    }
    removeAlias();
    lease.release();
    owned?.cleanup();
  };

  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const sub of ['run', 'log', 'cache', 'private']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
    if (await listening(ip, 389)) throw new Error(`something already listens on ${ip}:389`);
    // Samba binds only to addresses configured on an interface ("interfaces = IP" alone gives
    // 'no network interfaces found'), hence the alias. It does not survive a reboot.
    const { stdout: loAddrs } = await run(ipTool, ['-4', '-o', 'addr', 'show', 'dev', 'lo']);
    if (!loAddrs.includes(` inet ${ip}/`)) {
      addedIp = true;
      record();
      await run(ipTool, ['addr', 'add', `${ip}/32`, 'dev', 'lo']);
    }
    const resolvConf = join(dir, 'resolv.conf');
    const hosts = join(dir, 'hosts');
    writeFileSync(resolvConf, `nameserver ${ip}\noptions timeout:1 attempts:1\n`);
    writeFileSync(hosts, `${readFileSync('/etc/hosts', 'utf8').trimEnd()}\n${ip} ${HOST_NAME}.${SAMBA_AD_DOMAIN} ${HOST_NAME} ${SAMBA_AD_DOMAIN}\n`);
    // provision copies the non-default globals of its -s file: an empty one keeps /etc/samba/smb.conf out.
    writeFileSync(join(dir, 'base.conf'), '');
    const inNamespace = (command: string, args: readonly string[]): [string, string[]] => [
      unshare,
      ['--mount', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', resolvConf, hosts, command, ...args],
    ];

    const provisionStart = Date.now();
    const [provisionCommand, provisionArgs] = inNamespace(sambaTool, [
      'domain', 'provision', '-s', join(dir, 'base.conf'), `--targetdir=${dir}`,
      `--realm=${SAMBA_AD_REALM}`, `--domain=${SAMBA_AD_NETBIOS}`, '--server-role=dc', '--dns-backend=NONE', '--use-rfc2307',
      `--host-name=${HOST_NAME}`, `--host-ip=${ip}`, `--adminpass=${adminPassword}`,
      `--option=interfaces=${ip}`, '--option=bind interfaces only=yes',
      `--option=pid directory=${dir}/run`, `--option=ncalrpc dir=${dir}/run/ncalrpc`,
      `--option=winbindd socket directory=${dir}/run/winbindd`,
      `--option=ntp signd socket directory=${dir}/run/ntp_signd`,
      `--option=log file=${dir}/log/log.%m`,
    ]);
    // A peer too, so the reaper ends it with the test process (its argv stays as it is).
    provision = spawnPeer({ name: 'samba-tool provision', command: provisionCommand, args: provisionArgs, logFile: provisionLog, marker: `--targetdir=${dir}` });
    const provisioning = provision;
    const [, tls] = await Promise.all([
      (async () => {
        const timer = setTimeout(() => void provisioning.stop('SIGKILL', 0), 180_000);
        const exit = await provisioning.exited;
        clearTimeout(timer);
        if (exit.code !== 0) throw provisioning.failure(`samba-tool domain provision failed (exit ${exit.code}, signal ${exit.signal})`);
      })(),
      makeTlsFiles(join(dir, 'tls'), { ip, dnsName: `${HOST_NAME}.${SAMBA_AD_DOMAIN}`, extraDnsNames: [SAMBA_AD_DOMAIN], caName: `Test CA ${SAMBA_AD_REALM}` }),
    ]);
    const provisionMs = Date.now() - provisionStart;

    // Globals provision does not take from --option. No DNS server and no dynamic DNS updates
    // (they would query the host's resolver), no NetBIOS/WINS; SMB on 445 only. Our certificate
    // instead of the one Samba would make at first start (4096-bit, seconds, no IP SAN).
    const extra = [
      'server services = s3fs, rpc, ldap, cldap, kdc, drepl, winbindd, ntp_signd, kcc',
      'smb ports = 445',
      `ldap server require strong auth = ${strongAuth}`,
      'tls enabled = yes',
      `tls keyfile = ${tls.keyFile}`,
      `tls certfile = ${tls.certFile}`,
      `tls cafile = ${tls.caFile}`,
    ];
    const provisioned = readFileSync(conf, 'utf8')
      .split('\n')
      .filter((line) => !/^\s*(server services|smb ports|ldap server require strong auth|tls \w+)\s*=/i.test(line));
    const globalAt = provisioned.findIndex((line) => /^\s*\[global\]\s*$/i.test(line));
    if (globalAt < 0) throw new Error(`no [global] section in ${conf}`);
    provisioned.splice(globalAt + 1, 0, ...extra.map((l) => `\t${l}`));
    writeFileSync(conf, provisioned.join('\n'));

    const krb5Config = join(dir, 'krb5.conf');
    writeFileSync(
      krb5Config,
      `[libdefaults]\n\tdefault_realm = ${SAMBA_AD_REALM}\n\tdns_lookup_realm = false\n\tdns_lookup_kdc = false\n\trdns = false\n` +
        `[realms]\n\t${SAMBA_AD_REALM} = {\n\t\tkdc = ${ip}\n\t\tkpasswd_server = ${ip}\n\t}\n` +
        `[domain_realm]\n\t.${SAMBA_AD_DOMAIN} = ${SAMBA_AD_REALM}\n\t${SAMBA_AD_DOMAIN} = ${SAMBA_AD_REALM}\n`,
    );

    // -F: foreground (unshare and sh exec, so the child's PID is samba's); --debug-stdout: log to our pipe.
    const startAt = Date.now();
    const [command, args] = inNamespace(samba, ['-F', '--debug-stdout', '-d1', '-s', conf]);
    const started = spawnPeer({ name: 'samba-ad', command, args, logFile: join(dir, 'log', 'samba.out'), marker: conf });
    peer = started;
    const ldapsUrl = `ldaps://${ip}:636`;
    const timeoutMs = opts.startTimeoutMs ?? 60000;
    for (;;) {
      if (started.hasExited()) throw started.failure(`samba exited during start (provision log: ${provisionLog})`);
      if (namespace === undefined) {
        namespace = namespaceOf(started.pid, samba);
        if (namespace !== undefined) record();
      }
      const probe = await ldapUtil('ldapsearch', { url: ldapsUrl, caFile: tls.caFile, args: ['-b', '', '-s', 'base', '1.1'], timeoutMs: 5000 });
      if (probe.exitCode === 0) break;
      if (Date.now() - startAt > timeoutMs) throw started.failure(`samba: LDAPS on ${ldapsUrl} did not answer within ${timeoutMs} ms (${probe.stderr.trim()})`);
      await sleep(100);
    }
    const readyMs = Date.now() - startAt;
    if (namespace === undefined) {
      namespace = namespaceOf(started.pid, samba);
      record();
    }

    const adminUpn = `Administrator@${SAMBA_AD_DOMAIN}`;
    const admin = { bindDn: adminUpn, password: adminPassword, caFile: tls.caFile };
    const change = async (tool: 'ldapadd' | 'ldapmodify', ldif: string): Promise<void> => {
      const result = await ldapUtil(tool, { url: ldapsUrl, ...admin, input: ldif, timeoutMs: 120_000 });
      if (result.exitCode !== 0) throw new Error(`${tool} as ${adminUpn} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
    };
    const userDn = (sam: string): string => `CN=${sam},OU=Staff,${SAMBA_AD_BASE_DN}`;
    const groupDn = (cn: string): string => `CN=${cn},CN=Users,${SAMBA_AD_BASE_DN}`;
    const server: RunningSambaAd = {
      ip,
      ldapUrl: `ldap://${ip}:389`,
      ldapsUrl,
      gcUrl: `ldap://${ip}:3268`,
      baseDn: SAMBA_AD_BASE_DN,
      realm: SAMBA_AD_REALM,
      netbios: SAMBA_AD_NETBIOS,
      adminDn: `CN=Administrator,CN=Users,${SAMBA_AD_BASE_DN}`,
      adminUpn,
      adminPassword,
      caFile: tls.caFile,
      untrustedCaFile: tls.untrustedCaFile,
      userPassword,
      strongAuth,
      lockoutThreshold,
      krb5Config,
      dir,
      pid: started.pid,
      timings: { provisionMs, readyMs },
      userDn,
      upn: (sam) => `${sam}@${SAMBA_AD_DOMAIN}`,
      groupDn,
      seed: () => change('ldapmodify', seedLdif({ userPassword, lockoutThreshold, lockoutMinutes, userDn, groupDn })),
      unlock: (sam) => change('ldapmodify', `dn: ${userDn(sam)}\nchangetype: modify\nreplace: lockoutTime\nlockoutTime: 0\n`),
      ldapadd: (ldif) => change('ldapadd', ldif),
      ldapmodify: (ldif) => change('ldapmodify', ldif),
      logs: () => `${started.logs()}${provisioning.logs()}`,
      stop,
      process: started,
    };
    opts.t?.teardown(() => server.stop());
    return server;
  } catch (err) {
    await stop();
    throw err;
  }
}

interface SeedParams {
  userPassword: string;
  lockoutThreshold: number;
  lockoutMinutes: number;
  userDn(sam: string): string;
  groupDn(cn: string): string;
}

function seedLdif(p: SeedParams): string {
  const minutes = `${-Math.round(p.lockoutMinutes * 60 * 1e7)}`;
  const blocks: string[] = [
    // min age 0 and no history: tests may change passwords repeatedly; max age: never.
    modify(SAMBA_AD_BASE_DN, [
      ['minPwdAge', '0'],
      ['maxPwdAge', NEVER],
      ['pwdHistoryLength', '0'],
      ['lockoutThreshold', String(p.lockoutThreshold)],
      ['lockoutDuration', minutes],
      ['lockOutObservationWindow', minutes],
    ]),
    add(`OU=Staff,${SAMBA_AD_BASE_DN}`, [['objectClass', 'organizationalUnit'], ['ou', 'Staff']]),
  ];
  // unicodePwd is the password in double quotes, UTF-16LE; AD takes it over an encrypted connection only.
  const unicodePwd = Buffer.from(`"${p.userPassword}"`, 'utf16le').toString('base64');
  for (const u of SAMBA_AD_SEED.users) {
    const attrs: Array<[string, string]> = [
      ['objectClass', 'user'],
      ['sAMAccountName', u.sam],
      ['userPrincipalName', `${u.sam}@${SAMBA_AD_DOMAIN}`],
      ['displayName', `${u.givenName} ${u.sn}`],
      ['givenName', u.givenName],
      ['sn', u.sn],
      ['mail', `${u.sam}@${SAMBA_AD_DOMAIN}`],
      ['telephoneNumber', u.telephoneNumber],
      ['mobile', u.mobile],
      ['userAccountControl', String(UF_NORMAL_ACCOUNT | (u.expect === '533' ? UF_ACCOUNTDISABLE : 0))],
    ];
    if (u.expect === '701') attrs.push(['accountExpires', EXPIRED_FILETIME]);
    if (u.expect === '773') attrs.push(['pwdLastSet', '0']);
    blocks.push(add(p.userDn(u.sam), attrs, `unicodePwd:: ${unicodePwd}`));
  }
  const groups = SAMBA_AD_SEED.groups;
  for (const cn of ['VPN-Admins', 'VPN-Users'] as const) {
    const members = (groups[cn] ?? []).map((m) => (m in groups ? p.groupDn(m) : p.userDn(m)));
    blocks.push(
      add(p.groupDn(cn), [
        ['objectClass', 'group'],
        ['sAMAccountName', cn],
        ['groupType', GLOBAL_SECURITY_GROUP],
        ['description', cn === 'VPN-Users' ? 'VPN access' : 'nested in VPN-Users'],
        ...members.map((dn): [string, string] => ['member', dn]),
      ]),
    );
  }
  return blocks.join('\n');
}

function add(dn: string, attrs: ReadonlyArray<readonly [string, string]>, ...raw: string[]): string {
  return [ldifLine('dn', dn), 'changetype: add', ...attrs.map(([n, v]) => ldifLine(n, v)), ...raw].join('\n') + '\n';
}

function modify(dn: string, replace: ReadonlyArray<readonly [string, string]>): string {
  const ops = replace.map(([n, v]) => `replace: ${n}\n${ldifLine(n, v)}\n-`);
  return [ldifLine('dn', dn), 'changetype: modify', ...ops].join('\n') + '\n';
}

interface IpLease {
  ip: string;
  lockFile: string;
  /** What a watchdog needs to clean up after a dead owner. */
  record(state: { namespace: string | undefined; addedIp: boolean; dir: string }): void;
  release(): void;
}

/**
 * One DC per loopback address on this machine, across test processes: a lock file per address
 * in the temp dir. Its lines: the owner's PID (a dead owner's lock is taken over), then the
 * DC's mount namespace, whether the alias was added, and the temp dir (for the watchdog).
 */
async function leaseIp(requested: string | undefined): Promise<IpLease> {
  const candidates = requested !== undefined ? [requested] : [DEFAULT_SAMBA_AD_IP, ...Array.from({ length: 199 }, (_, i) => `127.0.10.${i + 2}`)];
  for (const ip of candidates) {
    assertLoopback(ip);
    if (ip === '127.0.0.53' || !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip)) throw new Error(`startSambaAd: ${ip} cannot be a DC's address (127.0.0.0/8, not systemd-resolved's 127.0.0.53)`);
    const lockFile = join(tmpdir(), `mfa-samba-ad-${ip}.lock`);
    if (takeLock(lockFile)) {
      if (requested === undefined && (await listening(ip, 389))) {
        rmSync(lockFile, { force: true });
        continue;
      }
      let held = true;
      const ours = (): boolean => lockOwner(lockFile) === process.pid;
      return {
        ip,
        lockFile,
        record(state) {
          if (held && ours()) writeFileSync(lockFile, `${process.pid}\n${state.namespace ?? ''}\n${state.addedIp ? 'added' : ''}\n${state.dir}\n`);
        },
        release() {
          if (!held) return;
          held = false;
          if (ours()) rmSync(lockFile, { force: true });
        },
      };
    }
    if (requested !== undefined) throw new Error(`startSambaAd: ${ip} is held by another DC (${lockFile}, PID ${lockOwner(lockFile)})`);
  }
  throw new Error('startSambaAd: no free 127.0.10.x address for another DC');
}

function takeLock(path: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return true;
    } catch {
      const owner = lockOwner(path);
      if (owner === process.pid || (owner > 0 && isAlive(owner))) return false;
      rmSync(path, { force: true }); // its owner is gone
    }
  }
  return false;
}

function lockOwner(path: string): number {
  const owner = Number(readIfExists(path).split('\n')[0]);
  return Number.isInteger(owner) ? owner : 0;
}

// $1 = our PID, $2 = the lock file, $3 = ip(8). Exits once the lock is released (a normal stop)
// or taken over; after our PID is gone with the lock still ours: KILL every samba process in
// the DC's mount namespace (three passes: a pre-fork master may start a worker meanwhile), drop
// the alias, remove the temp dir and the lock.
const WATCHDOG = String.raw`
parent=$1; lock=$2; iptool=$3
owner() { sed -n 1p "$lock" 2>/dev/null; }
while kill -0 "$parent" 2>/dev/null; do
  [ "$(owner)" = "$parent" ] || exit 0
  sleep 1
done
[ "$(owner)" = "$parent" ] || exit 0
ns=$(sed -n 2p "$lock"); added=$(sed -n 3p "$lock"); dir=$(sed -n 4p "$lock")
ip=$(basename "$lock" .lock | sed 's/^mfa-samba-ad-//')
if [ -n "$ns" ]; then
  for pass in 1 2 3; do
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] || continue
      case $(readlink "$p/exe" 2>/dev/null) in
        /usr/sbin/samba|/usr/sbin/smbd|/usr/sbin/nmbd|/usr/sbin/winbindd) kill -KILL "$(basename "$p")" 2>/dev/null ;;
      esac
    done
    sleep 0.2
  done
fi
[ "$added" = added ] && "$iptool" addr del "$ip/32" dev lo 2>/dev/null
case $dir in */mfa-samba-ad-*) rm -rf -- "$dir" ;; esac
rm -f "$lock"
`;

function startWatchdog(lockFile: string, ipTool: string): void {
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'mfa-samba-ad-watchdog', String(process.pid), lockFile, ipTool], { detached: true, stdio: 'ignore' });
  watchdog.unref();
}

function namespaceOf(pid: number, samba: string): string | undefined {
  try {
    // Until unshare and sh have exec'd samba, the PID's namespace may still be the host's.
    if (readlinkSync(`/proc/${pid}/exe`) !== samba) return undefined;
    const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
    return ns === readlinkSync('/proc/self/ns/mnt') ? undefined : ns;
  } catch {
    return undefined;
  }
}

function processesIn(namespace: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/mnt`) === namespace && SAMBA_EXES.has(readlinkSync(`/proc/${name}/exe`))) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited meanwhile
  }
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What an LdapDirectory needs to reach this DC over LDAPS as its administrator, with `overrides`. */
export function sambaDirectoryOptions(dc: RunningSambaAd, log: Logger, overrides: Partial<DirectoryOptions> = {}): DirectoryOptions {
  return {
    name: 'ad',
    flavour: 'ad',
    urls: [dc.ldapsUrl],
    startTls: false,
    insecure: false,
    ca: readFileSync(dc.caFile),
    bindDn: dc.adminDn,
    bindPassword: dc.adminPassword,
    baseDn: dc.baseDn,
    timeoutMs: 5000,
    poolSize: 2,
    log,
    ...overrides,
  };
}
