import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { AdminLimitExceededError, Client, InvalidCredentialsError, type Entry, type Filter } from 'ldapts';
import type { ResolvedDirectory } from '../../config/config.js';
import { UpstreamUnavailable, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';

/**
 * One service-account connection for a sync run: TLS (ldaps:// or StartTLS) checked against the
 * configured CA, bound as the directory's bind_dn, tried on each configured URL in order.
 * Referrals (Samba answers a subtree search from the domain root with refldap:// references to
 * its other partitions) are counted and dropped, never chased. The socket is opened once: ldapts
 * would silently re-open a dropped connection without StartTLS and without the bind, which must
 * fail the run instead. The bind password is never logged.
 */

export interface SearchSpec {
  readonly base: string;
  readonly scope: 'base' | 'one' | 'sub';
  readonly filter: Filter;
  readonly attributes: readonly string[];
  /** Attributes to return as bytes (objectGUID, invocationId). */
  readonly binary?: readonly string[];
}

/**
 * Directory servers (directory name and URL: the limit is the service account's) that refused a
 * page larger than the configured page_size: until the gateway restarts, later runs ask them for
 * the configured size straight away, and the refusal is logged once.
 */
const refusedLargePages = new Set<string>();

export class LdapSession {
  /** Search references seen (and ignored) so far. */
  referrals = 0;

  private constructor(
    private readonly client: Client,
    readonly url: string,
    private readonly dir: ResolvedDirectory,
    private readonly log: Logger,
  ) {}

  /** Connects to the first URL of `dir` that answers and accepts the service account. */
  static async open(dir: ResolvedDirectory, log: Logger): Promise<LdapSession> {
    const failures: string[] = [];
    for (const url of dir.urls) {
      try {
        const client = await connect(dir, url);
        log.debug({ url }, 'sync connected');
        return new LdapSession(client, url, dir, log);
      } catch (err) {
        failures.push(`${url}: ${errorMessage(err)}`);
        log.warn({ url, err: errorMessage(err) }, 'directory server failed for sync');
      }
    }
    throw new UpstreamUnavailable(`directory '${dir.name}': no server could be used for sync (${failures.join('; ')})`);
  }

  /**
   * A second connection to the same server, for a search that runs beside one on this connection
   * (OpenLDAP allows one paged search at a time per connection).
   */
  async another(): Promise<LdapSession> {
    return new LdapSession(await connect(this.dir, this.url), this.url, this.dir, this.log);
  }

  /** Pages of a paged search, in order. A failure anywhere throws: a partial listing is never taken for a whole one. */
  async *pages(spec: SearchSpec, pageSize: number): AsyncGenerator<Entry[]> {
    const iterator = this.client.searchPaginated(spec.base, {
      scope: spec.scope,
      filter: spec.filter,
      attributes: [...spec.attributes],
      explicitBufferAttributes: [...(spec.binary ?? [])],
      derefAliases: 'never',
      paged: { pageSize },
    });
    for await (const page of iterator) {
      this.noteReferrals(page.searchReferences.length);
      yield page.searchEntries;
    }
  }

  /**
   * pages() in pages of `preferred` entries where the server allows that, else of `configured`
   * (the directory's page_size, which its admin has made fit the server's limits). Fewer, larger
   * pages cost fewer round trips on a long listing; OpenLDAP refuses a page above its size.pr
   * limit with adminLimitExceeded before sending anything; Active Directory and Samba cap a page
   * at their MaxPageSize (1000 by default) without an error.
   */
  async *pagesOfUpTo(spec: SearchSpec, preferred: number, configured: number): AsyncGenerator<Entry[]> {
    const server = `${this.dir.name} ${this.url}`;
    if (preferred > configured && !refusedLargePages.has(server)) {
      let started = false;
      try {
        for await (const page of this.pages(spec, preferred)) {
          started = true;
          yield page;
        }
        return;
      } catch (err) {
        if (started || !(err instanceof AdminLimitExceededError)) throw err;
        refusedLargePages.add(server);
        this.log.info(
          { url: this.url, pageSize: preferred, pageSizeNow: configured, err: errorMessage(err) },
          'the directory refused pages this large; listing in pages of the configured page_size until the gateway restarts',
        );
      }
    }
    yield* this.pages(spec, configured);
  }

  /** One entry by DN (a base search), or undefined when it does not exist or does not match `filter`. */
  async read(dn: string, filter: Filter, attributes: readonly string[], binary: readonly string[] = []): Promise<Entry | undefined> {
    try {
      const result = await this.client.search(dn, {
        scope: 'base',
        filter,
        attributes: [...attributes],
        explicitBufferAttributes: [...binary],
        derefAliases: 'never',
        timeLimit: Math.max(1, Math.ceil(this.dir.timeout_ms / 1000)),
      });
      this.noteReferrals(result.searchReferences.length);
      return result.searchEntries[0];
    } catch (err) {
      // noSuchObject, or a referral for a DN in another naming context: nothing here.
      const code = (err as { code?: unknown }).code;
      if (code === 32 || code === 10) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.client.unbind().catch(() => undefined);
  }

  private noteReferrals(n: number): void {
    if (n === 0) return;
    this.referrals += n;
    this.log.debug({ referrals: n }, 'search references ignored (never chased)');
  }
}

async function connect(dir: ResolvedDirectory, url: string): Promise<Client> {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const ldaps = parsed.protocol === 'ldaps:';
  const tls: ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2', ...(dir.ca !== undefined ? { ca: dir.ca } : {}) };
  const client = new Client({
    url,
    timeout: dir.timeout_ms,
    connectTimeout: dir.timeout_ms,
    ...(ldaps ? { tlsOptions: tls } : {}),
    ...oneSocketOnly(),
  });
  const setup = async (): Promise<void> => {
    if (!ldaps && dir.start_tls) await client.startTLS({ ...tls, host, ...(isIP(host) === 0 ? { servername: host } : {}) });
    await client.bind(dir.bind_dn, dir.bind_password);
  };
  // StartTLS's handshake has no timer of its own in ldapts: bound the whole setup.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connection within ${2 * dir.timeout_ms} ms`)), 2 * dir.timeout_ms);
  });
  const work = setup();
  work.catch(() => undefined);
  try {
    await Promise.race([work, deadline]);
    return client;
  } catch (err) {
    await client.unbind().catch(() => undefined);
    if (err instanceof InvalidCredentialsError) throw new Error(`the service account bind was refused (${err.message})`);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Lets a Client open its socket once; a re-open (after a drop) fails the operation instead. */
function oneSocketOnly(): { createConnection: typeof netConnect; createSecureConnection: typeof tlsConnect } {
  let plain = false;
  let secure = false;
  const createConnection = ((port: number, host: string) => {
    if (plain) throw new Error('refusing to re-open a dropped directory connection');
    plain = true;
    return netConnect(port, host);
  }) as typeof netConnect;
  const createSecureConnection = ((...args: [number, string, ConnectionOptions] | [ConnectionOptions]) => {
    if (secure) throw new Error('refusing to re-open a dropped directory connection');
    secure = true;
    return args.length === 1 ? tlsConnect(args[0]) : tlsConnect(args[0], args[1], args[2]);
  }) as typeof tlsConnect;
  return { createConnection, createSecureConnection };
}
