import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import type { ReplyAttributeMapping, ResolvedDirectory } from '../../src/config/config.js';
import { encodeReplyAttributes, replyAttributesSchema } from '../../src/config/reply-attributes-schema.js';
import { DirectoryFirstFactor, type PasswordDirectory } from '../../src/directory/first-factor.js';
import { normaliseDn } from '../../src/directory/dn.js';
import { firstMatch, groupKey, groupSearchBase, membershipKeys } from '../../src/directory/groups.js';
import { LdapDirectory, type BindOutcome, type DirectoryOptions } from '../../src/directory/ldap-directory.js';
import { UpstreamUnavailable } from '../../src/errors.js';
import type { User } from '../../src/store/types.js';
import { silentLogger } from '../../src/log.js';
import { formatAttributes, type RadiusAttribute } from '../../src/radius/codec/index.js';
import { SEED, auditRecords, flowHarness } from '../auth/fixtures.js';
import { requirePeer } from '../peers/require-peer.js';
import { requireSambaAd, sambaDirectoryOptions, startSambaAd } from '../peers/samba-ad.js';
import { slapdDirectoryOptions, startSlapd, type RunningSlapd } from '../peers/slapd.js';

// Reply attributes by directory group: the DN/name keys, first-match order, the first factor's
// behaviour (including a failed group lookup), then nested groups against a real slapd and a real
// Samba AD DC.

const log = silentLogger();
const lines = (attributes: readonly RadiusAttribute[] | undefined): string[] => formatAttributes(attributes ?? []).map((l) => `${l.name} = ${l.value}`);
const mappings = (raw: unknown): ReplyAttributeMapping[] => encodeReplyAttributes(replyAttributesSchema.parse(raw));

function resolved(overrides: Partial<ResolvedDirectory> = {}): ResolvedDirectory {
  return {
    name: 'corp',
    flavour: 'ldap',
    urls: ['ldaps://127.0.0.1:1'],
    start_tls: true,
    insecure: false,
    bind_dn: 'cn=svc,dc=example,dc=test',
    bind_password: 'service-secret',
    base_dn: 'dc=example,dc=test',
    timeout_ms: 2000,
    pool_size: 2,
    ca: undefined,
    ...overrides,
  };
}

t.test('DNs compare by meaning, names without case', async (t) => {
  t.equal(normaliseDn('CN=VPN-Users, OU=Groups ,DC=Example,DC=Test'), 'cn=vpn-users,ou=groups,dc=example,dc=test');
  t.equal(normaliseDn('CN=Smith\\, John,DC=x'), normaliseDn('cn=smith\\2c john,dc=X'), '\\, and \\2C are one comma');
  t.equal(normaliseDn('cn=M\\C3\\BCller,dc=x'), normaliseDn('CN=Müller,DC=x'), 'hex-escaped UTF-8');
  t.equal(normaliseDn('cn=\\ lead\\ ,dc=x'), 'cn= lead ,dc=x', 'escaped blanks stay, unescaped ones go');
  t.equal(normaliseDn('cn=a\\,b,dc=x')?.split(',').length, 3, 'an escaped comma in a value is not a separator');
  t.not(normaliseDn('cn=a\\,b,dc=x'), normaliseDn('cn=a,b=,dc=x'));
  for (const bad of ['', 'cn=', 'cn=x,', 'noequals', 'cn=x\\', ',dc=x']) t.equal(normaliseDn(bad), undefined, JSON.stringify(bad));

  t.equal(groupKey('VPN-Users'), 'vpn-users', 'a name');
  t.equal(groupKey('  Domain Admins '), 'domain admins', 'trimmed, inner blanks kept');
  t.equal(groupKey('cn=VPN-Users,ou=groups,dc=example,dc=test'), 'cn=vpn-users,ou=groups,dc=example,dc=test', 'a DN');
  t.equal(groupKey(''), undefined);
  t.equal(groupKey('cn=x,,dc=y'), undefined, 'a malformed DN is no name either');

  const keys = membershipKeys([
    { dn: 'CN=VPN-Admins,CN=Users,DC=example,DC=test', names: ['VPN-Admins', 'vpn-admins-sam'] },
    { dn: 'cn=Odd,dc=x', names: ['cn=looks-like-a-dn'] },
  ]);
  t.same([...keys].sort(), ['cn=odd,dc=x', 'cn=vpn-admins,cn=users,dc=example,dc=test', 'vpn-admins', 'vpn-admins-sam'], 'DNs and names; a name that looks like a DN is dropped');

  t.equal(groupSearchBase('OU=Staff,DC=example,DC=test'), 'DC=example,DC=test', 'the domain of an OU base');
  t.equal(groupSearchBase('dc=example, dc=test'), 'dc=example, dc=test', 'a domain base as it is');
  t.equal(groupSearchBase('ou=people,o=Example'), 'ou=people,o=Example', 'no DC= RDNs: the base itself');
});

t.test('the first matching entry wins, in configuration order', async (t) => {
  const list = [
    { key: 'vpn-admins', id: 0 },
    { key: 'vpn-users', id: 1 },
    { key: 'cn=contractors,dc=x', id: 2 },
  ];
  t.equal(firstMatch(list, new Set(['vpn-users', 'vpn-admins']))?.id, 0, 'member of both: the earlier entry');
  t.equal(firstMatch(list, new Set(['vpn-users', 'cn=contractors,dc=x']))?.id, 1);
  t.equal(firstMatch(list, new Set(['cn=contractors,dc=x']))?.id, 2);
  t.equal(firstMatch(list, new Set(['other'])), undefined, 'no mapped group');
  t.equal(firstMatch(list, new Set()), undefined);
});

/** A directory answering from tables, counting group lookups. */
class FakeDirectory implements PasswordDirectory {
  lookups = 0;
  groupsDown = false;
  /** The knownDn of each authenticate call. */
  readonly knownDns: Array<string | undefined> = [];
  constructor(private readonly groups: Record<string, string[]>) {}
  async authenticate(login: string, password: string, knownDn?: string): Promise<BindOutcome> {
    this.knownDns.push(knownDn);
    return password === 'right' ? { ok: true, dn: `uid=${login},ou=people,dc=example,dc=test` } : { ok: false, reason: 'bad_password' };
  }
  async groupsOf(dn: string): Promise<ReadonlySet<string>> {
    this.lookups++;
    if (this.groupsDown) throw new UpstreamUnavailable('directory hiccup: no server could look up group memberships');
    const uid = /^uid=([^,]+)/.exec(dn)?.[1] ?? '';
    return membershipKeys((this.groups[uid] ?? []).map((cn) => ({ dn: `cn=${cn},ou=groups,dc=example,dc=test`, names: [cn] })));
  }
  async close(): Promise<void> {}
}

const MAPPINGS = mappings([
  { group: 'Quarantine', attributes: {} },
  { group: 'VPN-Admins', attributes: { 'Fortinet-Group-Name': 'vpn-admins', 'Tunnel-Type': 'VLAN', 'Tunnel-Medium-Type': 'IEEE-802', 'Tunnel-Private-Group-Id': 10 } },
  { group: 'cn=VPN-Users,ou=groups,dc=example,dc=test', attributes: { 'Fortinet-Group-Name': 'vpn-users', 'Tunnel-Private-Group-Id': 42 } },
]);

t.test('DirectoryFirstFactor: reply attributes of the first matching group', async (t) => {
  const fake = new FakeDirectory({ alice: ['VPN-Users'], bob: ['VPN-Users', 'VPN-Admins'], carol: ['Quarantine', 'VPN-Users'], dave: ['Printers'] });
  const ff = new DirectoryFirstFactor(resolved({ encoded_reply_attributes: MAPPINGS }), log, () => fake);
  const check = (login: string, password = 'right') => ff.check({ attempt: undefined as never, login, password, user: undefined });

  const alice = await check('alice');
  t.same(alice.kind === 'accept' ? lines(alice.replyAttributes) : alice, ['Fortinet-Group-Name = "vpn-users"', 'Tunnel-Private-Group-Id = "42"'], 'by DN');
  const bob = await check('bob');
  t.same(
    bob.kind === 'accept' ? lines(bob.replyAttributes) : bob,
    ['Fortinet-Group-Name = "vpn-admins"', 'Tunnel-Type = VLAN', 'Tunnel-Medium-Type = IEEE-802', 'Tunnel-Private-Group-Id = "10"'],
    'in both groups: the earlier entry (by name)',
  );
  const carol = await check('carol');
  t.same(carol, { kind: 'accept', server: 'uid=carol,ou=people,dc=example,dc=test' }, 'an empty entry that matches first: accepted with nothing');
  t.same(await check('dave'), { kind: 'accept', server: 'uid=dave,ou=people,dc=example,dc=test' }, 'no mapped group: accepted with nothing');
  const lookups = fake.lookups;
  t.same(await check('alice', 'wrong'), { kind: 'reject', reason: 'bad_password' });
  t.equal(fake.lookups, lookups, 'no group lookup for a wrong password');

  fake.groupsDown = true;
  await t.rejects(check('alice'), UpstreamUnavailable, 'a failed group lookup is a fault, never an accept without the group');

  const plain = new FakeDirectory({ alice: ['VPN-Users'] });
  const without = new DirectoryFirstFactor(resolved(), log, () => plain);
  t.same(await without.check({ attempt: undefined as never, login: 'alice', password: 'right', user: undefined }), { kind: 'accept', server: 'uid=alice,ou=people,dc=example,dc=test' });
  t.equal(plain.lookups, 0, 'without reply_attributes no group is ever looked up');
});

t.test('DirectoryFirstFactor: the DN the sync stored is handed on for users of that very directory only', async (t) => {
  const fake = new FakeDirectory({});
  const ff = new DirectoryFirstFactor(resolved(), log, () => fake);
  const user = (source: User['source'], directoryDn: string | null): User =>
    ({ id: 'u', username: 'alice', source, directoryDn }) as unknown as User;
  const dn = 'uid=alice,ou=people,dc=example,dc=test';
  for (const u of [user(`directory:${resolved().name}`, dn), user('directory:other', dn), user('local', null), undefined]) {
    await ff.check({ attempt: undefined as never, login: 'alice', password: 'right', user: u });
  }
  t.same(fake.knownDns, [dn, undefined, undefined, undefined]);
});

t.test('the flow: attributes ride on the final accept, across the challenge; a group fault rejects first_factor_unavailable', async (t) => {
  const fake = new FakeDirectory({ alice: ['VPN-Admins', 'VPN-Users'] });
  const target = new DirectoryFirstFactor(resolved({ encoded_reply_attributes: MAPPINGS }), log, () => fake);
  const directory = { flavour: 'ldap', urls: ['ldaps://127.0.0.1:1'], bind_dn: 'svc', bind_password: { env: 'UNUSED' }, base_dn: 'dc=example,dc=test' };
  const h = await flowHarness(
    { lockout: { max_failures: 0 }, directories: { corp: directory }, policies: { default: { first_factor: 'ldap:corp', fail_mode: 'safe' }, nps: { first_factor: 'none' } } },
    undefined,
    { get: (name) => (name === target.name ? target : undefined) },
  );
  t.teardown(() => h.cleanup());
  await h.addUser('alice');
  const admins = ['Fortinet-Group-Name = "vpn-admins"', 'Tunnel-Type = VLAN', 'Tunnel-Medium-Type = IEEE-802', 'Tunnel-Private-Group-Id = "10"'];

  const inline = await h.flow.run(h.attempt({ username: 'alice', password: `right,${h.code(SEED)}` }));
  t.same(inline.kind === 'accept' ? lines(inline.attributes) : inline, admins, 'inline code: on the accept');

  h.now += 30_000;
  const asked = await h.flow.run(h.attempt({ username: 'alice', password: 'right' }));
  t.match(asked, { kind: 'challenge', reason: 'challenge_code' }, 'without the code: the challenge (which has no attributes)');
  const state = asked.kind === 'challenge' ? asked.state : Buffer.alloc(0);
  const done = await h.flow.run(h.attempt({ username: 'alice', state, response: h.code(SEED) }));
  t.same(done.kind === 'accept' ? lines(done.attributes) : done, admins, "after the gateway's own challenge: on the accept");

  h.now += 30_000;
  fake.groupsDown = true;
  const down = await h.flow.run(h.attempt({ username: 'alice', password: `right,${h.code(SEED)}` }));
  t.match(down, { kind: 'reject', reason: 'first_factor_unavailable' }, 'rejected, even with fail_mode: safe');
  const records = await auditRecords(h.store);
  t.same(records.at(-1) && [records.at(-1)?.result, records.at(-1)?.reason], ['reject', 'first_factor_unavailable'], 'and audited so');
});

// ---------------------------------------------------------------------------------------------
// OpenLDAP

const slapdOptions = (slapd: RunningSlapd, overrides: Partial<DirectoryOptions> = {}): DirectoryOptions => slapdDirectoryOptions(slapd, log, overrides);

/** slapd's log once it stopped growing for 150 ms (it arrives through a pipe, after the answers). */
async function settledLogs(slapd: RunningSlapd): Promise<string> {
  let last = slapd.logs();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const now = slapd.logs();
    if (now.length === last.length) return now;
    last = now;
  }
}

/** Group searches slapd has logged (`SRCH … filter="(|(member=…`). */
async function groupSearches(slapd: RunningSlapd): Promise<number> {
  return (await settledLogs(slapd)).split('\n').filter((l) => l.includes(' SRCH ') && l.includes('filter="(|(member=')).length;
}

t.test('OpenLDAP (slapd): nested groups by member, order, cycles, cache', async (t) => {
  if (!requirePeer(t, 'slapd', 'slapd') || !requirePeer(t, 'ldapsearch', 'ldap-utils')) return;
  const started = performance.now();
  // The default seed: VPN-Users = user1, user2, user3 and the nested group VPN-Admins (= user4); user5 in no group.
  const slapd = await startSlapd({ t });
  t.comment(`slapd up in ${Math.round(performance.now() - started)} ms`);
  const g = (cn: string): string => slapd.groupDn(cn);
  // A cycle (Loop-A ∋ user5, Loop-B ∋ Loop-A, Loop-A ∋ Loop-B), a groupOfUniqueNames, a DN with an escaped comma.
  await slapd.ldapadd(
    [
      `dn: ${g('Loop-A')}\nobjectClass: groupOfNames\ncn: Loop-A\nmember: ${slapd.userDn('user5')}\n`,
      `dn: ${g('Loop-B')}\nobjectClass: groupOfNames\ncn: Loop-B\nmember: ${g('Loop-A')}\n`,
      `dn: ${g('Unique')}\nobjectClass: groupOfUniqueNames\ncn: Unique\nuniqueMember: ${slapd.userDn('user3')}\n`,
      `dn: cn=Ops\\, Berlin,ou=groups,${slapd.baseDn}\nobjectClass: groupOfNames\ncn: Ops, Berlin\nmember: ${slapd.userDn('user2')}\n`,
    ].join('\n'),
  );
  await slapd.ldapmodify(`dn: ${g('Loop-A')}\nchangetype: modify\nadd: member\nmember: ${g('Loop-B')}\n`);

  t.test('groupsOf: direct, nested, unique members, cycles', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, { groupsCacheMs: 0 }));
    t.teardown(() => dir.close());
    const user4 = await dir.groupsOf(slapd.userDn('user4'));
    t.same([...user4].sort(), [normaliseDn(g('VPN-Admins')), normaliseDn(g('VPN-Users')), 'vpn-admins', 'vpn-users'].sort(), 'user4: VPN-Admins and, through it, VPN-Users');
    const user1 = await dir.groupsOf(slapd.userDn('user1'));
    t.same([...user1].sort(), [normaliseDn(g('VPN-Users')), 'vpn-users'].sort(), 'user1: VPN-Users only');
    const user3 = await dir.groupsOf(slapd.userDn('user3'));
    t.ok(user3.has('unique') && user3.has('vpn-users'), 'groupOfUniqueNames counts');
    const user2 = await dir.groupsOf(slapd.userDn('user2'));
    t.ok(user2.has(normaliseDn('CN=Ops\\2C Berlin,OU=groups,DC=example,DC=test') ?? '-'), 'a DN with an escaped comma, written another way');
    t.ok(user2.has('ops, berlin'), 'and its cn');
    const user5 = await dir.groupsOf(slapd.userDn('user5'));
    t.same([...user5].sort(), [normaliseDn(g('Loop-A')), normaliseDn(g('Loop-B')), 'loop-a', 'loop-b'].sort(), 'a cycle ends: each group once');
    t.same([...(await dir.groupsOf(slapd.userDn('other1')))], [], 'other1: no groups');
  });

  t.test('the first factor: a nested member matches VPN-Users; an earlier VPN-Admins entry wins for user4', async (t) => {
    const attempt = undefined as never;
    const usersOnly = new DirectoryFirstFactor(
      resolved({
        flavour: 'ldap',
        urls: [slapd.ldapsUrl],
        start_tls: false,
        ca: readFileSync(slapd.caFile),
        bind_dn: slapd.adminDn,
        bind_password: slapd.adminPassword,
        base_dn: slapd.baseDn,
        encoded_reply_attributes: mappings([{ group: 'VPN-Users', attributes: { 'Fortinet-Group-Name': 'vpn-users', 'Tunnel-Private-Group-Id': 42 } }]),
      }),
      log,
    );
    t.teardown(() => usersOnly.close());
    for (const [user, password] of [
      ['user1', 'Passw0rd-1'],
      ['user4', 'Passw0rd-4'],
    ] as const) {
      const outcome = await usersOnly.check({ attempt, login: user, password, user: undefined });
      t.same(outcome.kind === 'accept' ? lines(outcome.replyAttributes) : outcome, ['Fortinet-Group-Name = "vpn-users"', 'Tunnel-Private-Group-Id = "42"'], `${user} (${user === 'user4' ? 'nested' : 'direct'}): VPN-Users`);
    }
    t.same(await usersOnly.check({ attempt, login: 'user5', password: 'Passw0rd-5', user: undefined }), { kind: 'accept', server: slapd.userDn('user5') }, 'user5: no mapped group, no attributes');
    t.same(await usersOnly.check({ attempt, login: 'user4', password: 'wrong', user: undefined }), { kind: 'reject', reason: 'bad_password' });

    const ordered = new DirectoryFirstFactor(
      resolved({
        flavour: 'ldap',
        urls: [slapd.ldapsUrl],
        start_tls: false,
        ca: readFileSync(slapd.caFile),
        bind_dn: slapd.adminDn,
        bind_password: slapd.adminPassword,
        base_dn: slapd.baseDn,
        encoded_reply_attributes: mappings([
          { group: g('VPN-Admins').toUpperCase(), attributes: { 'Fortinet-Group-Name': 'vpn-admins' } },
          { group: 'VPN-Users', attributes: { 'Fortinet-Group-Name': 'vpn-users' } },
        ]),
      }),
      log,
    );
    t.teardown(() => ordered.close());
    const user4 = await ordered.check({ attempt, login: 'user4', password: 'Passw0rd-4', user: undefined });
    t.same(user4.kind === 'accept' ? lines(user4.replyAttributes) : user4, ['Fortinet-Group-Name = "vpn-admins"'], 'user4: the earlier VPN-Admins entry (by DN, in capitals)');
    const user1 = await ordered.check({ attempt, login: 'user1', password: 'Passw0rd-1', user: undefined });
    t.same(user1.kind === 'accept' ? lines(user1.replyAttributes) : user1, ['Fortinet-Group-Name = "vpn-users"'], 'user1: VPN-Users');
  });

  t.test('no group search without reply_attributes; one per level with them; cached per DN', async (t) => {
    const plain = new DirectoryFirstFactor(
      resolved({ urls: [slapd.ldapsUrl], start_tls: false, ca: readFileSync(slapd.caFile), bind_dn: slapd.adminDn, bind_password: slapd.adminPassword, base_dn: slapd.baseDn }),
      log,
    );
    t.teardown(() => plain.close());
    let before = await groupSearches(slapd);
    t.equal((await plain.check({ attempt: undefined as never, login: 'user4', password: 'Passw0rd-4', user: undefined })).kind, 'accept');
    t.equal(await groupSearches(slapd), before, 'no group search');

    const dir = new LdapDirectory(slapdOptions(slapd));
    t.teardown(() => dir.close());
    before = await groupSearches(slapd);
    const first = await dir.groupsOf(slapd.userDn('user4'));
    t.equal((await groupSearches(slapd)) - before, 3, 'user4: three levels (VPN-Admins, VPN-Users, nothing above)');
    before = await groupSearches(slapd);
    const [again, spelled] = await Promise.all([dir.groupsOf(slapd.userDn('user4')), dir.groupsOf(slapd.userDn('user4').toUpperCase())]);
    t.equal(await groupSearches(slapd), before, 'then from the cache (whatever the DN spelling)');
    t.same([...again], [...first]);
    t.same([...spelled], [...first]);

    const uncached = new LdapDirectory(slapdOptions(slapd, { groupsCacheMs: 0 }));
    t.teardown(() => uncached.close());
    before = await groupSearches(slapd);
    await uncached.groupsOf(slapd.userDn('user1'));
    await uncached.groupsOf(slapd.userDn('user1'));
    t.equal((await groupSearches(slapd)) - before, 4, 'groupsCacheMs: 0 searches every time (two levels each)');
  });

  t.test('a directory that does not answer is a fault, never "no groups"', async (t) => {
    const dir = new LdapDirectory(slapdOptions(slapd, { urls: ['ldaps://127.0.0.1:1'], timeoutMs: 500 }));
    t.teardown(() => dir.close());
    await t.rejects(dir.groupsOf(slapd.userDn('user1')), { name: 'UpstreamUnavailable', message: /no server could look up group memberships/ });
  });
});

// ---------------------------------------------------------------------------------------------
// Active Directory

t.test('Active Directory (Samba AD DC): matching rule in chain', async (t) => {
  if (!requirePeer(t, 'samba', 'samba-ad-dc')) return;
  if (!requireSambaAd(t)) return;
  const started = performance.now();
  const dc = await startSambaAd({ t });
  await dc.seed();
  t.comment(`Samba AD DC up and seeded in ${Math.round(performance.now() - started)} ms`);
  const ca = readFileSync(dc.caFile);
  const options = (overrides: Partial<DirectoryOptions> = {}): DirectoryOptions => sambaDirectoryOptions(dc, log, { groupsCacheMs: 0, ...overrides });

  t.test('groupsOf: direct and nested memberships with DN, cn and sAMAccountName', async (t) => {
    const dir = new LdapDirectory(options());
    t.teardown(() => dir.close());
    const user4 = await dir.groupsOf(dc.userDn('user4'));
    for (const key of [normaliseDn(dc.groupDn('VPN-Admins')), normaliseDn(dc.groupDn('VPN-Users')), 'vpn-admins', 'vpn-users']) t.ok(user4.has(key ?? '-'), `user4 (nested): ${key}`);
    const user1 = await dir.groupsOf(dc.userDn('user1'));
    t.ok(user1.has('vpn-users') && !user1.has('vpn-admins'), 'user1: VPN-Users only');
    t.notOk((await dir.groupsOf(dc.userDn('user5'))).has('vpn-users'), 'user5: not in VPN-Users');
    // A base DN below the domain (users in OU=Staff): the groups in CN=Users are still found.
    const staff = new LdapDirectory(options({ baseDn: `OU=Staff,${dc.baseDn}` }));
    t.teardown(() => staff.close());
    t.ok((await staff.groupsOf(dc.userDn('user4'))).has('vpn-users'), 'base OU=Staff: groups are searched in the whole domain');
  });

  t.test('the first factor: nested member, order, no group', async (t) => {
    const ad = (encoded: ReplyAttributeMapping[]): DirectoryFirstFactor =>
      new DirectoryFirstFactor(
        resolved({ name: 'ad', flavour: 'ad', urls: [dc.ldapsUrl], start_tls: false, ca, bind_dn: dc.adminDn, bind_password: dc.adminPassword, base_dn: dc.baseDn, timeout_ms: 5000, encoded_reply_attributes: encoded }),
        log,
      );
    const attempt = undefined as never;
    const usersOnly = ad(mappings([{ group: 'VPN-Users', attributes: { 'PaloAlto-User-Group': 'gp-users', 'Tunnel-Private-Group-Id': 42 } }]));
    t.teardown(() => usersOnly.close());
    for (const user of ['user1', 'user4']) {
      const outcome = await usersOnly.check({ attempt, login: user, password: dc.userPassword, user: undefined });
      t.same(outcome.kind === 'accept' ? lines(outcome.replyAttributes) : outcome, ['PaloAlto-User-Group = "gp-users"', 'Tunnel-Private-Group-Id = "42"'], `${user}: VPN-Users`);
    }
    t.same(await usersOnly.check({ attempt, login: 'user5', password: dc.userPassword, user: undefined }), { kind: 'accept', server: dc.userDn('user5') }, 'user5: nothing');

    const ordered = ad(
      mappings([
        { group: dc.groupDn('VPN-Admins').toLowerCase(), attributes: { 'Cisco-AVPair': ['shell:priv-lvl=15'] } },
        { group: 'VPN-Users', attributes: { 'Cisco-AVPair': ['shell:priv-lvl=1'] } },
      ]),
    );
    t.teardown(() => ordered.close());
    const user4 = await ordered.check({ attempt, login: 'user4@example.test', password: dc.userPassword, user: undefined });
    t.same(user4.kind === 'accept' ? lines(user4.replyAttributes) : user4, ['Cisco-AVPair = "shell:priv-lvl=15"'], 'user4: the earlier VPN-Admins entry');
    const user2 = await ordered.check({ attempt, login: 'EXAMPLE\\user2', password: dc.userPassword, user: undefined });
    t.same(user2.kind === 'accept' ? lines(user2.replyAttributes) : user2, ['Cisco-AVPair = "shell:priv-lvl=1"'], 'user2: VPN-Users');
  });
});
