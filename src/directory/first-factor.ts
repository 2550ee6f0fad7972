import type { FirstFactorTarget, PasswordCheck, PasswordOutcome } from '../auth/first-factor-target.js';
import type { ResolvedDirectory } from '../config/config.js';
import type { Logger } from '../log.js';
import type { RadiusAttribute } from '../radius/codec/packet.js';
import type { DirectorySource } from '../store/types.js';
import { firstMatch, groupKey } from './groups.js';
import { LdapDirectory, type BindOutcome, type DirectoryOptions } from './ldap-directory.js';

/** What the first factor needs of a directory (LdapDirectory; a test may hand in another). */
export interface PasswordDirectory {
  /** `knownDn`: the entry's DN from the local sync, bound with directly (see LdapDirectory). */
  authenticate(login: string, password: string, knownDn?: string): Promise<BindOutcome>;
  groupsOf(dn: string): Promise<ReadonlySet<string>>;
  close(): Promise<void>;
}

interface Mapping {
  readonly group: string;
  /** groupKey(group): what LdapDirectory.groupsOf's set holds for that group. */
  readonly key: string;
  readonly attributes: readonly RadiusAttribute[];
}

/**
 * First factor `ldap:<name>`: the password is checked by binding to the directory as the user.
 *
 * With `reply_attributes`, an accepted user's groups (nested ones included) are then looked up
 * and the first entry whose group the user is in gives the reply attributes the NAS gets with the
 * final Access-Accept (after the second factor, across its challenge). Without it, no group is
 * ever searched. When the group lookup fails, the login is rejected as first_factor_unavailable
 * (thrown as UpstreamUnavailable): accepting without the attributes could drop the user into the
 * NAS's default group, which may grant more than the group the directory would have named.
 */
export class DirectoryFirstFactor implements FirstFactorTarget {
  readonly name: string;
  /** The source of users synced from this directory. */
  private readonly source: DirectorySource;
  private readonly directory: PasswordDirectory;
  private readonly mappings: readonly Mapping[];
  private readonly log: Logger;

  constructor(config: ResolvedDirectory, log: Logger, makeDirectory: (opts: DirectoryOptions) => PasswordDirectory = (opts) => new LdapDirectory(opts)) {
    this.name = `ldap:${config.name}`;
    this.source = `directory:${config.name}`;
    this.log = log.child({ module: 'directory', directory: config.name });
    this.mappings = (config.encoded_reply_attributes ?? []).map((m) => {
      const key = groupKey(m.group);
      // The schema refuses such a group at load; a hand-built config must not silently match nothing.
      if (key === undefined) throw new TypeError(`directory '${config.name}': reply_attributes group ${JSON.stringify(m.group)} is neither a DN nor a name`);
      return { group: m.group, key, attributes: m.attributes };
    });
    this.directory = makeDirectory({
      name: config.name,
      flavour: config.flavour,
      urls: config.urls,
      startTls: config.start_tls,
      insecure: config.insecure,
      ...(config.ca === undefined ? {} : { ca: config.ca }),
      bindDn: config.bind_dn,
      bindPassword: config.bind_password,
      baseDn: config.base_dn,
      timeoutMs: config.timeout_ms,
      poolSize: config.pool_size,
      log,
    });
  }

  async check(req: PasswordCheck): Promise<PasswordOutcome> {
    // A user synced from this very directory: its entry's DN is known, no search needed.
    const knownDn = req.user?.source === this.source ? (req.user.directoryDn ?? undefined) : undefined;
    const outcome = await this.directory.authenticate(req.login, req.password, knownDn);
    if (!outcome.ok) return { kind: 'reject', reason: outcome.reason, ...(outcome.diagnostic === undefined ? {} : { detail: outcome.diagnostic }) };
    if (this.mappings.length === 0) return { kind: 'accept', server: outcome.dn };
    // Throws UpstreamUnavailable on failure: never an accept that silently lost its group.
    const memberships = await this.directory.groupsOf(outcome.dn);
    const match = firstMatch(this.mappings, memberships);
    this.log.debug({ dn: outcome.dn, group: match?.group ?? null, attributes: match?.attributes.length ?? 0 }, 'reply attributes by group');
    if (match === undefined || match.attributes.length === 0) return { kind: 'accept', server: outcome.dn };
    return { kind: 'accept', server: outcome.dn, replyAttributes: match.attributes };
  }

  close(): Promise<void> {
    return this.directory.close();
  }
}
