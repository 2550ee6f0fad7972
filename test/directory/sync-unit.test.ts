import type { Entry } from 'ldapts';
import t from 'tap';
import type { ResolvedDirectory } from '../../src/config/config.js';
import { directorySchema } from '../../src/config/schema.js';
import { syncSchema } from '../../src/config/sync-schema.js';
import { syncPlan } from '../../src/directory/sync/config.js';
import { normaliseDn } from '../../src/directory/sync/engine.js';
import { csnTime, externalIdOf, formatGuid, generalizedTime, isDisabled, mapEntry } from '../../src/directory/sync/entries.js';
import { DirectorySync } from '../../src/directory/sync/index.js';
import { SyncScheduler } from '../../src/directory/sync/scheduler.js';
import { InvalidInputError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import type { Store } from '../../src/store/store.js';

/** Directory sync without a directory: the config schema, the plan, entry mapping, the scheduler. */

function resolved(flavour: 'ad' | 'ldap', sync: unknown): ResolvedDirectory {
  const raw = directorySchema.parse({
    flavour,
    urls: ['ldaps://127.0.0.1:636'],
    bind_dn: 'cn=svc,dc=example,dc=test',
    bind_password: { env: 'UNUSED' },
    base_dn: 'dc=example,dc=test',
    sync,
  });
  const { bind_password: _p, ca_file: _c, ...rest } = raw;
  return { ...rest, name: 'corp', bind_password: 'not-used', ca: undefined };
}

const issues = (value: unknown): string[] => {
  const r = syncSchema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

void t.test('sync schema: defaults, ranges, one kind per item, filters that parse', async (t) => {
  const ok = syncSchema.parse({ items: [{ name: 'staff', ou: 'OU=Staff,DC=example,DC=test' }] });
  t.match(ok, {
    enabled: true,
    interval_minutes: 60,
    full_every_hours: 24,
    page_size: 500,
    on_removed: 'disable',
    max_delete_percent: 10,
    disabled_when: ['pwd_account_locked_time', 'shadow_expire'],
    items: [{ name: 'staff', scope: 'sub', nested: true }],
  });
  t.same(issues({ items: [] }), ['items: Too small: expected array to have >=1 items']);
  t.match(issues({ interval_minutes: 0, items: [{ name: 'a', ou: 'ou=a' }] }), [/interval_minutes/]);
  t.match(issues({ interval_minutes: 1441, items: [{ name: 'a', ou: 'ou=a' }] }), [/interval_minutes/]);
  t.same(issues({ interval_minutes: 1, items: [{ name: 'a', ou: 'ou=a' }] }), [], '1 minute is allowed');
  t.same(issues({ interval_minutes: 1440, items: [{ name: 'a', ou: 'ou=a' }] }), [], '24 hours is allowed');
  t.match(issues({ items: [{ name: 'a' }] }), ['items.0: needs exactly one of ou, group or filter (has none)']);
  t.match(issues({ items: [{ name: 'a', ou: 'ou=a', group: 'cn=g' }] }), [/exactly one of ou, group or filter \(has ou, group\)/]);
  t.match(issues({ items: [{ name: 'a', filter: 'department=Sales' }] }), [/items.0.filter: must be an LDAP filter/]);
  t.match(issues({ items: [{ name: 'a', filter: '(&(a=b)' }] }), [/items.0.filter/]);
  t.same(issues({ items: [{ name: 'a', filter: '(&(department=Sales)(!(title=Intern)))', base: 'ou=x,dc=y' }] }), []);
  t.match(issues({ items: [{ name: 'a', ou: 'ou=a', base: 'ou=b' }] }), [/items.0.base: only a filter item takes a base/]);
  t.match(issues({ items: [{ name: 'a', ou: 'Staff' }] }), [/items.0.ou: must be a DN/]);
  t.match(issues({ items: [{ name: 'a', ou: 'ou=a' }, { name: 'a', ou: 'ou=b' }] }), ["items.1.name: duplicate item name 'a'"]);
  t.match(issues({ max_delete_percent: 101, items: [{ name: 'a', ou: 'ou=a' }] }), [/max_delete_percent/]);
  t.match(issues({ on_removed: 'purge', items: [{ name: 'a', ou: 'ou=a' }] }), [/on_removed/]);
  t.match(issues({ defaults: { method: 'TOTP!' }, items: [{ name: 'a', ou: 'ou=a' }] }), [/defaults.method/]);
  t.match(issues({ attributes: { phone: 'tele phone' }, items: [{ name: 'a', ou: 'ou=a' }] }), [/attributes.phone/]);
  t.same(issues({ attributes: { upn: null, phone: 'homePhone' }, items: [{ name: 'a', ou: 'ou=a', language: 'de-CH', method: 'totp' }] }), []);
  t.match(issues({ items: [{ name: 'a', ou: 'ou=a' }], extra: 1 }), [/Unrecognized key/]);
});

void t.test('plan: flavour defaults, mapping overrides, item filters and fingerprints', async (t) => {
  const ad = syncPlan(resolved('ad', { items: [{ name: 'staff', ou: 'OU=Staff,DC=example,DC=test', scope: 'one' }, { name: 'vpn', group: 'CN=VPN,DC=example,DC=test' }, { name: 'sales', filter: '(department=Sales)' }] }));
  if (ad === undefined) throw new Error('no plan');
  t.equal(ad.source, 'directory:corp');
  t.equal(ad.idAttribute, 'objectGUID');
  t.same(ad.binaryAttributes, ['objectGUID']);
  t.match(ad.attributes, { username: 'sAMAccountName', upn: 'userPrincipalName', phone: 'telephoneNumber', defaultMethod: null });
  t.ok(ad.readAttributes.includes('userAccountControl'));
  const [staff, vpn, sales] = ad.items;
  t.match(staff, { kind: 'ou', base: 'OU=Staff,DC=example,DC=test', scope: 'one' });
  t.match(vpn, { kind: 'group', base: 'dc=example,dc=test', scope: 'sub' });
  t.match(vpn?.filter.toString(), /memberOf:1\.2\.840\.113556\.1\.4\.1941:=CN=VPN,DC=example,DC=test/);
  t.match(sales?.filter.toString(), /\(&\(&\(objectCategory=person\)\(objectClass=user\)\)\(department=Sales\)\)/);
  t.equal(new Set(ad.items.map((i) => i.hash)).size, 3);

  const flat = syncPlan(resolved('ad', { items: [{ name: 'vpn', group: 'CN=VPN,DC=example,DC=test', nested: false }] }));
  t.match(flat?.items[0]?.filter.toString(), /\(memberOf=CN=VPN,DC=example,DC=test\)/, 'without nesting: plain memberOf');

  const ldap = syncPlan(resolved('ldap', { attributes: { upn: 'mail', phone: null }, disabled_when: ['shadow_expire'], items: [{ name: 'people', ou: 'ou=people,dc=example,dc=test' }] }));
  t.match(ldap?.attributes, { username: 'uid', upn: 'mail', phone: null });
  t.ok(ldap?.readAttributes.includes('shadowExpire') === true && !ldap.readAttributes.includes('pwdAccountLockedTime'));
  t.notOk(ldap?.readAttributes.includes('telephoneNumber'), 'a field turned off is not read');
  const again = syncPlan(resolved('ldap', { attributes: { upn: 'mail', phone: null }, disabled_when: ['shadow_expire'], items: [{ name: 'people', ou: 'ou=people,dc=example,dc=test' }] }));
  t.equal(again?.items[0]?.hash, ldap?.items[0]?.hash, 'the same definition, the same fingerprint');
  const remapped = syncPlan(resolved('ldap', { attributes: { upn: 'mail' }, disabled_when: ['shadow_expire'], items: [{ name: 'people', ou: 'ou=people,dc=example,dc=test' }] }));
  t.not(remapped?.items[0]?.hash, ldap?.items[0]?.hash, 'a changed mapping changes the fingerprint (a full run follows)');
  t.equal(syncPlan(resolved('ldap', undefined)), undefined, 'no sync section, no plan');
});

void t.test('entries: GUID text, ids, disabled flags, mapping and defaults', async (t) => {
  // The byte order of objectGUID: Data1..Data3 little-endian.
  const guid = Buffer.from('33221100554477668899aabbccddeeff', 'hex');
  t.equal(formatGuid(guid), '00112233-4455-6677-8899-aabbccddeeff');
  t.throws(() => formatGuid(Buffer.alloc(3)));
  const adEntry: Entry = { dn: 'CN=Ann,OU=Staff,DC=example,DC=test', objectGUID: guid, SAMACCOUNTNAME: 'ann', userAccountControl: '514', givenName: ' Ann ', telephoneNumber: [] };
  t.equal(externalIdOf(adEntry, 'ad', 'objectGUID'), '00112233-4455-6677-8899-aabbccddeeff');
  t.equal(isDisabled(adEntry, { flavour: 'ad', disabledWhen: [], now: 0 }), true, '514 = NORMAL_ACCOUNT | ACCOUNTDISABLE');
  t.equal(isDisabled({ ...adEntry, userAccountControl: '512' }, { flavour: 'ad', disabledWhen: [], now: 0 }), false);
  t.equal(externalIdOf({ dn: 'uid=a', entryUUID: 'ABC-123' }, 'ldap', 'entryUUID'), 'abc-123');
  t.equal(externalIdOf({ dn: 'uid=a' }, 'ldap', 'entryUUID'), undefined);

  const day = 86_400_000;
  const ldapCtx = { flavour: 'ldap' as const, disabledWhen: ['pwd_account_locked_time', 'shadow_expire'] as ('pwd_account_locked_time' | 'shadow_expire')[], now: 100 * day };
  t.equal(isDisabled({ dn: 'x', pwdAccountLockedTime: '000001010000Z' }, ldapCtx), true, 'locked for good');
  t.equal(isDisabled({ dn: 'x', shadowExpire: '99' }, ldapCtx), true, 'expired yesterday');
  t.equal(isDisabled({ dn: 'x', shadowExpire: '101' }, ldapCtx), false, 'expires tomorrow');
  t.equal(isDisabled({ dn: 'x', shadowExpire: '-1' }, ldapCtx), false, '-1: never');
  t.equal(isDisabled({ dn: 'x', pwdAccountLockedTime: '000001010000Z' }, { ...ldapCtx, disabledWhen: ['shadow_expire'] }), false, 'only as configured');

  const plan = syncPlan(resolved('ad', { items: [{ name: 'staff', ou: 'OU=Staff,DC=example,DC=test' }] }));
  if (plan === undefined) throw new Error('no plan');
  const ctx = { flavour: plan.flavour, attributes: plan.attributes, idAttribute: plan.idAttribute, disabledWhen: [], now: 0 };
  t.same(mapEntry({ ...adEntry, preferredLanguage: 'fr' }, ctx, { method: 'totp', language: 'de' }), {
    ok: true,
    dn: adEntry.dn,
    user: {
      externalId: '00112233-4455-6677-8899-aabbccddeeff',
      dn: adEntry.dn,
      username: 'ann',
      upn: null,
      firstName: 'Ann',
      lastName: null,
      email: null,
      phone: null,
      mobile: null,
      defaultMethod: 'totp',
      language: 'fr',
      enabled: false,
    },
  }, 'the directory value wins over the default; empty values are null; names are trimmed');
  t.match(mapEntry({ dn: 'CN=NoName', objectGUID: guid }, ctx, { method: undefined, language: undefined }), { ok: false, problem: /CN=NoName: no sAMAccountName; skipped/ });
  t.match(mapEntry({ dn: 'CN=NoId', sAMAccountName: 'x' }, ctx, { method: undefined, language: undefined }), { ok: false, problem: /no objectGUID/ });
});

void t.test('times and DNs', async (t) => {
  t.equal(generalizedTime(Date.UTC(2024, 0, 31, 23, 59, 58, 999)), '20240131235958Z');
  t.equal(csnTime('20240131235959.123456Z#000000#000#000000'), '20240131235959Z');
  t.equal(csnTime('garbage'), undefined);
  t.equal(normaliseDn(' CN=Ann , OU=Staff,DC=Example, DC=test'), 'cn=ann,ou=staff,dc=example,dc=test');
  t.equal(normaliseDn('cn=Smith\\, John,dc=x'), 'cn=smith\\, john,dc=x', 'an escaped comma is no separator');
});

void t.test('scheduler: first run soon, then every interval, never overlapping; stop waits', async (t) => {
  const starts: number[] = [];
  let inFlight = 0;
  let overlapped = false;
  const began = Date.now();
  const scheduler = new SyncScheduler(
    [
      {
        name: 'corp',
        intervalMs: 60,
        run: async () => {
          if (inFlight > 0) overlapped = true;
          inFlight++;
          starts.push(Date.now() - began);
          await new Promise((r) => setTimeout(r, 90)); // longer than the interval
          inFlight--;
        },
      },
      { name: 'broken', intervalMs: 40, run: () => Promise.reject(new Error('directory down')) },
    ],
    { firstRunDelayMs: 20, log: silentLogger() },
  );
  scheduler.start();
  scheduler.start(); // idempotent
  await new Promise((r) => setTimeout(r, 400));
  await scheduler.stop();
  const count = starts.length;
  t.ok(count >= 3, `ran ${count} times in 400 ms`);
  t.ok((starts[0] ?? 0) >= 15, 'the first run waits for the first-run delay');
  t.notOk(overlapped, 'a run never overlaps the previous one');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(starts.length, count, 'nothing runs after stop()');
});

void t.test('DirectorySync: unknown directory or item is a clear error; no sync section, no schedule', async (t) => {
  const store = {} as Store; // never reached
  const sync = new DirectorySync({ store, directories: [resolved('ldap', { items: [{ name: 'people', ou: 'ou=people,dc=example,dc=test' }] }), { ...resolved('ad', undefined), name: 'plain' }], log: silentLogger() });
  t.same(sync.directoryNames, ['corp']);
  await t.rejects(sync.runOnce({ directory: 'nope' }), { constructor: InvalidInputError, message: "no directory 'nope' with a sync section (have: corp)" });
  await t.rejects(sync.runOnce({ directory: 'plain' }), InvalidInputError);
  await t.rejects(sync.runOnce({ item: 'staff' }), { constructor: InvalidInputError, message: "no sync item 'staff'" });
  await sync.stop();
  const none = new DirectorySync({ store, directories: [], log: silentLogger() });
  await t.rejects(none.runOnce(), { message: 'no directory has a sync section' });
  none.start();
  await none.stop();
});

void t.test('config: a sync section sits under its directory, and its errors name the full key path', async (t) => {
  const { configSchema } = await import('../../src/config/schema.js');
  const base = {
    clients: [{ name: 'nas', addresses: ['127.0.0.1'], secret: { file: 'radius-secret' } }],
    directories: {
      corp: { flavour: 'ad', urls: ['ldaps://127.0.0.1'], bind_dn: 'svc@example.test', bind_password: { file: 'corp-pw' }, base_dn: 'DC=example,DC=test' },
    },
  };
  t.ok(configSchema.safeParse(base).success, 'sync is optional');
  const withSync = (sync: unknown): string[] => {
    const r = configSchema.safeParse({ ...base, directories: { corp: { ...base.directories.corp, sync } } });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  t.same(withSync({ interval_minutes: 5, items: [{ name: 'staff', ou: 'OU=Staff,DC=example,DC=test' }] }), []);
  t.match(withSync({ interval_minutes: 0, items: [{ name: 'staff', ou: 'OU=Staff,DC=example,DC=test' }] }), [/^directories\.corp\.sync\.interval_minutes: /]);
  t.match(withSync({ items: [{ name: 'staff' }] }), [/^directories\.corp\.sync\.items\.0: needs exactly one of ou, group or filter/]);
});
