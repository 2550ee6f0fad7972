import { connect as netConnect, isIP, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { AndFilter, Client, EqualityFilter, ExtensibleFilter, type ClientOptions, InvalidCredentialsError, OrFilter, ResultCodeError, type Entry, type Filter } from 'ldapts';
import { LRUCache } from 'lru-cache';
import type { RejectReason } from '../auth/decision.js';
import { ConfigError, UpstreamUnavailable, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { adBindRejection } from './ad-diagnostics.js';
import { normaliseDn, splitRdns } from './dn.js';
import { IN_CHAIN_RULE, groupSearchBase, membershipKeys, type FoundGroup } from './groups.js';

/**
 * The first factor `ldap:<directory>`: find the user's entry with a service account, then bind
 * as that entry with the user's password, against Active Directory or OpenLDAP.
 *
 * What this guards against, and where:
 * - An empty password is an unauthenticated bind (RFC 4513 §5.1.2) that many servers answer
 *   with success: `authenticate` refuses it before any I/O, and `bindAsUser` refuses it again.
 * - Filters are built as ldapts Filter objects, so the login travels as a BER octet string and
 *   is never parsed as filter syntax; `*`, `(`, `)` and `\` in a login match themselves only.
 * - Passwords never cross the network in clear: ldap:// needs StartTLS unless the options say
 *   `insecure`, and a connection is never silently re-opened (ldapts would reconnect without
 *   StartTLS and without the service bind): each Client may open one socket, once.
 * - Referrals (Samba answers a subtree search from the domain root with refldap:// references
 *   to its other partitions) are counted and dropped, never followed.
 * - A login given as a DN binds only an entry under `baseDn` that the user filter matches, so the
 *   gateway cannot be used to test the password of an arbitrary directory object.
 *
 * Group memberships (`groupsOf`, for reply attributes by group) are read with the service account
 * and include nested groups: on AD one search with the matching rule in chain, on OpenLDAP one
 * search per nesting level for groups that list the previous level as `member`/`uniqueMember`
 * (no memberOf overlay needed), with a cycle guard. They are cached per user DN for a short time.
 */

export interface DirectoryOptions {
  readonly name: string;
  readonly flavour: 'ad' | 'ldap';
  /** ldaps://host:port or ldap://host:port, tried in order (failover). */
  readonly urls: readonly string[];
  /** Upgrade ldap:// connections with StartTLS (required for ldap:// unless `insecure`). */
  readonly startTls: boolean;
  /** Allow plain ldap:// without StartTLS (warned loudly at construction). */
  readonly insecure: boolean;
  /** PEM; when set, only this CA is trusted. */
  readonly ca?: Buffer;
  /** The service account that looks users up. */
  readonly bindDn: string;
  readonly bindPassword: string;
  readonly baseDn: string;
  /** Connect and per-operation timeout. */
  readonly timeoutMs: number;
  /** Most user-bind connections open at once per server. */
  readonly poolSize: number;
  /** Where groupsOf looks for groups (default: the domain part of baseDn, see groupSearchBase). */
  readonly groupsBaseDn?: string;
  /** How long groupsOf keeps a user's groups (default 60 s; 0: not cached). */
  readonly groupsCacheMs?: number;
  readonly log: Logger;
}

export type BindOutcome =
  | { readonly ok: true; readonly dn: string }
  | { readonly ok: false; readonly reason: RejectReason; readonly diagnostic?: string };

/** A user's entry as the service account sees it. */
export interface DirectoryUser {
  readonly dn: string;
  /** sAMAccountName (AD) or uid (OpenLDAP). */
  readonly username: string;
  readonly userPrincipalName?: string;
  readonly givenName?: string;
  readonly sn?: string;
  readonly mail?: string;
  readonly telephoneNumber?: string;
  readonly mobile?: string;
  /** AD's flags (0x2 disabled, 0x10 locked, …); absent on OpenLDAP. */
  readonly userAccountControl?: number;
  /** Direct group memberships (DNs), as the directory's memberOf lists them. */
  readonly memberOf: readonly string[];
}

/** How a login names its user. */
export type LoginForm =
  | { readonly kind: 'dn'; readonly dn: string }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'domain'; readonly domain: string; readonly name: string }
  | { readonly kind: 'principal'; readonly principal: string; readonly name: string; readonly realm: string };

const USER_ATTRIBUTES = [
  'sAMAccountName',
  'uid',
  'userPrincipalName',
  'givenName',
  'sn',
  'mail',
  'telephoneNumber',
  'mobile',
  'userAccountControl',
  'memberOf',
];

/** A server that failed is tried after the healthy ones for this long. */
const SERVER_BACKOFF_MS = 30_000;
/**
 * How a directory answers a bind to a DN that no longer names the user: AD and Samba say 52e
 * (invalid credentials, as for a wrong password, so as not to tell that the entry is missing),
 * AD's 525 says so plainly, OpenLDAP says invalidCredentials.
 */
const STALE_DN_SIGNS: ReadonlySet<string> = new Set(['bad_password', 'user_unknown']);

/** A pooled connection idle longer than this is closed rather than reused (servers drop idle ones). */
const IDLE_MS = 60_000;
/** Most service-account connections per server: searches are short. */
const MAX_SEARCH_CONNECTIONS = 4;
/** groupsOf's cache: this many user DNs at most, each for groupsCacheMs. */
const GROUPS_CACHE_ENTRIES = 10_000;
const GROUPS_CACHE_MS = 60_000;
/** OpenLDAP nesting: levels followed at most (a cycle stops earlier: each group is visited once). */
const MAX_GROUP_DEPTH = 32;
/** OpenLDAP nesting: DNs per `(|(member=…)…)` search. */
const GROUP_FILTER_BATCH = 32;
/** Groups of one user at most; more is taken as a directory fault rather than answered partially. */
const MAX_GROUPS = 10_000;
/** Page size of group searches (AD answers at most MaxPageSize, 1000, entries without paging). */
const GROUP_PAGE_SIZE = 500;

/** An empty or all-NUL password: sent as a simple bind it is an unauthenticated bind. */
export function isEmptyPassword(password: string): boolean {
  return /^\0*$/.test(password);
}

/**
 * `uid=alice,ou=people,…` → dn; `EXAMPLE\alice` → domain; `alice@example.test` → principal;
 * anything else → name. undefined for a login that names nobody (empty, `EXAMPLE\`, `@realm`).
 */
export function parseLogin(raw: string): LoginForm | undefined {
  const login = raw.trim().normalize('NFC');
  if (login === '') return undefined;
  // A DN starts with an attribute type (or OID) and `=`; sAMAccountName and uid cannot hold `=`
  // in practice (AD forbids it), and a DN may hold `\` escapes and `@`, so this test comes first.
  if (/^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=/.test(login)) return splitDn(login) === undefined ? undefined : { kind: 'dn', dn: login };
  const backslash = login.indexOf('\\');
  if (backslash >= 0) {
    const domain = login.slice(0, backslash);
    const name = login.slice(backslash + 1);
    if (domain === '' || name === '' || name.includes('\\')) return undefined;
    return { kind: 'domain', domain, name };
  }
  const at = login.lastIndexOf('@');
  if (at >= 0) {
    const name = login.slice(0, at);
    const realm = login.slice(at + 1);
    if (name === '' || realm === '') return undefined;
    return { kind: 'principal', principal: login, name, realm };
  }
  return { kind: 'name', name: login };
}

/**
 * The RDNs of a DN, each lower-cased with the blanks around `=` and `,` dropped, split on
 * unescaped commas; undefined when it is not a DN (an RDN without `=`, a dangling escape).
 * Good enough to decide "is this entry under the base": escapes are compared as written, so two
 * spellings of one DN may differ (a false "no", never a false "yes").
 */
export function splitDn(dn: string): string[] | undefined {
  const rdns = splitRdns(dn);
  if (rdns === undefined) return undefined;
  const out: string[] = [];
  for (const rdn of rdns) {
    const eq = rdn.indexOf('=');
    if (eq <= 0) return undefined;
    const type = rdn.slice(0, eq).trim().toLowerCase();
    const value = rdn.slice(eq + 1).trim().toLowerCase();
    if (type === '' || value === '') return undefined;
    out.push(`${type}=${value}`);
  }
  return out;
}

/** true when `dn` is `base` or lies below it. */
export function isUnderDn(dn: string, base: string): boolean {
  const suffix = splitDn(base);
  return suffix !== undefined && isUnderRdns(dn, suffix);
}

/** isUnderDn with the base already split (splitDn), for a base that is checked against on every login. */
function isUnderRdns(dn: string, suffix: readonly string[]): boolean {
  const entry = splitDn(dn);
  if (entry === undefined || entry.length < suffix.length) return false;
  const offset = entry.length - suffix.length;
  return suffix.every((rdn, i) => entry[offset + i] === rdn);
}

/** `DC=example,DC=test` → `example.test` (the implicit UPN suffix of an AD domain). */
function dnsDomainOf(baseDn: string): string | undefined {
  const rdns = splitDn(baseDn);
  if (rdns === undefined) return undefined;
  const labels = rdns.filter((r) => r.startsWith('dc=')).map((r) => r.slice(3));
  return labels.length === rdns.length && labels.length > 0 ? labels.join('.') : undefined;
}

const eq = (attribute: string, value: string): Filter => new EqualityFilter({ attribute, value });
const and = (...filters: Filter[]): Filter => new AndFilter({ filters });
const or = (...filters: Filter[]): Filter => new OrFilter({ filters });

/** Marks a failure that happened before anything irreversible: the next server may be tried. */
class ServerFault extends Error {
  constructor(
    message: string,
    options?: { cause?: unknown },
    /** false when the server is only busy (our pool is full), not broken: it is not set aside. */
    readonly serverDown = true,
  ) {
    super(message, options);
  }
}

/**
 * One ldapts Client and the sockets under it. ldapts does not notice when the server closes a
 * connection that went through StartTLS (its close handler sits on the plain socket and, after the
 * upgrade, ignores it as no longer current), so `isConnected` stays true and the next operation
 * waits for its timeout on a dead socket. The sockets are watched here instead.
 */
class Connection {
  readonly client: Client;
  private dropped = false;

  constructor(options: ClientOptions) {
    this.client = new Client({ ...options, ...oneSocketOnly(() => (this.dropped = true)) });
  }

  get usable(): boolean {
    return !this.dropped && this.client.isConnected;
  }

  /** Closes it, politely when possible (an UnbindRequest), without waiting. */
  discard(): void {
    this.dropped = true;
    this.client.unbind().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.dropped = true;
    await this.client.unbind().catch(() => undefined);
  }
}

interface Lease {
  readonly conn: Connection;
  /** The connection served an earlier operation (it may have died since, unnoticed). */
  readonly reused: boolean;
}

/**
 * At most `max` connections to one server, each leased to one operation at a time (LDAP forbids
 * other operations while a bind is in progress, and a bind changes the connection's identity).
 */
class ConnectionPool {
  private readonly idle: Array<{ conn: Connection; since: number }> = [];
  private leased = 0;
  private readonly waiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly max: number,
    private readonly open: () => Promise<Connection>,
    private readonly waitMs: number,
    private readonly label: string,
  ) {}

  async acquire(): Promise<Lease> {
    if (this.closed) throw new UpstreamUnavailable(`${this.label}: closed`);
    // A waiter is handed its slot already counted (see wakeOne), so no newcomer overtakes it.
    if (this.leased < this.max && this.waiters.length === 0) this.leased++;
    else await this.waitForSlot();
    const now = performance.now();
    while (this.idle.length > 0) {
      const candidate = this.idle.pop();
      if (candidate === undefined) break;
      if (candidate.conn.usable && now - candidate.since < IDLE_MS) return { conn: candidate.conn, reused: true };
      candidate.conn.discard();
    }
    try {
      return { conn: await this.open(), reused: false };
    } catch (err) {
      this.leased--;
      this.wakeOne();
      throw err;
    }
  }

  /** `healthy`: the connection may serve the next operation. */
  release(conn: Connection, healthy: boolean): void {
    this.leased--;
    if (healthy && !this.closed && conn.usable) this.idle.push({ conn, since: performance.now() });
    else conn.discard();
    this.wakeOne();
  }

  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    await Promise.all(idle.map(({ conn }) => conn.close()));
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new ServerFault(`all ${this.max} connections busy for ${this.waitMs} ms`, {}, false));
      }, this.waitMs);
      this.waiters.push(waiter);
    });
  }

  private wakeOne(): void {
    if (this.leased >= this.max) return;
    const next = this.waiters.shift();
    if (next === undefined) return;
    this.leased++;
    next();
  }
}

interface Server {
  readonly url: string;
  readonly host: string;
  readonly ldaps: boolean;
  readonly searches: ConnectionPool;
  readonly binds: ConnectionPool;
  downUntil: number;
}

interface FoundUser {
  readonly server: Server;
  readonly entry: Entry;
}

export class LdapDirectory {
  private readonly servers: readonly Server[];
  private readonly log: Logger;
  private readonly tls: ConnectionOptions;
  private readonly dnsDomain: string | undefined;
  /** Moving average of user-bind time, spent on unknown users so that they do not answer faster. */
  private bindMs = 0;
  private closed = false;
  private readonly groupsBase: string;
  /** opts.baseDn split into RDNs once (splitDn), not on every login that is checked against it. */
  private readonly baseRdns: readonly string[];
  /** User DN (normalised) → its groups' keys; concurrent lookups of one DN share one search. */
  private readonly groupCache: LRUCache<string, ReadonlySet<string>, string> | undefined;

  constructor(private readonly opts: DirectoryOptions) {
    this.log = opts.log.child({ module: 'directory', directory: opts.name });
    const issues = validate(opts);
    if (issues.length > 0) throw new ConfigError(`directory '${opts.name}': ${issues.join('; ')}`, issues);
    this.tls = {
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
    };
    this.baseRdns = splitDn(opts.baseDn)!; // a DN: validate() above refused anything else
    this.dnsDomain = dnsDomainOf(opts.baseDn);
    this.groupsBase = opts.groupsBaseDn ?? groupSearchBase(opts.baseDn);
    const cacheMs = opts.groupsCacheMs ?? GROUPS_CACHE_MS;
    this.groupCache =
      cacheMs > 0
        ? new LRUCache<string, ReadonlySet<string>, string>({
            max: GROUPS_CACHE_ENTRIES,
            ttl: cacheMs,
            fetchMethod: (_key, _stale, { context }) => this.lookUpGroups(context),
          })
        : undefined;
    this.servers = opts.urls.map((url) => this.server(url));
    for (const server of this.servers) {
      if (!server.ldaps && !opts.startTls) {
        this.log.warn(
          { url: server.url },
          'INSECURE: passwords to this directory server cross the network in clear text (ldap:// without StartTLS); use ldaps:// or StartTLS',
        );
      }
    }
  }

  /**
   * Finds the user's entry by any login form and binds as that DN with the password.
   *
   * With `knownDn` (the entry's DN from the local sync), it binds with that DN straight away: one
   * round trip instead of a search and a bind. A DN the directory refuses may be stale (the user
   * was moved or renamed since the last sync): the entry is then searched for as without one, and
   * when it now has another DN, bound again with that one. (Should another entry have taken the
   * stale DN meanwhile, that entry saw one failed bind.)
   */
  async authenticate(login: string, password: string, knownDn?: string): Promise<BindOutcome> {
    this.assertOpen();
    // Before any I/O: an empty simple bind is an anonymous bind, a "success" on many servers.
    if (isEmptyPassword(password)) {
      this.log.debug({ login }, 'empty password refused without asking the directory');
      return { ok: false, reason: 'bad_password' };
    }
    if (knownDn !== undefined && isUnderRdns(knownDn, this.baseRdns)) {
      const outcome = await this.bindAsUser(knownDn, password);
      if (outcome.ok || !STALE_DN_SIGNS.has(outcome.reason)) return outcome;
      const found = await this.find(login);
      if (found === undefined || normaliseDn(found.entry.dn) === normaliseDn(knownDn)) return outcome;
      this.log.debug({ dn: knownDn, now: found.entry.dn }, 'the synced DN is stale; binding with the current one');
      return this.bindAsUser(found.entry.dn, password, found.server);
    }
    const found = await this.find(login);
    if (found === undefined) {
      await this.spendBindTime();
      return { ok: false, reason: 'user_unknown' };
    }
    return this.bindAsUser(found.entry.dn, password, found.server);
  }

  /** Looks the user up with the service account. undefined when not found (or ambiguous). */
  async findUser(login: string): Promise<DirectoryUser | undefined> {
    this.assertOpen();
    const found = await this.find(login);
    return found === undefined ? undefined : this.toUser(found.entry, login);
  }

  /**
   * The groups `dn` is a member of, directly or through nested groups, as comparison keys (see
   * groups.ts: each group's DN, normalised, and its names, lower-cased). Kept for groupsCacheMs
   * per DN. Throws UpstreamUnavailable when no server could answer: never an empty set for a
   * failure, since "no groups" may mean other reply attributes.
   */
  async groupsOf(dn: string): Promise<ReadonlySet<string>> {
    this.assertOpen();
    if (this.groupCache === undefined) return this.lookUpGroups(dn);
    const groups = await this.groupCache.fetch(normaliseDn(dn) ?? dn, { context: dn });
    if (groups === undefined) throw new UpstreamUnavailable(`directory '${this.opts.name}': the group lookup was abandoned`);
    return groups;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.groupCache?.clear();
    await Promise.all(this.servers.flatMap((s) => [s.searches.close(), s.binds.close()]));
  }

  private assertOpen(): void {
    if (this.closed) throw new UpstreamUnavailable(`directory '${this.opts.name}' is closed`);
  }

  private server(url: string): Server {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    const ldaps = parsed.protocol === 'ldaps:';
    const label = `directory '${this.opts.name}' ${url}`;
    const server: Server = {
      url,
      host,
      ldaps,
      downUntil: 0,
      searches: new ConnectionPool(Math.min(this.opts.poolSize, MAX_SEARCH_CONNECTIONS), () => this.connect(server), this.opts.timeoutMs, label),
      binds: new ConnectionPool(this.opts.poolSize, () => this.connect(server), this.opts.timeoutMs, label),
    };
    return server;
  }

  /**
   * A new connection: TCP (or TLS for ldaps://), StartTLS where configured, then the service
   * bind. User-bind connections get the service bind too: it proves the connection (and TLS)
   * works before a user's password is sent, so a failure here may move on to the next server.
   */
  private async connect(server: Server): Promise<Connection> {
    const conn = new Connection({
      url: server.url,
      timeout: this.opts.timeoutMs,
      connectTimeout: this.opts.timeoutMs,
      ...(server.ldaps ? { tlsOptions: this.tls } : {}),
    });
    const { client } = conn;
    const setup = async (): Promise<void> => {
      if (!server.ldaps && this.opts.startTls) {
        await client.startTLS({ ...this.tls, host: server.host, ...(isIP(server.host) === 0 ? { servername: server.host } : {}) });
      }
      await client.bind(this.opts.bindDn, this.opts.bindPassword);
    };
    // StartTLS's handshake has no timer of its own in ldapts: bound the whole setup.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection within ${2 * this.opts.timeoutMs} ms`)), 2 * this.opts.timeoutMs);
    });
    const work = setup();
    work.catch(() => undefined); // settles after the deadline when that won
    try {
      await Promise.race([work, deadline]);
      return conn;
    } catch (err) {
      conn.discard();
      const what = err instanceof InvalidCredentialsError ? 'service account bind refused' : 'connection failed';
      throw new ServerFault(`${what}: ${errorMessage(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Servers to try, healthy ones first in configured order, `first` (when given) before all. */
  private order(first?: Server): readonly Server[] {
    const now = performance.now();
    // The usual case, on every login: no server marked down, no server to try first.
    if (first === undefined || first === this.servers[0]) {
      let anyDown = false;
      for (const s of this.servers) anyDown ||= s.downUntil > now;
      if (!anyDown) return this.servers;
    }
    const healthy = this.servers.filter((s) => s.downUntil <= now);
    const down = this.servers.filter((s) => s.downUntil > now).sort((a, b) => a.downUntil - b.downUntil);
    const all = [...healthy, ...down];
    return first === undefined ? all : [first, ...all.filter((s) => s !== first)];
  }

  /** Runs `op` on the first server that does not fail with a ServerFault; throws UpstreamUnavailable when none. */
  private async onAnyServer<T>(what: string, op: (server: Server) => Promise<T>, first?: Server): Promise<T> {
    const failures: string[] = [];
    for (const server of this.order(first)) {
      try {
        const result = await op(server);
        server.downUntil = 0;
        return result;
      } catch (err) {
        if (!(err instanceof ServerFault)) throw err;
        if (err.serverDown) server.downUntil = performance.now() + SERVER_BACKOFF_MS;
        failures.push(`${server.url}: ${err.message}`);
        this.log.warn({ url: server.url, err: err.message }, `directory server failed during ${what}`);
      }
    }
    throw new UpstreamUnavailable(`directory '${this.opts.name}': no server could ${what} (${failures.join('; ')})`);
  }

  /** The user's entry, or undefined when no entry (or more than one) matches. */
  private async find(login: string): Promise<FoundUser | undefined> {
    const form = parseLogin(login);
    if (form === undefined) return undefined;
    this.log.debug({ login, form: form.kind }, 'looking user up');
    return this.onAnyServer('look the user up', async (server) => {
      const lease = await server.searches.acquire();
      let healthy = true;
      try {
        const entry = await this.findWith(lease.conn.client, form);
        return entry === undefined ? undefined : { server, entry };
      } catch (err) {
        healthy = false;
        // Searches change nothing: any failure may be retried on the next server.
        throw new ServerFault(`search failed: ${errorMessage(err)}`, { cause: err });
      } finally {
        server.searches.release(lease.conn, healthy);
      }
    });
  }

  private async lookUpGroups(dn: string): Promise<ReadonlySet<string>> {
    const started = performance.now();
    const groups = await this.onAnyServer('look up group memberships', async (server) => {
      const lease = await server.searches.acquire();
      let healthy = true;
      try {
        return this.opts.flavour === 'ad' ? await this.adGroups(lease.conn.client, dn) : await this.nestedGroups(lease.conn.client, dn);
      } catch (err) {
        if (err instanceof UpstreamUnavailable) throw err;
        healthy = false;
        throw new ServerFault(`group search failed: ${errorMessage(err)}`, { cause: err });
      } finally {
        server.searches.release(lease.conn, healthy);
      }
    });
    this.log.debug({ dn, groups: groups.map((g) => g.dn), ms: Math.round(performance.now() - started) }, 'group memberships looked up');
    return membershipKeys(groups);
  }

  /** AD: every group that has `dn` as a member at any depth, in one search (LDAP_MATCHING_RULE_IN_CHAIN). */
  private async adGroups(client: Client, dn: string): Promise<FoundGroup[]> {
    const entries = await this.searchGroups(client, and(eq('objectClass', 'group'), new ExtensibleFilter({ matchType: 'member', rule: IN_CHAIN_RULE, value: dn })), [
      'cn',
      'sAMAccountName',
    ]);
    if (entries.length > MAX_GROUPS) throw new UpstreamUnavailable(`directory '${this.opts.name}': ${dn} is in more than ${MAX_GROUPS} groups`);
    return entries.map((e) => ({ dn: e.dn, names: [...values(e, 'cn'), ...values(e, 'sAMAccountName')] }));
  }

  /**
   * OpenLDAP (groupOfNames, groupOfUniqueNames): the groups listing `dn`, then the groups listing
   * those, level by level. Each group is visited once, so a cycle (A in B in A) ends the walk.
   */
  private async nestedGroups(client: Client, dn: string): Promise<FoundGroup[]> {
    const found: FoundGroup[] = [];
    const seen = new Set<string>([normaliseDn(dn) ?? dn]);
    let level = [dn];
    for (let depth = 0; level.length > 0; depth++) {
      if (depth >= MAX_GROUP_DEPTH) throw new UpstreamUnavailable(`directory '${this.opts.name}': groups of ${dn} nest deeper than ${MAX_GROUP_DEPTH} levels`);
      const next: string[] = [];
      for (let i = 0; i < level.length; i += GROUP_FILTER_BATCH) {
        const batch = level.slice(i, i + GROUP_FILTER_BATCH);
        const filter = or(...batch.flatMap((member) => [eq('member', member), eq('uniqueMember', member)]));
        for (const entry of await this.searchGroups(client, filter, ['cn'])) {
          const key = normaliseDn(entry.dn) ?? entry.dn;
          if (seen.has(key)) continue;
          seen.add(key);
          found.push({ dn: entry.dn, names: values(entry, 'cn') });
          next.push(entry.dn);
        }
      }
      if (found.length > MAX_GROUPS) throw new UpstreamUnavailable(`directory '${this.opts.name}': ${dn} is in more than ${MAX_GROUPS} groups`);
      level = next;
    }
    return found;
  }

  private async searchGroups(client: Client, filter: Filter, attributes: string[]): Promise<Entry[]> {
    const result = await client.search(this.groupsBase, {
      scope: 'sub',
      filter,
      attributes,
      derefAliases: 'never',
      paged: { pageSize: GROUP_PAGE_SIZE },
      timeLimit: Math.max(1, Math.ceil(this.opts.timeoutMs / 1000)),
    });
    if (result.searchReferences.length > 0) {
      this.log.debug({ referrals: result.searchReferences.length }, 'search referrals ignored (never chased)');
    }
    return result.searchEntries;
  }

  private async findWith(client: Client, form: LoginForm): Promise<Entry | undefined> {
    const ad = this.opts.flavour === 'ad';
    const users = ad ? and(eq('objectCategory', 'person'), eq('objectClass', 'user')) : or(eq('objectClass', 'person'), eq('objectClass', 'posixAccount'));
    const nameAttr = ad ? 'sAMAccountName' : 'uid';
    switch (form.kind) {
      case 'dn':
        return this.findDn(client, form.dn, users);
      case 'name':
      case 'domain':
        // The domain part of DOMAIN\user is not checked: baseDn already names the one domain.
        return this.searchOne(client, and(users, eq(nameAttr, form.name)));
      case 'principal': {
        const explicit = ad ? eq('userPrincipalName', form.principal) : or(eq('mail', form.principal), eq('uid', form.principal));
        const byPrincipal = await this.searchOne(client, and(users, explicit));
        if (byPrincipal !== undefined) return byPrincipal;
        // AD: an account without userPrincipalName still has the implicit name@dnsdomain.
        // OpenLDAP: the part before @ is the uid.
        if (ad && form.realm.toLowerCase() !== this.dnsDomain) return undefined;
        return this.searchOne(client, and(users, eq(nameAttr, form.name)));
      }
    }
  }

  private async findDn(client: Client, dn: string, users: Filter): Promise<Entry | undefined> {
    if (!isUnderRdns(dn, this.baseRdns)) {
      this.log.debug({ dn }, 'DN login outside the base DN refused');
      return undefined;
    }
    try {
      const entry = await this.searchOne(client, users, dn, 'base');
      // The server's spelling of the DN, checked again: it is the one that gets bound.
      return entry !== undefined && isUnderRdns(entry.dn, this.baseRdns) ? entry : undefined;
    } catch (err) {
      // noSuchObject, invalidDNSyntax, referral (a DN in another naming context): nobody here.
      if (err instanceof ResultCodeError && [10, 32, 34].includes(err.code)) return undefined;
      throw err;
    }
  }

  private async searchOne(client: Client, filter: Filter, base = this.opts.baseDn, scope: 'base' | 'sub' = 'sub'): Promise<Entry | undefined> {
    const result = await client.search(base, {
      scope,
      filter,
      attributes: USER_ATTRIBUTES,
      derefAliases: 'never',
      sizeLimit: 2, // two are enough to know it is ambiguous
      timeLimit: Math.max(1, Math.ceil(this.opts.timeoutMs / 1000)),
    });
    if (result.searchReferences.length > 0) {
      this.log.debug({ referrals: result.searchReferences.length }, 'search referrals ignored (never chased)');
    }
    const [entry, ...more] = result.searchEntries;
    if (more.length > 0) {
      this.log.warn('a login matches more than one directory entry; treated as an unknown user');
      this.log.debug({ filter: filter.toString(), dns: [entry?.dn, ...more.map((e) => e.dn)] }, 'ambiguous login');
      return undefined;
    }
    return entry;
  }

  /** Binds as `dn`; on the server that found it first (if any), then on the others if it cannot connect. */
  private async bindAsUser(dn: string, password: string, first?: Server): Promise<BindOutcome> {
    if (isEmptyPassword(password)) return { ok: false, reason: 'bad_password' };
    this.log.debug({ dn }, 'binding as user');
    const started = performance.now();
    const outcome = await this.onAnyServer('check the password', (server) => this.bindOn(server, dn, password), first);
    const elapsed = performance.now() - started;
    this.bindMs = this.bindMs === 0 ? elapsed : 0.8 * this.bindMs + 0.2 * elapsed;
    if (!outcome.ok) this.log.debug({ dn, reason: outcome.reason, diagnostic: outcome.diagnostic }, 'directory refused the bind');
    return outcome;
  }

  private async bindOn(server: Server, dn: string, password: string): Promise<BindOutcome> {
    for (let attempt = 1; ; attempt++) {
      // A failure to get a connection is a ServerFault: no password was sent, the next server may be tried.
      const lease = await server.binds.acquire();
      try {
        await lease.conn.client.bind(dn, password);
        server.binds.release(lease.conn, true);
        return { ok: true, dn };
      } catch (err) {
        if (err instanceof InvalidCredentialsError) {
          // The connection is now anonymous: fit for the next user bind.
          server.binds.release(lease.conn, true);
          const rejection = this.opts.flavour === 'ad' ? adBindRejection(err.message) : { reason: 'bad_password' as const };
          return { ok: false, ...rejection };
        }
        server.binds.release(lease.conn, false);
        if (err instanceof ResultCodeError) {
          throw new UpstreamUnavailable(`directory '${this.opts.name}' ${server.url}: unexpected answer to a user bind: ${err.message}`, { cause: err });
        }
        // A pooled connection the server had closed unnoticed: once more on a fresh one. Any
        // other failure (a timeout) may have reached the server, so it is not retried elsewhere,
        // where it could count twice towards a lockout.
        if (lease.reused && attempt === 1 && /closed|Socket error|re-open/i.test(errorMessage(err))) continue;
        throw new UpstreamUnavailable(`directory '${this.opts.name}' ${server.url}: user bind failed: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  private async spendBindTime(): Promise<void> {
    const ms = Math.min(this.bindMs, this.opts.timeoutMs);
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  }

  private toUser(entry: Entry, login: string): DirectoryUser {
    const ad = this.opts.flavour === 'ad';
    const uac = first(entry, 'userAccountControl');
    const parsed = uac === undefined ? undefined : Number.parseInt(uac, 10);
    const form = parseLogin(login);
    const fallback = form === undefined || form.kind === 'dn' ? entry.dn : form.name;
    return {
      dn: entry.dn,
      username: first(entry, ad ? 'sAMAccountName' : 'uid') ?? fallback,
      ...optional('userPrincipalName', first(entry, 'userPrincipalName')),
      ...optional('givenName', first(entry, 'givenName')),
      ...optional('sn', first(entry, 'sn')),
      ...optional('mail', first(entry, 'mail')),
      ...optional('telephoneNumber', first(entry, 'telephoneNumber')),
      ...optional('mobile', first(entry, 'mobile')),
      ...(parsed !== undefined && Number.isFinite(parsed) ? { userAccountControl: parsed } : {}),
      memberOf: values(entry, 'memberOf'),
    };
  }
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

/** Every value of an attribute, matched without regard to case (servers echo their own spelling). */
function values(entry: Entry, name: string): string[] {
  const lower = name.toLowerCase();
  const key = Object.keys(entry).find((k) => k !== 'dn' && k.toLowerCase() === lower);
  if (key === undefined) return [];
  const raw = entry[key];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v));
}

function first(entry: Entry, name: string): string | undefined {
  return values(entry, name)[0];
}

/**
 * ldapts re-opens a dropped connection by itself on the next operation: without StartTLS and
 * without the service bind. These factories let each Client open one socket, once (a second
 * attempt fails the operation, and the pool replaces the connection), and report when any socket
 * they made (the plain one, the TLS one on top of it) ends.
 */
function oneSocketOnly(onDrop: () => void): { createConnection: typeof netConnect; createSecureConnection: typeof tlsConnect } {
  let plain = false;
  let secure = false;
  const watch = <S extends Socket>(socket: S): S => {
    socket.once('end', onDrop);
    socket.once('close', onDrop);
    return socket;
  };
  // ldapts calls these as (port, host) and (port, host, tlsOptions), and StartTLS as (options).
  const createConnection = ((port: number, host: string) => {
    if (plain) throw new Error('refusing to re-open a dropped directory connection');
    plain = true;
    return watch(netConnect(port, host));
  }) as typeof netConnect;
  const createSecureConnection = ((...args: [number, string, ConnectionOptions] | [ConnectionOptions]) => {
    if (secure) throw new Error('refusing to re-open a dropped directory connection');
    secure = true;
    return watch(args.length === 1 ? tlsConnect(args[0]) : tlsConnect(args[0], args[1], args[2]));
  }) as typeof tlsConnect;
  return { createConnection, createSecureConnection };
}

function validate(opts: DirectoryOptions): string[] {
  const issues: string[] = [];
  if (opts.name.trim() === '') issues.push('name: must not be empty');
  if (opts.flavour !== 'ad' && opts.flavour !== 'ldap') issues.push(`flavour: must be 'ad' or 'ldap'`);
  if (opts.urls.length === 0) issues.push('urls: at least one server is needed');
  opts.urls.forEach((url, i) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      issues.push(`urls[${i}]: not a URL: ${url}`);
      return;
    }
    if (parsed.protocol !== 'ldap:' && parsed.protocol !== 'ldaps:') issues.push(`urls[${i}]: must be ldaps:// or ldap://`);
    else if (parsed.hostname === '') issues.push(`urls[${i}]: has no host`);
    else if ((parsed.pathname !== '' && parsed.pathname !== '/') || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '')
      issues.push(`urls[${i}]: only ldap[s]://host:port is supported`);
    else if (parsed.protocol === 'ldap:' && !opts.startTls && !opts.insecure)
      issues.push(`urls[${i}]: plain ldap:// would send passwords in clear text; use ldaps://, enable StartTLS, or set insecure`);
  });
  if (opts.bindDn.trim() === '') issues.push('bindDn: the service account is required');
  // An empty service password would be an unauthenticated bind: searches would quietly run anonymously.
  if (isEmptyPassword(opts.bindPassword)) issues.push('bindPassword: must not be empty');
  if (splitDn(opts.baseDn) === undefined) issues.push('baseDn: not a DN');
  if (opts.groupsBaseDn !== undefined && splitDn(opts.groupsBaseDn) === undefined) issues.push('groupsBaseDn: not a DN');
  if (opts.groupsCacheMs !== undefined && !(Number.isFinite(opts.groupsCacheMs) && opts.groupsCacheMs >= 0)) issues.push('groupsCacheMs: must be a number ≥ 0');
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) issues.push('timeoutMs: must be a positive number');
  if (!Number.isInteger(opts.poolSize) || opts.poolSize < 1) issues.push('poolSize: must be a whole number ≥ 1');
  return issues;
}
