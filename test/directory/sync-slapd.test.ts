import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ResolvedDirectory } from '../../src/config/config.js';
import { directorySchema } from '../../src/config/schema.js';
import { DirectorySync, type SyncReport } from '../../src/directory/sync/index.js';
import { createLogger, type Logger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store, SyncedUser } from '../../src/store/store.js';
import { requirePeer } from '../peers/require-peer.js';
import { DEFAULT_SLAPD_GROUPS, DEFAULT_SLAPD_USERS, startSlapd, type RunningSlapd } from '../peers/slapd.js';
import { tempDir } from '../peers/temp.js';

/**
 * Directory sync against a real OpenLDAP (slapd 2.5, loopback only): the initial sync of an OU,
 * a nested groupOfNames and a filter item; a delta that picks up an added user, a changed phone,
 * disabled accounts (pwdAccountLockedTime, shadowExpire), a user moved out of scope and a deleted
 * one; the mass-deletion guard; on_removed: delete; local users untouched throughout.
 */

const EXTRA_USERS = [
  { uid: 'alice', password: 'Passw0rd-a', givenName: 'Alice', sn: 'Clash' }, // a local user has this name
  { uid: 'mover', password: 'Passw0rd-m', givenName: 'Mo', sn: 'Ver', telephoneNumber: '+1 555 0301' },
  { uid: 'gone', password: 'Passw0rd-g', givenName: 'Gone', sn: 'Soon' },
];

interface Setup {
  slapd: RunningSlapd;
  store: Store;
  logLines: string[];
  log: Logger;
  directory(sync: Record<string, unknown>): ResolvedDirectory;
}

async function setup(t: Test): Promise<Setup> {
  const slapd = await startSlapd({ users: [...DEFAULT_SLAPD_USERS, ...EXTRA_USERS], groups: [...DEFAULT_SLAPD_GROUPS], t });
  // The schemas behind the two OpenLDAP "disabled" markers, and syncprov for contextCSN.
  await slapd.ldapadd(readFileSync('/etc/ldap/schema/nis.ldif', 'utf8'));
  await slapd.ldapmodify('dn: cn=module{0},cn=config\nchangetype: modify\nadd: olcModuleLoad\nolcModuleLoad: ppolicy\nolcModuleLoad: syncprov\n');
  await slapd.ldapadd('dn: olcOverlay=ppolicy,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\nobjectClass: olcPPolicyConfig\nolcOverlay: ppolicy\n');
  await slapd.ldapadd('dn: olcOverlay=syncprov,olcDatabase={1}mdb,cn=config\nobjectClass: olcOverlayConfig\nobjectClass: olcSyncProvConfig\nolcOverlay: syncprov\n');
  // The first contextCSN, a second after the seed: a delta then reads only what changed after it.
  await new Promise((r) => setTimeout(r, 1100));
  await slapd.ldapadd(`dn: ou=empty,${slapd.baseDn}\nobjectClass: organizationalUnit\nou: empty\n`);
  const dir = tempDir('sync-slapd');
  t.teardown(() => dir.cleanup());
  const store = await openSqliteStore({ path: join(dir.path, 'gateway.db') });
  t.teardown(() => store.close());
  const logLines: string[] = [];
  const log = createLogger({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  const ca = readFileSync(slapd.caFile);
  return {
    slapd,
    store,
    logLines,
    log,
    directory(sync) {
      const raw = directorySchema.parse({
        flavour: 'ldap',
        urls: [slapd.ldapsUrl],
        bind_dn: slapd.adminDn,
        bind_password: { env: 'UNUSED' },
        base_dn: slapd.baseDn,
        sync,
      });
      const { bind_password: _p, ca_file: _c, ...rest } = raw;
      return { ...rest, name: 'corp', bind_password: slapd.adminPassword, ca };
    },
  };
}

const byName = (users: readonly SyncedUser[]): Map<string, SyncedUser> => new Map(users.map((u) => [u.username, u]));
const report = (reports: readonly SyncReport[], item: string): SyncReport => {
  const r = reports.find((x) => x.item === item);
  if (r === undefined) throw new Error(`no report for ${item}`);
  return r;
};
const sum = (reports: readonly SyncReport[], key: 'added' | 'updated' | 'disabled' | 'removed'): number => reports.reduce((n, r) => n + r[key], 0);

const ITEMS = (baseDn: string): Array<Record<string, unknown>> => [
  { name: 'people', ou: `ou=people,${baseDn}`, method: 'totp', language: 'en' },
  { name: 'vpn', group: `cn=VPN-Users,ou=groups,${baseDn}`, language: 'de' },
  { name: 'others', filter: '(sn=One)' },
];

void t.test('OpenLDAP: initial sync, delta, mass-deletion guard, on_removed delete', async (t) => {
  if (!requirePeer(t, 'slapd', 'slapd')) return;
  const s = await setup(t);
  const { slapd, store } = s;
  const localAlice = await store.createUser({ username: 'alice', email: 'alice@local', passwordHash: 'scrypt$x' });
  const localAdmin = await store.createUser({ username: 'localadmin', phone: '+1 555 9999' });
  const baseSync = { max_delete_percent: 50, items: ITEMS(slapd.baseDn) };
  let sync = new DirectorySync({ store, directories: [s.directory(baseSync)], log: s.log });

  // --- initial sync ---------------------------------------------------------------------------
  const progress: number[] = [];
  const first = await sync.runOnce({ onProgress: (done) => progress.push(done) });
  t.same(first.map((r) => [r.item, r.kind, r.status]), [['people', 'full', 'ok'], ['vpn', 'full', 'ok'], ['others', 'full', 'ok']]);
  t.match(report(first, 'people'), { added: 7, seen: 8, inScope: 8 }, 'user1-5, mover, gone; alice conflicts');
  t.match(report(first, 'people').errors, [/alice .*taken \(by local user alice\)/]);
  t.match(report(first, 'vpn'), { added: 0, unchanged: 4, inScope: 4 }, 'user1-3 and, through VPN-Admins, user4');
  t.match(report(first, 'others'), { added: 1, inScope: 1 }, 'other1, outside ou=people, by filter');
  t.ok(progress.length > 0 && progress.at(-1) === 13, 'progress counted every entry');
  let users = byName(await store.listUsersBySource('directory:corp'));
  t.same([...users.keys()].sort(), ['gone', 'mover', 'other1', 'user1', 'user2', 'user3', 'user4', 'user5']);
  const user1 = users.get('user1');
  t.match(user1, {
    source: 'directory:corp',
    firstName: 'User',
    lastName: 'Number1',
    email: 'user1@example.test',
    phone: '+1 555 0101',
    mobile: '+1 555 0201',
    enabled: true,
    defaultMethod: 'totp',
    language: 'en',
    items: ['people', 'vpn'],
  });
  t.match(user1?.externalId, /^[0-9a-f]{8}-[0-9a-f]{4}-/, 'entryUUID is the external id');
  t.equal(user1?.id, user1?.externalId);
  t.match(users.get('user4'), { items: ['people', 'vpn'], language: 'en' }, 'defaults of the first item (in config order) that holds the user');
  t.match(users.get('other1'), { items: ['others'], defaultMethod: null, language: null });
  t.same(await store.getUser(localAlice.id), localAlice, 'the local alice is untouched');

  // A token on mover, who will be moved out of scope (disabled: its token stays).
  const moverToken = await store.addToken({ userId: users.get('mover')!.id, kind: 'totp', label: 'phone', algorithm: 'SHA1', digits: 6, period: 30, sealedSecret: Buffer.from([1, 2, 3]) });

  // --- changes, then a delta ---------------------------------------------------------------------
  const people = `ou=people,${slapd.baseDn}`;
  await slapd.ldapadd(`dn: uid=user6,${people}\nobjectClass: inetOrgPerson\nuid: user6\ncn: User Six\ngivenName: User\nsn: Number6\nmail: user6@example.test\ntelephoneNumber: +1 555 0106\n`);
  await slapd.ldapmodify(`dn: ${slapd.userDn('user2')}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 7777\n`);
  await slapd.ldapmodify(`dn: ${slapd.userDn('user1')}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n`);
  await slapd.ldapmodify(`dn: ${slapd.userDn('user3')}\nchangetype: modify\nadd: objectClass\nobjectClass: shadowAccount\n-\nadd: shadowExpire\nshadowExpire: 1\n`);
  await slapd.ldapmodify(`dn: ${slapd.userDn('mover')}\nchangetype: modrdn\nnewrdn: uid=mover\ndeleteoldrdn: 1\nnewsuperior: ou=other,${slapd.baseDn}\n`);
  await slapd.ldapmodify(`dn: ${slapd.userDn('gone')}\nchangetype: delete\n`);

  const preview = await sync.runOnce({ dryRun: true });
  t.match(report(preview, 'people'), { kind: 'delta', dryRun: true, added: 1, updated: 1, disabled: 4, removed: 0 }, 'a dry run predicts the delta exactly');
  t.equal(byName(await store.listUsersBySource('directory:corp')).get('user2')?.phone, '+1 555 0102', '… and changes nothing');
  const delta = await sync.runOnce();
  const p = report(delta, 'people');
  t.match(p, { kind: 'delta', status: 'ok', added: 1, updated: 1, disabled: 4, removed: 0 }, 'user6 added; user2 updated; user1, user3 (flags), mover, gone (out of scope) disabled');
  t.ok(p.seen <= 5, `the delta read only changed entries (${p.seen})`);
  t.equal(report(delta, 'vpn').kind, 'full', 'OpenLDAP group items read their members each time');
  users = byName(await store.listUsersBySource('directory:corp'));
  t.match(users.get('user6'), { enabled: true, phone: '+1 555 0106', items: ['people'] });
  t.match(users.get('user2'), { phone: '+1 555 7777', enabled: true });
  t.match(users.get('user1'), { enabled: false, items: ['people', 'vpn'] }, 'pwdAccountLockedTime: disabled, still in scope');
  t.match(users.get('user3'), { enabled: false }, 'shadowExpire in the past: disabled');
  t.match(users.get('mover'), { enabled: false, items: [] }, 'moved out of scope: disabled');
  t.match(users.get('gone'), { enabled: false, items: [] }, 'deleted in the directory: disabled');
  t.equal((await store.getToken(moverToken.id))?.userId, users.get('mover')?.id, 'a disabled user keeps its tokens');
  t.match(users.get('user4'), { enabled: true }, 'untouched users stay as they were');
  t.same(await store.getUser(localAdmin.id), localAdmin, 'local users untouched by the delta');

  // --- the mass-deletion guard: people now points at an empty OU --------------------------------
  const emptied = { ...baseSync, max_delete_percent: 10, items: [{ ...ITEMS(slapd.baseDn)[0], ou: `ou=empty,${slapd.baseDn}` }, ...ITEMS(slapd.baseDn).slice(1)] };
  sync = new DirectorySync({ store, directories: [s.directory(emptied)], log: s.log });
  const stateBefore = await store.getSyncState('directory:corp', 'people');
  const refused = await sync.runOnce();
  const rp = report(refused, 'people');
  t.match(rp, { kind: 'full', reason: 'the item or the attribute mapping changed', status: 'refused', disabled: 0, inScope: 0 });
  t.match(rp.errors.at(-1), /^refused: this run would disable 2 of 7 synced users \(28\.6% > max_delete_percent 10%\); nobody was disabled/);
  users = byName(await store.listUsersBySource('directory:corp'));
  t.match(users.get('user6'), { enabled: true, items: ['people'] }, 'nobody disabled by a refused run');
  t.match(users.get('user5'), { enabled: true, items: ['people'] });
  t.match(users.get('user2'), { enabled: true, items: ['people', 'vpn'] });
  t.same(await store.getSyncState('directory:corp', 'people'), stateBefore, 'a refused run keeps the watermark where it was');

  const forced = await sync.runOnce({ force: true });
  t.match(report(forced, 'people'), { status: 'ok', disabled: 2, forced: true }, 'with --force: user5 and user6 disabled');
  users = byName(await store.listUsersBySource('directory:corp'));
  t.match(users.get('user5'), { enabled: false, items: [] });
  t.match(users.get('user2'), { enabled: true, items: ['vpn'] }, 'still in vpn: kept');

  // --- on_removed: delete takes the user and its tokens --------------------------------------------
  sync = new DirectorySync({ store, directories: [s.directory({ ...baseSync, on_removed: 'delete', max_delete_percent: 100 })], log: s.log });
  await sync.runOnce(); // back to ou=people: everyone returns
  t.match(byName(await store.listUsersBySource('directory:corp')).get('user5'), { enabled: true, items: ['people'] }, 'back in scope: enabled again');
  await slapd.ldapmodify(`dn: ${slapd.userDn('user5')}\nchangetype: delete\n`);
  const user5 = (await store.findUser('user5'))!;
  await store.addToken({ userId: user5.id, kind: 'totp', label: 'phone', algorithm: 'SHA1', digits: 6, period: 30, sealedSecret: Buffer.from([4]) });
  const deleted = await sync.runOnce();
  t.equal(sum(deleted, 'removed'), 1, 'user5 deleted; mover and gone (disabled earlier, in no item) are not touched again');
  t.equal(report(deleted, 'people').kind, 'delta');
  t.equal(await store.findUser('user5'), undefined);
  t.same(await store.listTokens(user5.id), [], 'its tokens went with it');
  t.same(await store.getUser(localAlice.id), localAlice, 'the local alice is still untouched');
  t.same(await store.getUser(localAdmin.id), localAdmin);

  // --- the record of runs, and no password in the logs --------------------------------------------
  const runs = await store.listSyncRuns({ source: 'directory:corp', item: 'people' });
  t.same(runs.slice(0, 6).map((r) => [r.kind, r.status]).reverse(), [['full', 'ok'], ['delta', 'ok'], ['full', 'refused'], ['full', 'ok'], ['full', 'ok'], ['delta', 'ok']]);
  t.ok(s.logLines.length > 0);
  t.notOk(s.logLines.join('').includes(slapd.adminPassword), 'the bind password never reaches the log');
});

void t.test('OpenLDAP: a dry run changes nothing; a directory that cannot be reached fails every item and removes nobody', async (t) => {
  if (!requirePeer(t, 'slapd', 'slapd')) return;
  const s = await setup(t);
  const { slapd, store } = s;
  const sync = new DirectorySync({ store, directories: [s.directory({ items: ITEMS(slapd.baseDn) })], log: s.log });
  const dry = await sync.runOnce({ dryRun: true });
  t.same(dry.map((r) => [r.item, r.added, r.dryRun, r.runId]), [['people', 8, true, undefined], ['vpn', 0, true, undefined], ['others', 1, true, undefined]], 'exact counts');
  t.same(await store.listUsersBySource('directory:corp'), [], 'nothing written');
  t.same(await store.listSyncRuns(), [], 'no run recorded');
  t.equal(await store.getSyncState('directory:corp', 'people'), undefined, 'no watermark kept');

  await sync.runOnce();
  const before = await store.listUsersBySource('directory:corp');
  t.equal(before.length, 9);
  await slapd.stop();
  const down = await sync.runOnce();
  t.same(down.map((r) => r.status), ['failed', 'failed', 'failed']);
  t.match(down[0]?.errors, [/cannot sync: directory 'corp': no server could be used for sync/]);
  t.same(await store.listUsersBySource('directory:corp'), before, 'nobody removed or disabled');
  t.equal((await store.listSyncRuns({ item: 'people' }))[0]?.status, 'failed', 'the failure is recorded');
});

void t.test('OpenLDAP: a service account held to small pages (size.pr) still gets its delta listing, in pages of page_size', async (t) => {
  if (!requirePeer(t, 'slapd', 'slapd')) return;
  const s = await setup(t);
  const { slapd, store } = s;
  // user5 as the service account, allowed pages of at most 100 entries (any number of pages):
  // slapd answers a request for larger pages with adminLimitExceeded, before any entry.
  const svc = slapd.userDn('user5');
  await slapd.ldapmodify(`dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nadd: olcLimits\nolcLimits: dn.exact="${svc}" size.pr=100 size.prtotal=unlimited\n`);
  const sync = new DirectorySync({
    store,
    directories: [{ ...s.directory({ page_size: 50, max_delete_percent: 50, items: [ITEMS(slapd.baseDn)[0]!] }), bind_dn: svc, bind_password: 'Passw0rd-5' }],
    log: s.log,
  });
  const full = await sync.runOnce();
  t.match(report(full, 'people'), { kind: 'full', status: 'ok', added: 8, inScope: 8 });
  const refusals = (): number => s.logLines.filter((l) => l.includes('refused pages this large')).length;
  t.equal(refusals(), 0, 'a full run reads in pages of page_size');

  await slapd.ldapmodify(`dn: ${slapd.userDn('gone')}\nchangetype: delete\n`);
  const delta = await sync.runOnce();
  t.match(report(delta, 'people'), { kind: 'delta', status: 'ok', disabled: 1, inScope: 7 }, 'the deleted user is found missing from the listing');
  t.equal(refusals(), 1, 'the refusal of the large page is logged');
  t.notOk(s.logLines.some((l) => l.includes('Passw0rd-5')), 'the service account password is never logged');

  const again = await sync.runOnce();
  t.match(report(again, 'people'), { kind: 'delta', status: 'ok', disabled: 0, inScope: 7 });
  t.equal(refusals(), 1, 'the next run asks for pages of page_size straight away, and says nothing');
});
