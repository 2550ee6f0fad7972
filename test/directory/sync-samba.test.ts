import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { ResolvedDirectory } from '../../src/config/config.js';
import { directorySchema } from '../../src/config/schema.js';
import { DirectorySync, type SyncReport } from '../../src/directory/sync/index.js';
import { createLogger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { SyncedUser } from '../../src/store/store.js';
import { requirePeer } from '../peers/require-peer.js';
import { SAMBA_AD_BASE_DN, requireSambaAd, startSambaAd } from '../peers/samba-ad.js';
import { tempDir } from '../peers/temp.js';

/**
 * Directory sync against a real Active Directory DC (Samba 4.17, on its own loopback address):
 * an OU item, a security group with a nested group (LDAP_MATCHING_RULE_IN_CHAIN) and a filter
 * item searched from the domain root (where Samba answers with referrals, never chased); a delta
 * by uSNChanged that picks up an added user, a changed phone, a disabled account
 * (userAccountControl 0x2), a user moved out of scope, a deleted user and a user who joined a
 * nested group; a different invocationId forcing a full run; the mass-deletion guard.
 */

const byName = (users: readonly SyncedUser[]): Map<string, SyncedUser> => new Map(users.map((u) => [u.username, u]));
const report = (reports: readonly SyncReport[], item: string): SyncReport => {
  const r = reports.find((x) => x.item === item);
  if (r === undefined) throw new Error(`no report for ${item}`);
  return r;
};
const sum = (reports: readonly SyncReport[], key: 'added' | 'updated' | 'disabled' | 'removed'): number => reports.reduce((n, r) => n + r[key], 0);

void t.test('Active Directory (Samba): initial sync, delta by USN, invocationId check, mass-deletion guard', async (t) => {
  if (!requirePeer(t, 'samba', 'samba-ad-dc') || !requirePeer(t, 'ldapsearch', 'ldap-utils')) return;
  if (!requireSambaAd(t)) return;
  const ad = await startSambaAd({ lockout: false, t });
  await ad.seed();
  const staffOu = `OU=Staff,${SAMBA_AD_BASE_DN}`;
  await ad.ldapadd(`dn: OU=Empty,${SAMBA_AD_BASE_DN}\nobjectClass: organizationalUnit\nou: Empty\n`);

  const dir = tempDir('sync-samba');
  t.teardown(() => dir.cleanup());
  const store = await openSqliteStore({ path: join(dir.path, 'gateway.db') });
  t.teardown(() => store.close());
  const logLines: string[] = [];
  const log = createLogger({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  const ca = readFileSync(ad.caFile);
  const directory = (sync: Record<string, unknown>): ResolvedDirectory => {
    const raw = directorySchema.parse({ flavour: 'ad', urls: [ad.ldapsUrl], bind_dn: ad.adminUpn, bind_password: { env: 'UNUSED' }, base_dn: SAMBA_AD_BASE_DN, sync });
    const { bind_password: _p, ca_file: _c, ...rest } = raw;
    return { ...rest, name: 'corp', bind_password: ad.adminPassword, ca };
  };
  const items = (staff = staffOu): Array<Record<string, unknown>> => [
    { name: 'staff', ou: staff },
    { name: 'vpn', group: ad.groupDn('VPN-Users'), method: 'totp' },
    { name: 'admins', filter: '(sAMAccountName=Administrator)' },
  ];
  const local = await store.createUser({ username: 'breakglass', passwordHash: 'scrypt$x' });
  let sync = new DirectorySync({ store, directories: [directory({ max_delete_percent: 50, defaults: { language: 'en' }, items: items() })], log });

  // --- initial sync -------------------------------------------------------------------------------
  const first = await sync.runOnce();
  t.same(first.map((r) => [r.item, r.kind, r.status]), [['staff', 'full', 'ok'], ['vpn', 'full', 'ok'], ['admins', 'full', 'ok']]);
  t.match(report(first, 'staff'), { added: 9, inScope: 9 }, 'user1-5 and the four special accounts');
  t.match(report(first, 'vpn'), { added: 0, unchanged: 8, inScope: 8 }, 'user1-3, the special accounts, and user4 through nested VPN-Admins');
  t.match(report(first, 'admins'), { added: 1, inScope: 1 }, 'found from the domain root, referrals ignored');
  t.ok(logLines.some((l) => l.includes('search references ignored')), 'Samba sent referrals; they were dropped, not chased');
  let users = byName(await store.listUsersBySource('directory:corp'));
  const user1 = users.get('user1');
  t.match(user1, {
    upn: 'user1@example.test',
    firstName: 'User',
    lastName: 'Number1',
    email: 'user1@example.test',
    phone: '+1 555 0101',
    mobile: '+1 555 0201',
    enabled: true,
    language: 'en',
    defaultMethod: null,
    items: ['staff', 'vpn'],
  });
  t.match(user1?.externalId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'objectGUID as GUID text');
  t.match(users.get('user4'), { items: ['staff', 'vpn'] }, 'nested group membership resolved by the in-chain rule');
  t.match(users.get('disabled1'), { enabled: false }, 'userAccountControl 0x2: stored disabled');
  t.match(users.get('Administrator'), { items: ['admins'], defaultMethod: null });
  const state = await store.getSyncState('directory:corp', 'staff');
  t.match(state, { highestUsn: /^\d+$/, invocationId: /^[0-9a-f-]{36}$/, server: /^CN=NTDS Settings,CN=DC1,/i });

  // --- changes, then a delta by uSNChanged ------------------------------------------------------------
  const pwd = Buffer.from('"Seeded-Pass-1"', 'utf16le').toString('base64');
  await ad.ldapadd(
    `dn: CN=user6,${staffOu}\nobjectClass: user\nsAMAccountName: user6\nuserPrincipalName: user6@example.test\ngivenName: User\nsn: Number6\ntelephoneNumber: +1 555 0106\nuserAccountControl: 512\nunicodePwd:: ${pwd}\n`,
  );
  await ad.ldapmodify(`dn: ${ad.userDn('user2')}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 7777\n`);
  await ad.ldapmodify(`dn: ${ad.userDn('user3')}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n`);
  await ad.ldapmodify(`dn: ${ad.userDn('user5')}\nchangetype: modrdn\nnewrdn: CN=user5\ndeleteoldrdn: 1\nnewsuperior: CN=Users,${SAMBA_AD_BASE_DN}\n`);
  await ad.ldapmodify(`dn: ${ad.userDn('mustchange1')}\nchangetype: delete\n`);
  await ad.ldapmodify(`dn: ${ad.groupDn('VPN-Admins')}\nchangetype: modify\nadd: member\nmember: CN=Administrator,CN=Users,${SAMBA_AD_BASE_DN}\n`);

  const preview = await sync.runOnce({ dryRun: true });
  t.same([sum(preview, 'added'), sum(preview, 'disabled'), sum(preview, 'removed')], [1, 3, 0], 'a dry run predicts the delta (mustchange1 leaves two items: counted once)');
  t.equal(byName(await store.listUsersBySource('directory:corp')).get('user3')?.enabled, true, '… and changes nothing');
  const delta = await sync.runOnce();
  t.same(delta.map((r) => [r.item, r.kind, r.status]), [['staff', 'delta', 'ok'], ['vpn', 'delta', 'ok'], ['admins', 'delta', 'ok']]);
  t.equal(sum(delta, 'added'), 1, 'user6');
  t.equal(sum(delta, 'disabled'), 3, 'user3 (userAccountControl), user5 (moved out), mustchange1 (deleted)');
  t.ok(report(delta, 'staff').updated >= 1, 'user2 phone');
  t.ok(report(delta, 'staff').seen <= 4, `only changed entries read in full (${report(delta, 'staff').seen})`);
  users = byName(await store.listUsersBySource('directory:corp'));
  t.match(users.get('user6'), { enabled: true, phone: '+1 555 0106', items: ['staff'] });
  t.match(users.get('user2'), { phone: '+1 555 7777' });
  t.match(users.get('user3'), { enabled: false, items: ['staff', 'vpn'] });
  t.match(users.get('user5'), { enabled: false, items: [] });
  t.match(users.get('mustchange1'), { enabled: false, items: [] });
  t.match(users.get('Administrator'), { items: ['admins', 'vpn'], defaultMethod: 'totp' }, 'joined VPN-Users through VPN-Admins; now the defaults of vpn, its first item in config order');
  t.same(await store.getUser(local.id), local, 'the local user is untouched');

  // --- another DC (or a restored one): a different invocationId forces a full run ------------------------
  const now = await store.getSyncState('directory:corp', 'staff');
  if (now === undefined) throw new Error('no state');
  await store.putSyncState({ ...now, invocationId: '00000000-0000-0000-0000-000000000001' });
  const again = await sync.runOnce({ item: 'staff' });
  t.match(again, [{ item: 'staff', kind: 'full', reason: 'the invocationId changed (the DC was restored or replaced)', status: 'ok', added: 0, disabled: 0, removed: 0 }]);
  t.equal((await store.getSyncState('directory:corp', 'staff'))?.invocationId, now.invocationId);

  // --- the mass-deletion guard: the OU moved to an empty one ---------------------------------------------------
  sync = new DirectorySync({ store, directories: [directory({ defaults: { language: 'en' }, items: items(`OU=Empty,${SAMBA_AD_BASE_DN}`) })], log });
  const refused = await sync.runOnce({ item: 'staff' });
  t.match(refused, [{ item: 'staff', status: 'refused', disabled: 0, inScope: 0 }]);
  t.match(refused[0]?.errors.at(-1), /^refused: this run would disable 1 of 9 synced users \(11\.1% > max_delete_percent 10%\)/);
  t.match(byName(await store.listUsersBySource('directory:corp')).get('user6'), { enabled: true });
  const forced = await sync.runOnce({ item: 'staff', force: true });
  t.match(forced, [{ item: 'staff', status: 'ok', disabled: 1 }], 'forced: user6 (only in staff) disabled; the others stay in vpn');
  t.match(byName(await store.listUsersBySource('directory:corp')).get('user1'), { enabled: true, items: ['vpn'] });

  const runs = await store.listSyncRuns({ source: 'directory:corp', item: 'staff' });
  t.same(runs.map((r) => `${r.kind}/${r.status}`).reverse(), ['full/ok', 'delta/ok', 'full/ok', 'full/refused', 'full/ok']);
  t.notOk(logLines.join('').includes(ad.adminPassword), 'the bind password never reaches the log');
});
