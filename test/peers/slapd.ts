import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { DirectoryOptions } from '../../src/directory/ldap-directory.js';
import type { Logger } from '../../src/log.js';
import type { PeerProcess } from './peer-process.js';
import { spawnPeer } from './peer-process.js';
import { assertLoopback, freePort } from './ports.js';
import { binaryOrThrow } from './require-peer.js';
import { tempDir } from './temp.js';
import { makeTlsFiles } from './tls-ca.js';

/**
 * A throwaway OpenLDAP directory (Debian's `slapd` 2.5) for one test: a cn=config generated from
 * scratch into a temp dir (slapadd -n0), an mdb database for dc=example,dc=test, listening on
 * 127.0.0.1 free ports for ldap:// (StartTLS offered) and ldaps://, with a certificate from
 * tls-ca.ts. Nothing of /etc/ldap/slapd.d or /var/lib/ldap is read or written; no system service
 * is involved; it runs as the current user (no privileged port).
 *
 * Like a typical site directory: users are inetOrgPerson under ou=people (userPassword as
 * {SSHA}), groups are groupOfNames under ou=groups (members by DN, nesting allowed), and the
 * memberof overlay maintains memberOf on direct members. ACLs: userPassword is usable for binds
 * only (`by anonymous auth`), everything else is readable by anyone, including anonymous.
 *
 * This file also holds ldapUtil(), the runner for ldap-utils (ldapsearch, ldapadd, …) that the
 * directory peers and their tests share.
 */

export interface SlapdUser {
  uid: string;
  password: string;
  /** Default: the uid with a capital first letter. */
  givenName?: string;
  /** Default: 'User'. */
  sn?: string;
  /** Default: `<uid>@example.test`. */
  mail?: string;
  telephoneNumber?: string;
  mobile?: string;
  /** The ou under the base the entry goes to (default 'people'); created if it is not one of people, groups, other. */
  ou?: string;
}

export interface SlapdGroup {
  cn: string;
  /**
   * Members: a uid of a user in `users`, the cn of another group in `groups` (nesting), or a full
   * DN (anything containing '='). groupOfNames needs at least one.
   */
  members: string[];
}

export interface SlapdOptions {
  /** Default: DEFAULT_SLAPD_USERS. */
  users?: SlapdUser[];
  /** Default: DEFAULT_SLAPD_GROUPS when `users` is not given, otherwise none. */
  groups?: SlapdGroup[];
  /** Directory for config, data, TLS files and logs (default: a new temp dir, removed by stop()). */
  dir?: string;
  /**
   * A simple bind with a DN and an empty password ("unauthenticated bind", RFC 4513 §5.1.2)
   * succeeds as anonymous, as on Active Directory and many directories (slapd's own default
   * refuses it with result 53). Default true, so a test proves that the gateway refuses empty
   * passwords itself rather than relying on the directory.
   */
  allowUnauthenticatedBind?: boolean;
  /** slapd -d level (default 'stats': connections, binds and results, one line each). */
  logLevel?: string;
  /** Register stop() as a teardown of this tap test. */
  t?: { teardown(fn: () => unknown): unknown };
  /** Milliseconds to wait for readiness (default 20000). */
  startTimeoutMs?: number;
}

export interface RunningSlapd {
  /** ldap://127.0.0.1:PORT (plain; StartTLS available). */
  url: string;
  /** ldaps://127.0.0.1:PORT */
  ldapsUrl: string;
  host: '127.0.0.1';
  port: number;
  ldapsPort: number;
  /** dc=example,dc=test */
  baseDn: string;
  /** cn=admin,dc=example,dc=test: the database's rootdn, also the manager of cn=config. */
  adminDn: string;
  adminPassword: string;
  /** The CA that signed the server certificate (IP:127.0.0.1, DNS:ldap.example.test, DNS:localhost). */
  caFile: string;
  /** A CA that signed nothing here. */
  untrustedCaFile: string;
  /** uid=<uid>,ou=people,dc=example,dc=test (for users seeded under another ou: the seeded DN). */
  userDn(uid: string): string;
  /** cn=<cn>,ou=groups,dc=example,dc=test */
  groupDn(cn: string): string;
  /** ldapadd as adminDn over ldap://; throws with ldapadd's stderr on failure. */
  ldapadd(ldif: string): Promise<void>;
  /** ldapmodify as adminDn over ldap:// (cn=config too); throws with ldapmodify's stderr on failure. */
  ldapmodify(ldif: string): Promise<void>;
  dir: string;
  pid: number;
  logs(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when the process is gone, then removes a temp dir it made. Idempotent. */
  stop(): Promise<void>;
  readonly process: PeerProcess;
}

export const SLAPD_BASE_DN = 'dc=example,dc=test';
export const SLAPD_ADMIN_DN = `cn=admin,${SLAPD_BASE_DN}`;

/**
 * user1..user5 in ou=people (password `Passw0rd-<n>`, givenName 'User', sn 'Number<n>',
 * mail user<n>@example.test, telephoneNumber +1 555 010<n>, mobile +1 555 020<n>) and other1
 * (password `Passw0rd-o`) in ou=other, outside the people subtree.
 */
export const DEFAULT_SLAPD_USERS: readonly SlapdUser[] = Object.freeze([
  ...[1, 2, 3, 4, 5].map((n) => ({
    uid: `user${n}`,
    password: `Passw0rd-${n}`,
    givenName: 'User',
    sn: `Number${n}`,
    mail: `user${n}@example.test`,
    telephoneNumber: `+1 555 010${n}`,
    mobile: `+1 555 020${n}`,
  })),
  { uid: 'other1', password: 'Passw0rd-o', givenName: 'Other', sn: 'One', mail: 'other1@example.test', ou: 'other' },
]);

/** VPN-Users = user1, user2, user3 and the nested group VPN-Admins (= user4); user5 is in no group. */
export const DEFAULT_SLAPD_GROUPS: readonly SlapdGroup[] = Object.freeze([
  { cn: 'VPN-Admins', members: ['user4'] },
  { cn: 'VPN-Users', members: ['user1', 'user2', 'user3', 'VPN-Admins'] },
]);

const HOST = '127.0.0.1';
const BASE_OUS = ['people', 'groups', 'other'];
const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';

export async function startSlapd(opts: SlapdOptions = {}): Promise<RunningSlapd> {
  const slapd = binaryOrThrow('slapd', 'slapd');
  const slapadd = binaryOrThrow('slapadd', 'slapd');
  binaryOrThrow('ldapadd', 'ldap-utils');
  const data = seedLdif(opts);
  const adminPassword = randomBytes(18).toString('base64url');
  const owned = opts.dir === undefined ? tempDir('slapd') : undefined;
  const dir = opts.dir ?? owned?.path ?? '';
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tls = await makeTlsFiles(join(dir, 'tls'), { ip: HOST, dnsName: 'ldap.example.test', extraDnsNames: ['localhost'] }).catch((err: unknown) => {
    owned?.cleanup();
    throw err;
  });
  let lastError: unknown;
  // freePort closes its probe socket before slapd binds, so another process can win a port in
  // between: a bind failure is retried on new ports.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort('tcp', HOST);
    let ldapsPort = await freePort('tcp', HOST);
    while (ldapsPort === port) ldapsPort = await freePort('tcp', HOST);
    try {
      const server = await startOnce({ slapd, slapadd, opts, dir, attempt, port, ldapsPort, adminPassword, tls, data, owned });
      opts.t?.teardown(() => server.stop());
      return server;
    } catch (err) {
      lastError = err;
      if (!(err instanceof Error && /Address already in use/.test(err.message))) break;
    }
  }
  owned?.cleanup();
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

interface StartArgs {
  slapd: string;
  slapadd: string;
  opts: SlapdOptions;
  dir: string;
  attempt: number;
  port: number;
  ldapsPort: number;
  adminPassword: string;
  tls: { caFile: string; certFile: string; keyFile: string; untrustedCaFile: string };
  data: SeedData;
  owned: { cleanup(): void } | undefined;
}

async function startOnce(a: StartArgs): Promise<RunningSlapd> {
  const run = join(a.dir, `run-${a.attempt}`);
  const configDir = join(run, 'slapd.d');
  for (const sub of [configDir, join(run, 'data')]) mkdirSync(sub, { recursive: true, mode: 0o700 });
  const configLdif = join(run, 'config.ldif');
  writeFileSync(configLdif, cnConfig(run, a), { mode: 0o600 });
  const loaded = await runTool(a.slapadd, ['-n0', '-F', configDir, '-l', configLdif], undefined, 30_000);
  if (loaded.exitCode !== 0) throw new Error(`slapadd -n0 failed (exit ${loaded.exitCode}):\n${loaded.stderr}${loaded.stdout}`);

  const url = `ldap://${HOST}:${a.port}`;
  const ldapsUrl = `ldaps://${HOST}:${a.ldapsPort}`;
  // -d keeps slapd in the foreground (our child, killable by PID) and logs to stderr.
  const peer = spawnPeer({
    name: 'slapd',
    command: a.slapd,
    args: ['-d', a.opts.logLevel ?? 'stats', '-F', configDir, '-h', `${url}/ ${ldapsUrl}/`],
    logFile: join(run, 'slapd.log'),
    marker: configDir,
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    await peer.stop('SIGTERM', 5000);
    if (stopped) return;
    stopped = true;
    a.owned?.cleanup();
  };
  const admin = { bindDn: SLAPD_ADMIN_DN, password: a.adminPassword };
  const change = async (tool: 'ldapadd' | 'ldapmodify', ldif: string): Promise<void> => {
    const result = await ldapUtil(tool, { url, ...admin, input: ldif });
    if (result.exitCode !== 0) throw new Error(`${tool} as ${SLAPD_ADMIN_DN} failed (exit ${result.exitCode}): ${result.stderr.trim()}`);
  };
  try {
    const timeoutMs = a.opts.startTimeoutMs ?? 20000;
    const deadline = Date.now() + timeoutMs;
    await peer.waitForLine((l) => l.includes('slapd starting'), timeoutMs, "'slapd starting'");
    // slapd binds its sockets before 'slapd starting' but calls listen() on them only afterwards,
    // in its daemon thread: until then a connection is refused.
    for (const port of [a.port, a.ldapsPort]) {
      while (!(await accepts(HOST, port))) {
        if (peer.hasExited() || Date.now() > deadline) throw new Error(`slapd does not accept connections on ${HOST}:${port}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    await change('ldapadd', a.data.ldif);
    const probe = await ldapUtil('ldapsearch', { url: ldapsUrl, caFile: a.tls.caFile, args: ['-b', '', '-s', 'base', '1.1'] });
    if (probe.exitCode !== 0) throw peer.failure(`slapd does not answer on ${ldapsUrl} with its CA (exit ${probe.exitCode}): ${probe.stderr.trim()}`);
  } catch (err) {
    await peer.stop('SIGTERM', 5000);
    throw err instanceof Error && !err.message.includes('--- last lines') ? peer.failure(err.message) : err;
  }
  return {
    url,
    ldapsUrl,
    host: HOST,
    port: a.port,
    ldapsPort: a.ldapsPort,
    baseDn: SLAPD_BASE_DN,
    adminDn: SLAPD_ADMIN_DN,
    adminPassword: a.adminPassword,
    caFile: a.tls.caFile,
    untrustedCaFile: a.tls.untrustedCaFile,
    userDn: (uid) => a.data.userDns.get(uid) ?? `uid=${escapeDnValue(uid)},ou=people,${SLAPD_BASE_DN}`,
    groupDn: (cn) => `cn=${escapeDnValue(cn)},ou=groups,${SLAPD_BASE_DN}`,
    ldapadd: (ldif) => change('ldapadd', ldif),
    ldapmodify: (ldif) => change('ldapmodify', ldif),
    dir: a.dir,
    pid: peer.pid,
    logs: () => peer.logs(),
    stop,
    process: peer,
  };
}

function cnConfig(run: string, a: StartArgs): string {
  const rootPw = ssha(a.adminPassword);
  const allows = a.opts.allowUnauthenticatedBind === false ? '' : 'olcAllows: bind_anon_dn\n';
  return `# Generated by test/peers/slapd.ts: a self-contained slapd for one test.
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: ${run}/slapd.pid
olcArgsFile: ${run}/slapd.args
olcTLSCACertificateFile: ${a.tls.caFile}
olcTLSCertificateFile: ${a.tls.certFile}
olcTLSCertificateKeyFile: ${a.tls.keyFile}
olcTLSVerifyClient: never
${allows}
dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: ${MODULE_DIR}
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://${SCHEMA_DIR}/core.ldif

include: file://${SCHEMA_DIR}/cosine.ldif

include: file://${SCHEMA_DIR}/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcPasswordHash: {SSHA}
olcSizeLimit: 1000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: ${SLAPD_ADMIN_DN}

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: ${SLAPD_BASE_DN}
olcRootDN: ${SLAPD_ADMIN_DN}
olcRootPW: ${rootPw}
olcDbDirectory: ${run}/data
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail eq
olcDbIndex: member,memberOf eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by * read

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
`;
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

interface SeedData {
  ldif: string;
  userDns: Map<string, string>;
}

/** The base entry, the ous, the users and the groups (members before the groups that nest them, so memberOf is complete). */
function seedLdif(opts: SlapdOptions): SeedData {
  const users = opts.users ?? DEFAULT_SLAPD_USERS;
  const groups = opts.groups ?? (opts.users === undefined ? DEFAULT_SLAPD_GROUPS : []);
  const entries: string[] = [
    entry(SLAPD_BASE_DN, [['objectClass', 'dcObject'], ['objectClass', 'organization'], ['dc', 'example'], ['o', 'Example']]),
  ];
  const ous = [...new Set([...BASE_OUS, ...users.map((u) => u.ou ?? 'people')])];
  for (const ou of ous) entries.push(entry(`ou=${escapeDnValue(ou)},${SLAPD_BASE_DN}`, [['objectClass', 'organizationalUnit'], ['ou', ou]]));

  const userDns = new Map<string, string>();
  for (const u of users) {
    if (userDns.has(u.uid)) throw new Error(`startSlapd: duplicate uid ${JSON.stringify(u.uid)}`);
    const dn = `uid=${escapeDnValue(u.uid)},ou=${escapeDnValue(u.ou ?? 'people')},${SLAPD_BASE_DN}`;
    userDns.set(u.uid, dn);
    const givenName = u.givenName ?? u.uid.charAt(0).toUpperCase() + u.uid.slice(1);
    const sn = u.sn ?? 'User';
    const attrs: Array<[string, string]> = [
      ['objectClass', 'inetOrgPerson'],
      ['uid', u.uid],
      ['cn', `${givenName} ${sn}`],
      ['givenName', givenName],
      ['sn', sn],
      ['mail', u.mail ?? `${u.uid}@example.test`],
    ];
    if (u.telephoneNumber !== undefined) attrs.push(['telephoneNumber', u.telephoneNumber]);
    if (u.mobile !== undefined) attrs.push(['mobile', u.mobile]);
    attrs.push(['userPassword', ssha(u.password)]);
    entries.push(entry(dn, attrs));
  }

  const byCn = new Map(groups.map((g) => [g.cn.toLowerCase(), g]));
  if (byCn.size !== groups.length) throw new Error('startSlapd: duplicate group cn');
  const groupDn = (cn: string): string => `cn=${escapeDnValue(cn)},ou=groups,${SLAPD_BASE_DN}`;
  const memberDn = (group: SlapdGroup, member: string): string => {
    if (member.includes('=')) return member;
    const nested = byCn.get(member.toLowerCase());
    if (nested !== undefined) return groupDn(nested.cn);
    const user = userDns.get(member);
    if (user !== undefined) return user;
    throw new Error(`startSlapd: member ${JSON.stringify(member)} of group ${group.cn} is neither a uid, a group cn nor a DN`);
  };
  const added = new Set<SlapdGroup>();
  const visiting = new Set<SlapdGroup>();
  const addGroup = (g: SlapdGroup): void => {
    if (added.has(g) || visiting.has(g)) return; // a cycle is added in the given order
    visiting.add(g);
    for (const m of g.members) {
      const nested = byCn.get(m.toLowerCase());
      if (nested !== undefined && !m.includes('=')) addGroup(nested);
    }
    visiting.delete(g);
    added.add(g);
    if (g.members.length === 0) throw new Error(`startSlapd: group ${g.cn} has no members (groupOfNames needs one)`);
    entries.push(entry(groupDn(g.cn), [['objectClass', 'groupOfNames'], ['cn', g.cn], ...g.members.map((m): [string, string] => ['member', memberDn(g, m)])]));
  };
  for (const g of groups) addGroup(g);
  return { ldif: entries.join('\n'), userDns };
}

function entry(dn: string, attrs: ReadonlyArray<readonly [string, string]>): string {
  return [ldifLine('dn', dn), ...attrs.map(([name, value]) => ldifLine(name, value))].join('\n') + '\n';
}

/** One LDIF line (RFC 2849): the value as is when it is a SAFE-STRING, base64 (`::`) otherwise. */
export function ldifLine(name: string, value: string): string {
  // eslint-disable-next-line no-control-regex
  const safe = /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(value) && !value.endsWith(' ');
  if (value === '' || safe) return `${name}: ${value}`;
  return `${name}:: ${Buffer.from(value, 'utf8').toString('base64')}`;
}

/** An attribute value escaped for a DN (RFC 4514 §2.4). */
export function escapeDnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

/** {SSHA}: base64(SHA-1(password ‖ salt) ‖ salt), as slappasswd makes it. */
export function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

export type LdapTool = 'ldapsearch' | 'ldapadd' | 'ldapmodify' | 'ldapdelete' | 'ldappasswd' | 'ldapwhoami' | 'ldapcompare';

export interface LdapUtilOptions {
  /** ldap://IP:PORT or ldaps://IP:PORT; loopback only. */
  url: string;
  /** Simple bind as this DN, UPN or DOMAIN\user (-D); without it the tool binds anonymously. */
  bindDn?: string;
  /** -w; '' sends a simple bind with an empty password. */
  password?: string;
  /** LDAPTLS_CACERT, with LDAPTLS_REQCERT=demand. Needed for ldaps:// and StartTLS. */
  caFile?: string;
  /** -ZZ: StartTLS, and fail unless it succeeds. */
  startTls?: boolean;
  /** More arguments, after the connection and bind options (e.g. ['-b', base, filter, attrs…]). */
  args?: readonly string[];
  /** Standard input (LDIF for ldapadd/ldapmodify). */
  input?: string;
  /** Default 15000; the tool is killed after it. */
  timeoutMs?: number;
}

export interface LdapUtilResult {
  /** For a failed operation, the LDAP result code (49 = invalidCredentials); -1 if killed. */
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The server's diagnosticMessage ("additional info: …" in stderr), e.g. AD's "… data 52e, v1db1". */
  diagnostic: string | undefined;
}

/** Runs one of ldap-utils' tools with a simple bind (-x), no referral chasing, never blocking on a prompt. */
export async function ldapUtil(tool: LdapTool, opts: LdapUtilOptions): Promise<LdapUtilResult> {
  const match = /^ldaps?:\/\/([^/:]+|\[[^\]]+\])(:\d+)?\/?$/.exec(opts.url);
  if (match === null) throw new Error(`ldapUtil: bad URL ${opts.url}`);
  assertLoopback((match[1] ?? '').replace(/^\[|\]$/g, ''));
  const binary = binaryOrThrow(tool, 'ldap-utils');
  const args = ['-x', '-H', opts.url, '-o', 'nettimeout=10'];
  if (opts.startTls === true) args.push('-ZZ');
  if (opts.bindDn !== undefined) args.push('-D', opts.bindDn);
  if (opts.password !== undefined) args.push('-w', opts.password);
  if (tool === 'ldapsearch') args.push('-LLL');
  args.push(...(opts.args ?? []));
  const env: NodeJS.ProcessEnv = { ...process.env, LDAPREFERRALS: 'off', LDAPTLS_REQCERT: 'demand' };
  // Never the system's CA bundle from /etc/ldap/ldap.conf: only the CA the test names.
  env.LDAPTLS_CACERT = opts.caFile ?? '/dev/null';
  delete env.LDAPTLS_CACERTDIR;
  const result = await runTool(binary, args, opts.input, opts.timeoutMs ?? 15000, env);
  const diagnostic = /^\s*additional info: (.*)$/m.exec(result.stderr)?.[1];
  return { ...result, diagnostic };
}

interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function runTool(command: string, args: readonly string[], input: string | undefined, timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined); // a tool that exits early closes its stdin
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(input ?? '');
  });
}

/** What an LdapDirectory needs to reach this slapd over LDAPS as its administrator, with `overrides`. */
export function slapdDirectoryOptions(slapd: RunningSlapd, log: Logger, overrides: Partial<DirectoryOptions> = {}): DirectoryOptions {
  return {
    name: 'openldap',
    flavour: 'ldap',
    urls: [slapd.ldapsUrl],
    startTls: false,
    insecure: false,
    ca: readFileSync(slapd.caFile),
    bindDn: slapd.adminDn,
    bindPassword: slapd.adminPassword,
    baseDn: slapd.baseDn,
    timeoutMs: 3000,
    poolSize: 2,
    log,
    ...overrides,
  };
}
