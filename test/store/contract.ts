/**
 * The engine-independent Store contract (STYLE.md §5): every engine's test file calls
 * storeContract with a factory for a fresh, empty store. An engine is done when this passes.
 */
import type { Test } from 'tap';
import { auditHash, GENESIS_HASH } from '../../src/audit/chain.js';
import { AlreadyExistsError, InvalidInputError, NotFoundError, StoreError } from '../../src/errors.js';
import type { AuditEntry, AuditRecord, DirectorySource, DirectoryUserData, NewOathToken, Store } from '../../src/store/store.js';

export interface StoreHarness {
  readonly store: Store;
  /** Closes what is still open and removes the store's storage. */
  cleanup(): Promise<void>;
  /**
   * Opens another instance on the same storage (another connection, as the CLI or a second node
   * would). Engines that can, provide it; the races and change-notice cases then run across two
   * instances. The caller closes what it opens.
   */
  openAnother?: () => Promise<Store>;
}

let entryCounter = 0;

/** A plausible audit entry; ids are unique across the run. */
export function makeEntry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  entryCounter++;
  return {
    id: `00000000-0000-4000-8000-${String(entryCounter).padStart(12, '0')}`,
    receivedAt: 1_700_000_000_000 + entryCounter,
    decidedAt: 1_700_000_000_005 + entryCounter,
    attemptId: `attempt-${entryCounter}`,
    protocol: 'radius',
    result: 'accept',
    reason: 'second_factor_ok',
    userId: 'u-alice',
    username: 'alice',
    firstName: 'Alice',
    lastName: 'Liddell',
    email: 'alice@example.test',
    phone: null,
    deviceToken: null,
    firstFactor: 'local',
    method: 'totp',
    provider: null,
    providerMessageId: null,
    gatewayName: 'gw1',
    gatewayIp: '192.0.2.1',
    clientName: 'vpn',
    clientIp: '192.0.2.10',
    nasIdentifier: 'nas-1',
    nasIpAddress: '192.0.2.10',
    callingStationId: '198.51.100.7',
    calledStationId: null,
    timings: { total: 4.25, firstFactor: 3.1, secondFactor: 0.4 },
    ...overrides,
  };
}

function tokenFor(userId: string, over: Partial<NewOathToken> = {}): NewOathToken {
  return {
    userId,
    kind: 'totp',
    label: 'phone',
    algorithm: 'SHA1',
    digits: 6,
    period: 30,
    sealedSecret: Buffer.from([0, 1, 2, 0xfe, 0xff, 0x00, 0x80]),
    ...over,
  };
}

function dirUser(externalId: string, username: string, over: Partial<DirectoryUserData> = {}): DirectoryUserData {
  return {
    externalId,
    dn: `uid=${username},ou=people,dc=corp,dc=example`,
    username,
    upn: `${username}@corp.example`,
    firstName: 'First',
    lastName: 'Last',
    email: `${username}@corp.example`,
    phone: null,
    mobile: null,
    defaultMethod: null,
    language: null,
    enabled: true,
    ...over,
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Splits `n` calls between the store and, when the engine offers one, a second instance. */
async function racers(h: StoreHarness): Promise<{ stores: Store[]; close(): Promise<void> }> {
  if (h.openAnother === undefined) return { stores: [h.store], close: async () => undefined };
  const other = await h.openAnother();
  return { stores: [h.store, other], close: () => other.close() };
}

export function storeContract(t: Test, makeStore: () => Promise<StoreHarness>): void {
  /** Runs `fn` with a fresh store, cleaned up afterwards whatever happens. */
  const withStore = (name: string, fn: (t: Test, h: StoreHarness) => Promise<void>): void => {
    void t.test(name, async (t) => {
      const h = await makeStore();
      t.teardown(() => h.cleanup());
      await fn(t, h);
    });
  };

  // --- users -------------------------------------------------------------------------------

  withStore('users: create, read, case-insensitive lookup, update, delete', async (t, { store }) => {
    const alice = await store.createUser({ username: 'Alice', upn: 'Alice@Corp.Example', email: 'a@corp.example', passwordHash: 'scrypt$x' });
    t.type(alice.id, 'string');
    t.match(alice, {
      username: 'Alice',
      upn: 'Alice@Corp.Example',
      email: 'a@corp.example',
      firstName: null,
      enabled: true,
      blocked: false,
      passwordHash: 'scrypt$x',
      source: 'local',
      syncedAt: null,
    });
    t.ok(alice.createdAt > 0 && alice.updatedAt === alice.createdAt);

    t.same(await store.getUser(alice.id), alice, 'getUser returns what createUser returned');
    t.same(await store.findUser('alice'), alice, 'username, lower case');
    t.same(await store.findUser('ALICE'), alice, 'username, upper case');
    t.same(await store.findUser('alice@corp.example'), alice, 'UPN, other case');
    t.equal(await store.findUser('bob'), undefined);
    t.equal(await store.getUser('nope'), undefined);

    const bob = await store.createUser({ id: 'CN=Bob,OU=Staff', username: 'bob', source: 'directory:corp', enabled: false });
    t.equal(bob.id, 'CN=Bob,OU=Staff', 'a caller-chosen id is kept');
    t.equal(bob.source, 'directory:corp');
    t.equal(bob.enabled, false);
    t.same(
      (await store.listUsers()).map((u) => u.username),
      ['Alice', 'bob'],
    );

    const renamed = await store.updateUser(alice.id, { username: 'alice.l', phone: '+15550100', upn: null, blocked: true });
    t.match(renamed, { id: alice.id, username: 'alice.l', phone: '+15550100', upn: null, blocked: true, email: 'a@corp.example' });
    t.ok(renamed.updatedAt >= alice.updatedAt);
    t.equal(renamed.createdAt, alice.createdAt);
    t.equal(await store.findUser('alice'), undefined, 'the old name is free');
    t.equal(await store.findUser('alice@corp.example'), undefined, 'the old UPN is free');
    t.equal((await store.findUser('ALICE.L'))?.id, alice.id);
    t.equal((await store.updateUser(alice.id, { username: 'Alice.L' })).username, 'Alice.L', 'a change of case only is allowed');

    await store.deleteUser(bob.id);
    t.equal(await store.getUser(bob.id), undefined);
    await t.rejects(store.deleteUser(bob.id), NotFoundError);
    await t.rejects(store.updateUser(bob.id, { email: 'x' }), NotFoundError);
  });

  withStore('users: duplicates are refused, case-insensitively, across username and UPN', async (t, { store }) => {
    const a = await store.createUser({ username: 'carol', upn: 'carol@corp.example' });
    await t.rejects(store.createUser({ username: 'CAROL' }), AlreadyExistsError, 'same username, other case');
    await t.rejects(store.createUser({ username: 'carol2', upn: 'Carol@Corp.Example' }), AlreadyExistsError, 'same UPN, other case');
    await t.rejects(store.createUser({ username: 'CAROL@corp.example' }), AlreadyExistsError, "a username equal to someone's UPN");
    await t.rejects(store.createUser({ username: 'dave', upn: 'Carol' }), AlreadyExistsError, "a UPN equal to someone's username");
    await t.rejects(store.createUser({ id: a.id, username: 'erin' }), AlreadyExistsError, 'same id');
    const dave = await store.createUser({ username: 'dave' });
    await t.rejects(store.updateUser(dave.id, { username: 'Carol' }), AlreadyExistsError, 'rename into a taken name');
    await t.rejects(store.updateUser(dave.id, { upn: 'CAROL@CORP.EXAMPLE' }), AlreadyExistsError, 'take a taken UPN');
    t.equal((await store.listUsers()).length, 2, 'nothing half-created');
    await t.rejects(store.createUser({ username: '  ' }), InvalidInputError, 'empty username');
    await t.rejects(store.createUser({ username: 'x', source: 'ldap' as 'local' }), InvalidInputError, 'bad source');
  });

  withStore('users: names indexed in memory answer as the store does, also after another instance renames, deletes and adds', async (t, h) => {
    const { store } = h;
    for (let i = 0; i < 300; i++) await store.createUser({ username: `u${i}`, upn: i % 2 === 0 ? `u${i}@corp.example` : null });
    const stats = await store.indexUserNames();
    t.match(stats, { users: 300, names: 450 });
    t.ok(stats.bytes > 0 && stats.bytes < 300 * 64, `compact: ${stats.bytes} bytes for 300 users`);
    t.equal((await store.findUser('U7'))?.username, 'u7', 'found through the index');
    t.equal((await store.findUser('u8@CORP.example'))?.username, 'u8', 'UPN through the index');
    t.equal(await store.findUser('u7@corp.example'), undefined, 'no UPN, no match');

    // This instance's own writes keep it current.
    const late = await store.createUser({ username: 'late', upn: 'late@corp.example' });
    t.equal((await store.findUser('late@corp.example'))?.id, late.id);
    await store.updateUser(late.id, { username: 'later', upn: null });
    t.equal(await store.findUser('late'), undefined, 'old name gone');
    t.equal(await store.findUser('late@corp.example'), undefined, 'old UPN gone');
    t.equal((await store.findUser('later'))?.id, late.id);
    await store.upsertDirectoryUsers('directory:corp', [dirUser('g-1', 'dina')], { item: 'all', now: 1 });
    t.equal((await store.findUser('dina@corp.example'))?.source, 'directory:corp', 'a synced user');

    if (h.openAnother === undefined) return;
    const other = await h.openAnother();
    try {
      // Another process (the CLI) renames, deletes and adds: the index is stale, the answers are not.
      const u1 = (await other.findUser('u1'))!;
      const u2 = (await other.findUser('u2'))!;
      await other.deleteUser(u2.id);
      await other.updateUser(u1.id, { username: 'u2' });
      await other.createUser({ username: 'fresh', upn: 'u1@corp.example' });
      t.equal((await store.findUser('u2'))?.id, u1.id, "a name that moved to another user finds the new holder");
      t.equal(await store.findUser('u2@corp.example'), undefined, 'the deleted user is gone');
      t.equal((await store.findUser('u1@corp.example'))?.username, 'fresh', 'a name taken by a new user');
      t.equal(await store.findUser('u1'), undefined, 'a name no longer held');
      await other.deleteUser(u1.id);
      t.equal(await store.findUser('u2'), undefined, 'and again after the second delete');
    } finally {
      await other.close();
    }
  });

  withStore('users: a login given as a DN finds the one synced user with that entry', async (t, { store }) => {
    await store.upsertDirectoryUsers('directory:corp', [dirUser('g-1', 'ann', { dn: 'CN=Ann Lee,OU=Staff,DC=corp,DC=example' })], { item: 'all', now: 1 });
    t.equal((await store.findUser('cn=ann lee, ou=staff,dc=CORP,dc=example'))?.username, 'ann', 'another spelling of the same DN');
    t.equal((await store.findUser('ann'))?.directoryDn, 'CN=Ann Lee,OU=Staff,DC=corp,DC=example', 'the DN as the directory spells it');
    t.equal(await store.findUser('cn=someone else,ou=staff,dc=corp,dc=example'), undefined);
    // Moved in the directory: the next sync updates the DN.
    const moved = await store.upsertDirectoryUsers('directory:corp', [dirUser('g-1', 'ann', { dn: 'CN=Ann Lee,OU=Sales,DC=corp,DC=example' })], { item: 'all', now: 2 });
    t.equal(moved.updated, 1, 'a move is an update');
    t.equal(await store.findUser('CN=Ann Lee,OU=Staff,DC=corp,DC=example'), undefined, 'the old DN no longer');
    // Two directories serving one tree: a DN that names two users names none.
    const second = await store.upsertDirectoryUsers('directory:corp2', [dirUser('g-2', 'ann2', { upn: null, dn: 'CN=Ann Lee,OU=Sales,DC=corp,DC=example' })], { item: 'all', now: 3 });
    t.equal(second.added, 1);
    t.equal(await store.findUser('CN=Ann Lee,OU=Sales,DC=corp,DC=example'), undefined, 'ambiguous');
  });

  // --- directory sync ----------------------------------------------------------------------

  withStore('directory sync: upsert adds, updates, disables and counts; local users and other sources untouched', async (t, { store }) => {
    const local = await store.createUser({ username: 'local-admin', email: 'admin@local', passwordHash: 'scrypt$x' });
    const corp: DirectorySource = 'directory:corp';
    const first = await store.upsertDirectoryUsers(corp, [dirUser('g-1', 'ann', { phone: '+1 555 0101' }), dirUser('g-2', 'ben'), dirUser('g-3', 'cid', { enabled: false })], { item: 'staff', now: 1000 });
    t.same(first, { added: 3, updated: 0, disabled: 0, unchanged: 0, conflicts: [] });
    const ann = await store.findUser('ann@corp.example');
    t.match(ann, { id: 'g-1', username: 'ann', source: 'directory:corp', phone: '+1 555 0101', enabled: true, syncedAt: 1000, passwordHash: null, blocked: false });
    t.equal((await store.findUser('cid'))?.enabled, false, 'a disabled account is stored disabled');

    // An admin's block is not the sync's business; tokens stay through updates.
    await store.updateUser('g-2', { blocked: true });
    const token = await store.addToken(tokenFor('g-2'));
    const second = await store.upsertDirectoryUsers(
      corp,
      [dirUser('g-1', 'ann', { phone: '+1 555 0199' }), dirUser('g-2', 'ben', { enabled: false }), dirUser('g-3', 'cid'), dirUser('g-4', 'dee')],
      { item: 'staff', now: 2000 },
    );
    t.same(second, { added: 1, updated: 2, disabled: 1, unchanged: 0, conflicts: [] }, 'phone changed and cid re-enabled: updated; ben disabled');
    t.match(await store.getUser('g-1'), { phone: '+1 555 0199', syncedAt: 2000 });
    t.match(await store.getUser('g-2'), { enabled: false, blocked: true });
    t.equal((await store.listTokens('g-2')).length, 1, 'tokens kept');
    t.equal((await store.getToken(token.id))?.userId, 'g-2');

    const third = await store.upsertDirectoryUsers(corp, [dirUser('g-1', 'ann', { phone: '+1 555 0199' })], { item: 'staff', now: 3000 });
    t.same(third, { added: 0, updated: 0, disabled: 0, unchanged: 1, conflicts: [] });
    t.equal((await store.getUser('g-1'))?.syncedAt, 3000, 'an unchanged user is confirmed (synced_at)');

    // A rename keeps the id, tokens and memberships.
    t.same(await store.upsertDirectoryUsers(corp, [dirUser('g-1', 'ann.new')], { item: 'staff', now: 4000 }), { added: 0, updated: 1, disabled: 0, unchanged: 0, conflicts: [] });
    t.equal((await store.findUser('ANN.NEW'))?.id, 'g-1');
    t.equal(await store.findUser('ann'), undefined);

    const listed = await store.listUsersBySource(corp);
    t.same(
      listed.map((u) => [u.username, u.externalId, u.items]),
      [
        ['ann.new', 'g-1', ['staff']],
        ['ben', 'g-2', ['staff']],
        ['cid', 'g-3', ['staff']],
        ['dee', 'g-4', ['staff']],
      ],
    );
    t.same(await store.listUsersBySource('directory:other'), []);
    t.same(
      await store.listDirectoryMembers(corp),
      [
        { externalId: 'g-1', enabled: true, items: ['staff'] },
        { externalId: 'g-2', enabled: false, items: ['staff'] },
        { externalId: 'g-3', enabled: true, items: ['staff'] },
        { externalId: 'g-4', enabled: true, items: ['staff'] },
      ],
      'the lean listing a sync run compares with',
    );
    t.same(await store.listDirectoryMembers('directory:other'), []);
    t.same(await store.getUser(local.id), local, 'the local user is exactly as it was');
    await t.rejects(store.upsertDirectoryUsers('local' as DirectorySource, [dirUser('x', 'x')], { item: 'i', now: 1 }), InvalidInputError, 'a sync cannot write local users');
    await t.rejects(store.upsertDirectoryUsers(corp, [dirUser('g-9', ' ')], { item: 'staff', now: 1 }), InvalidInputError, 'an empty name fails the call');
    await t.rejects(store.removeDirectoryUsers('local' as DirectorySource, 'staff', [local.id], { onRemoved: 'delete', now: 1 }), InvalidInputError);
  });

  withStore('directory sync: a name held by a local user or another directory is a conflict; the rest commit; swaps within a batch work', async (t, { store }) => {
    const alice = await store.createUser({ username: 'alice', upn: 'alice@corp.example', passwordHash: 'scrypt$x' });
    await store.upsertDirectoryUsers('directory:other', [dirUser('o-1', 'olga')], { item: 'all', now: 1 });
    const result = await store.upsertDirectoryUsers(
      'directory:corp',
      [dirUser('c-1', 'alice', { upn: 'alice2@corp.example' }), dirUser('c-2', 'olga'), dirUser('c-3', 'bob', { upn: 'alice@corp.example' }), dirUser('o-1', 'olga2'), dirUser('c-4', 'carl')],
      { item: 'all', now: 2 },
    );
    t.equal(result.added, 1, 'only carl');
    t.same(
      result.conflicts.map((c) => c.externalId),
      ['c-1', 'c-2', 'c-3', 'o-1'],
    );
    t.match(result.conflicts[0]?.message, /taken \(by local user alice\)/);
    t.match(result.conflicts[1]?.message, /taken \(by olga of directory:other\)/);
    t.match(result.conflicts[3]?.message, /id o-1 is held by olga of directory:other/);
    t.same(await store.getUser(alice.id), alice, 'the local user is untouched');
    t.equal((await store.getUser('o-1'))?.username, 'olga', "the other directory's user is untouched");

    // Two users swap names in one batch: both renames go through.
    await store.upsertDirectoryUsers('directory:corp', [dirUser('c-5', 'xena'), dirUser('c-6', 'yuri')], { item: 'all', now: 3 });
    const swap = await store.upsertDirectoryUsers('directory:corp', [dirUser('c-5', 'tmp')], { item: 'all', now: 4 });
    t.equal(swap.updated, 1);
    const swapped = await store.upsertDirectoryUsers('directory:corp', [dirUser('c-6', 'xena'), dirUser('c-5', 'yuri')], { item: 'all', now: 5 });
    t.same(swapped, { added: 0, updated: 2, disabled: 0, unchanged: 0, conflicts: [] }, 'the first row waits for the second');
    t.equal((await store.findUser('xena'))?.id, 'c-6');

    // A rename into a taken name keeps the user (and its membership) under its old name.
    const blocked = await store.upsertDirectoryUsers('directory:corp', [dirUser('c-4', 'alice')], { item: 'all', now: 6 });
    t.match(blocked.conflicts, [{ externalId: 'c-4', message: /kept as carl/ }]);
    t.same((await store.listUsersBySource('directory:corp')).find((u) => u.id === 'c-4')?.items, ['all']);
  });

  withStore('directory sync: users gone from scope lose the item; left in none, disabled (tokens kept) or deleted (tokens too)', async (t, { store }) => {
    const corp: DirectorySource = 'directory:corp';
    const local = await store.createUser({ username: 'keeper' });
    await store.upsertDirectoryUsers(corp, [dirUser('u1', 'u1'), dirUser('u2', 'u2'), dirUser('u3', 'u3'), dirUser('u4', 'u4', { enabled: false })], { item: 'staff', now: 1 });
    await store.upsertDirectoryUsers(corp, [dirUser('u2', 'u2')], { item: 'vpn', now: 1 });
    const tok1 = await store.addToken(tokenFor('u1'));
    const tok3 = await store.addToken(tokenFor('u3'));

    const dry = await store.removeDirectoryUsers(corp, 'staff', ['u1', 'u2', 'u3', 'u4', 'nobody', local.id], { onRemoved: 'disable', now: 5, dryRun: true });
    t.same(dry, { disabled: 2, removed: 0, kept: 1 }, 'dry run: exact counts (u4 was disabled already)');
    t.same((await store.listUsersBySource(corp)).map((u) => [u.id, u.enabled, u.items]), [
      ['u1', true, ['staff']],
      ['u2', true, ['staff', 'vpn']],
      ['u3', true, ['staff']],
      ['u4', false, ['staff']],
    ], 'dry run: nothing changed');
    t.same(
      (await store.listDirectoryMembers(corp)).map((m) => [m.externalId, m.items]),
      [
        ['u1', ['staff']],
        ['u2', ['staff', 'vpn']],
        ['u3', ['staff']],
        ['u4', ['staff']],
      ],
    );

    t.same(await store.removeDirectoryUsers(corp, 'staff', ['u1', 'u2'], { onRemoved: 'disable', now: 5 }), { disabled: 1, removed: 0, kept: 1 });
    t.match(await store.getUser('u1'), { enabled: false, syncedAt: 5 });
    t.same((await store.listDirectoryMembers(corp)).find((m) => m.externalId === 'u1'), { externalId: 'u1', enabled: false, items: [] }, 'left every item');
    t.equal((await store.getToken(tok1.id))?.userId, 'u1', 'a disabled user keeps its tokens');
    t.match(await store.getUser('u2'), { enabled: true }, 'still in vpn');

    t.same(await store.removeDirectoryUsers(corp, 'staff', ['u3'], { onRemoved: 'delete', now: 6 }), { disabled: 0, removed: 1, kept: 0 });
    t.equal(await store.getUser('u3'), undefined);
    t.equal(await store.getToken(tok3.id), undefined, 'a deleted user takes its tokens along');
    t.same(await store.removeDirectoryUsers('directory:other', 'staff', ['u2'], { onRemoved: 'delete', now: 7 }), { disabled: 0, removed: 0, kept: 0 }, 'another source: nothing');
    t.ok(await store.getUser(local.id), 'the local user is still there');

    // Back in scope: enabled again by the next upsert.
    t.same(await store.upsertDirectoryUsers(corp, [dirUser('u1', 'u1')], { item: 'staff', now: 8 }), { added: 0, updated: 1, disabled: 0, unchanged: 0, conflicts: [] });
    t.match(await store.getUser('u1'), { enabled: true });
  });

  withStore('directory sync: a dry-run upsert counts exactly and changes nothing', async (t, { store }) => {
    const corp: DirectorySource = 'directory:corp';
    await store.upsertDirectoryUsers(corp, [dirUser('d1', 'd1')], { item: 'staff', now: 1 });
    const before = await store.listUsersBySource(corp);
    const marker = await store.changeMarker();
    const dry = await store.upsertDirectoryUsers(corp, [dirUser('d1', 'd1', { email: 'new@corp.example' }), dirUser('d2', 'd2')], { item: 'staff', now: 2, dryRun: true });
    t.same(dry, { added: 1, updated: 1, disabled: 0, unchanged: 0, conflicts: [] });
    t.same(await store.listUsersBySource(corp), before);
    t.not(marker, undefined);
  });

  withStore('directory sync: 20 000 users in pages of 1 000, one transaction each', async (t, { store }) => {
    const corp: DirectorySource = 'directory:bulk';
    const started = performance.now();
    let added = 0;
    for (let page = 0; page < 20; page++) {
      const users = Array.from({ length: 1000 }, (_, i) => dirUser(`b-${page * 1000 + i}`, `bulk${page * 1000 + i}`));
      added += (await store.upsertDirectoryUsers(corp, users, { item: 'all', now: 1 })).added;
    }
    const ms = performance.now() - started;
    t.equal(added, 20_000);
    t.equal((await store.listUsersBySource(corp)).length, 20_000);
    t.comment(`20 000 directory users upserted in ${ms.toFixed(0)} ms`);
  });

  withStore('sync state and sync runs', async (t, { store }) => {
    t.equal(await store.getSyncState('directory:corp', 'staff'), undefined);
    const state = {
      source: 'directory:corp' as const,
      item: 'staff',
      itemHash: 'h1',
      server: 'CN=NTDS Settings,CN=DC1',
      invocationId: '0f6e-…',
      highestUsn: '18446744073709551615',
      modifyTimestamp: null,
      contextCsn: null,
      lastFullAt: 10,
      lastRunAt: 10,
    };
    await store.putSyncState(state);
    t.same(await store.getSyncState('directory:corp', 'staff'), state, 'a 64-bit USN survives as text');
    await store.putSyncState({ ...state, highestUsn: '20', lastRunAt: 20 });
    t.match(await store.getSyncState('directory:corp', 'staff'), { highestUsn: '20', lastRunAt: 20, lastFullAt: 10 });
    await t.rejects(store.putSyncState({ ...state, highestUsn: '-1' }), InvalidInputError);

    const base = { source: 'directory:corp' as const, kind: 'full' as const, status: 'ok' as const, forced: false, seen: 5, added: 5, updated: 0, disabled: 0, removed: 0, unchanged: 0, errors: [] };
    const r1 = await store.recordSyncRun({ ...base, item: 'staff', startedAt: 1, finishedAt: 2 });
    const r2 = await store.recordSyncRun({ ...base, item: 'vpn', startedAt: 3, finishedAt: 4, status: 'refused', errors: ['would remove 5 of 5'] });
    const r3 = await store.recordSyncRun({ ...base, source: 'directory:lab', item: 'staff', kind: 'delta', startedAt: 5, finishedAt: 6 });
    t.ok(r1.id < r2.id && r2.id < r3.id);
    t.match(r2, { item: 'vpn', status: 'refused', errors: ['would remove 5 of 5'], forced: false });
    t.same((await store.listSyncRuns()).map((r) => r.id), [r3.id, r2.id, r1.id], 'newest first');
    t.same((await store.listSyncRuns({ source: 'directory:corp' })).map((r) => r.id), [r2.id, r1.id]);
    t.same((await store.listSyncRuns({ source: 'directory:corp', item: 'staff' })).map((r) => r.id), [r1.id]);
    t.same((await store.listSyncRuns({ limit: 1 })).map((r) => r.id), [r3.id]);
    await t.rejects(store.recordSyncRun({ ...base, item: 'x', startedAt: 1, finishedAt: 1, kind: 'partial' as 'full' }), InvalidInputError);
  });

  // --- tokens ------------------------------------------------------------------------------

  withStore('tokens: add, read, list, delete; sealed secret round-trips as bytes', async (t, { store }) => {
    const u = await store.createUser({ username: 'frank' });
    const secret = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const tok = await store.addToken(tokenFor(u.id, { sealedSecret: secret, label: 'Yubikey', algorithm: 'SHA256', digits: 8, period: 60 }));
    t.match(tok, { userId: u.id, kind: 'totp', label: 'Yubikey', algorithm: 'SHA256', digits: 8, period: 60, counter: 0, lastUsedStep: null, enabled: true, lastUsedAt: null });
    t.ok(Buffer.isBuffer(tok.sealedSecret));
    t.ok(tok.sealedSecret.equals(secret), 'all 256 byte values survive');
    const again = await store.getToken(tok.id);
    t.ok(again !== undefined && Buffer.isBuffer(again.sealedSecret) && again.sealedSecret.equals(secret));
    t.same(again, tok);

    const hotp = await store.addToken(tokenFor(u.id, { id: 'tok-hotp', kind: 'hotp', counter: 7 }));
    t.equal(hotp.id, 'tok-hotp');
    t.equal(hotp.counter, 7);
    t.same(
      (await store.listTokens(u.id)).map((x) => x.id).sort(),
      [tok.id, 'tok-hotp'].sort(),
    );
    t.same(await store.listTokens('nobody'), []);
    await t.rejects(store.addToken(tokenFor(u.id, { id: 'tok-hotp' })), AlreadyExistsError);
    await t.rejects(store.addToken(tokenFor('nobody')), NotFoundError, 'token for an unknown user');
    await t.rejects(store.addToken(tokenFor(u.id, { digits: 3 })), InvalidInputError);

    await store.deleteToken(tok.id);
    t.equal(await store.getToken(tok.id), undefined);
    await t.rejects(store.deleteToken(tok.id), NotFoundError);

    await store.deleteUser(u.id);
    t.equal(await store.getToken('tok-hotp'), undefined, "deleting a user deletes its tokens");
  });

  withStore('TOTP: a step is claimed once; earlier and equal steps are refused; 50 racers, one winner', async (t, h) => {
    const { store } = h;
    const u = await store.createUser({ username: 'grace' });
    const tok = await store.addToken(tokenFor(u.id));
    t.equal(await store.claimTotpStep(tok.id, 1000, 1), true, 'first use');
    t.equal(await store.claimTotpStep(tok.id, 1000, 2), false, 'same step again');
    t.equal(await store.claimTotpStep(tok.id, 999, 3), false, 'an earlier step');
    t.equal(await store.claimTotpStep(tok.id, 1001, 4), true, 'the next step');
    t.match(await store.getToken(tok.id), { lastUsedStep: 1001, lastUsedAt: 4 });

    const r = await racers(h);
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => r.stores[i % r.stores.length]!.claimTotpStep(tok.id, 2000, 10)));
      t.equal(results.filter(Boolean).length, 1, `exactly one of 50 claims wins (${r.stores.length} instance(s))`);
    } finally {
      await r.close();
    }
    t.equal(await store.claimTotpStep('no-such-token', 5000, 1), false, 'an unknown token never wins');
    const hotp = await store.addToken(tokenFor(u.id, { kind: 'hotp' }));
    t.equal(await store.claimTotpStep(hotp.id, 5000, 1), false, 'an HOTP token has no TOTP steps');
  });

  withStore('HOTP: the counter moves once from its expected value; racers, one winner', async (t, h) => {
    const { store } = h;
    const u = await store.createUser({ username: 'heidi' });
    const tok = await store.addToken(tokenFor(u.id, { kind: 'hotp', counter: 5 }));
    t.equal(await store.advanceHotpCounter(tok.id, 5, 6, 1), true);
    t.equal(await store.advanceHotpCounter(tok.id, 5, 6, 2), false, 'the counter is no longer 5');
    t.equal((await store.getToken(tok.id))?.counter, 6);
    await t.rejects(store.advanceHotpCounter(tok.id, 6, 6, 3), InvalidInputError, 'next must move forward');

    const r = await racers(h);
    try {
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => r.stores[i % r.stores.length]!.advanceHotpCounter(tok.id, 6, 7 + (i % 3), 10)),
      );
      t.equal(results.filter(Boolean).length, 1, 'exactly one of 40 advances wins');
    } finally {
      await r.close();
    }
    t.equal(await store.advanceHotpCounter('no-such-token', 0, 1, 1), false);
  });

  // --- lockout -----------------------------------------------------------------------------

  withStore('lockout: N failures lock, the lock expires and is forgotten, clear forgets', async (t, { store }) => {
    const u = await store.createUser({ username: 'ivan' });
    const now = 1_000_000;
    t.same(await store.getLockout(u.id, now), { failures: 0, lockedUntil: null });
    t.same(await store.registerFailure(u.id, now, 3, 60_000), { failures: 1, lockedUntil: null });
    t.same(await store.registerFailure(u.id, now + 1, 3, 60_000), { failures: 2, lockedUntil: null });
    const locked = await store.registerFailure(u.id, now + 2, 3, 60_000);
    t.same(locked, { failures: 0, lockedUntil: now + 2 + 60_000 }, 'the third failure locks; the count starts again');
    t.same(await store.getLockout(u.id, now + 30_000), { failures: 0, lockedUntil: now + 60_002 }, 'still locked');
    t.same(await store.getLockout(u.id, now + 60_002), { failures: 0, lockedUntil: null }, 'expired at lockedUntil');
    t.same(await store.registerFailure(u.id, now + 70_000, 3, 60_000), { failures: 1, lockedUntil: null }, 'after expiry, counting starts over');
    await store.clearFailures(u.id);
    t.same(await store.getLockout(u.id, now + 70_001), { failures: 0, lockedUntil: null });
    await store.clearFailures('nobody');
    await t.rejects(store.registerFailure('nobody', now, 3, 1000), NotFoundError);

    // Atomic under concurrency: 10 simultaneous failures with max 5 lock exactly twice.
    const results = await Promise.all(Array.from({ length: 10 }, () => store.registerFailure(u.id, now + 80_000, 5, 1000)));
    t.equal(results.filter((r) => r.lockedUntil !== null).length, 6, 'the 5th failure locks; the 6th..9th count under the lock; the 10th re-locks');
    t.same(
      results.map((r) => r.failures),
      [1, 2, 3, 4, 0, 1, 2, 3, 4, 0],
      'no failure lost',
    );
    await store.deleteUser(u.id);
    t.same(await store.getLockout(u.id, now), { failures: 0, lockedUntil: null }, 'deleting the user deletes its lockout state');
  });

  // --- single-use facts --------------------------------------------------------------------

  withStore('claimOnce: one winner of 100 racers; expired claims are pruned', async (t, h) => {
    const { store } = h;
    t.equal(await store.claimOnce('state', 'n1', 2000, 1000), true);
    t.equal(await store.claimOnce('state', 'n1', 2000, 1001), false, 'claimed already');
    t.equal(await store.claimOnce('callback', 'n1', 2000, 1001), true, 'kinds are separate');

    const r = await racers(h);
    try {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => r.stores[i % r.stores.length]!.claimOnce('state', 'race', 5000, 1000)));
      t.equal(results.filter(Boolean).length, 1, 'exactly one of 100 claims wins');
    } finally {
      await r.close();
    }

    await store.prune(1999);
    t.equal(await store.claimOnce('state', 'n1', 9000, 1999), false, 'not pruned before it expires');
    await store.prune(2001);
    t.equal(await store.claimOnce('state', 'n1', 9000, 2001), true, 'forgotten once expired and pruned');
    t.equal(await store.claimOnce('state', 'race', 9000, 2001), false, 'an unexpired claim survives the prune');
  });

  // --- audit -------------------------------------------------------------------------------

  withStore('audit: 1 000 appends in one turn commit as one group and chain correctly', async (t, h) => {
    const { store } = h;
    const entries = Array.from({ length: 1000 }, () => makeEntry());
    const promises = entries.map((e) => store.appendAudit(e));
    // When the first promise settles the whole group must be committed already: one transaction.
    const visibleAtFirst = promises[0]!.then(async () => {
      const reader = h.openAnother !== undefined ? await h.openAnother() : store;
      try {
        return (await collect(reader.queryAudit())).length;
      } finally {
        if (reader !== store) await reader.close();
      }
    });
    const records = await Promise.all(promises);
    t.equal(await visibleAtFirst, 1000, 'all 1000 were committed when the first resolved');
    t.same(
      records.map((r) => r.seq),
      Array.from({ length: 1000 }, (_, i) => i + 1),
      'seq in call order, from 1, without gaps',
    );
    let prev = GENESIS_HASH;
    let linked = true;
    records.forEach((r, i) => {
      if (r.prevHash !== prev || r.hash !== auditHash(r.prevHash, entries[i]!, r.seq) || r.id !== entries[i]!.id) linked = false;
      prev = r.hash;
    });
    t.ok(linked, 'each record links to the one before and hashes its entry');
    t.same(await collect(store.queryAudit()), records, 'what was returned is what is stored');
    t.same(await store.verifyAudit(), { ok: true, records: 1000, problems: [] });
  });

  withStore('audit: appends across turns, from two instances, odd text, bad entries', async (t, h) => {
    const { store } = h;
    t.same(await store.verifyAudit(), { ok: true, records: 0, problems: [] }, 'an empty chain verifies');
    const a = await store.appendAudit(makeEntry());
    await new Promise((r) => setTimeout(r, 5));
    const b = await store.appendAudit(makeEntry({ result: 'reject', reason: 'bad_code' }));
    t.equal(a.seq, 1);
    t.equal(a.prevHash, GENESIS_HASH);
    t.equal(b.seq, 2);
    t.equal(b.prevHash, a.hash, 'the second turn continues the chain');

    // Client-chosen text: a lone surrogate and NUL cannot be stored identically by every engine;
    // they are recorded as U+FFFD rather than refused (an attempt is always recorded).
    const odd = await store.appendAudit(makeEntry({ username: 'eve\uD800\u0000=cmd|', callingStationId: '"quoted", with\nnewline', timings: { 'z': 1, 'a': 0.1 + 0.2, 'é': -0 } }));
    t.equal(odd.username, 'eve\uFFFD\uFFFD=cmd|');
    t.same((await collect(store.queryAudit({ user: 'EVE\uFFFD\uFFFD=CMD|' })))[0], odd, 'read back exactly');

    // A duplicate id fails alone; the rest of its group commits.
    const dupId = makeEntry();
    const [ok1, dup1, dup2, ok2] = await Promise.allSettled([
      store.appendAudit(dupId),
      store.appendAudit({ ...makeEntry(), id: dupId.id }),
      store.appendAudit({ ...makeEntry(), id: a.id }),
      store.appendAudit(makeEntry()),
    ]);
    t.equal(ok1.status, 'fulfilled');
    t.equal(ok2.status, 'fulfilled');
    t.ok(dup1.status === 'rejected' && dup1.reason instanceof AlreadyExistsError, 'duplicate id in the same group');
    t.ok(dup2.status === 'rejected' && dup2.reason instanceof AlreadyExistsError, 'duplicate of a committed id');
    if (ok1.status === 'fulfilled' && ok2.status === 'fulfilled') t.equal(ok2.value.seq, ok1.value.seq + 1, 'no gap for the refused ones');

    await t.rejects(store.appendAudit(makeEntry({ receivedAt: 1.5 })), InvalidInputError, 'a fractional epoch');
    await t.rejects(store.appendAudit(makeEntry({ timings: { total: Number.NaN } })), InvalidInputError, 'a NaN timing');
    await t.rejects(store.appendAudit(makeEntry({ result: 'maybe' as 'accept' })), InvalidInputError, 'an unknown result');

    if (h.openAnother !== undefined) {
      const other = await h.openAnother();
      try {
        const mixed = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? store : other).appendAudit(makeEntry())));
        t.equal(new Set(mixed.map((r) => r.seq)).size, 200, 'two instances never hand out the same seq');
        t.ok((await other.verifyAudit()).ok, 'the chain stays intact when two instances append');
      } finally {
        await other.close();
      }
    }
    const v = await store.verifyAudit();
    t.same(v.problems, []);
    t.ok(v.ok);
  });

  withStore('audit: queryAudit filters by since (inclusive), until (exclusive) and user', async (t, { store }) => {
    const at = (ms: number, username: string, userId: string | null): AuditEntry => makeEntry({ receivedAt: ms, decidedAt: ms + 1, username, userId });
    await Promise.all([
      store.appendAudit(at(100, 'alice', 'u-1')),
      store.appendAudit(at(200, 'BOB', 'u-2')),
      store.appendAudit(at(300, 'Alice', 'u-1')),
      store.appendAudit(at(400, 'mallory', null)),
      store.appendAudit(at(500, 'alice@corp', 'u-1')),
    ]);
    const times = async (q: Parameters<Store['queryAudit']>[0]): Promise<number[]> => (await collect(store.queryAudit(q))).map((r) => r.receivedAt);
    t.same(await times({}), [100, 200, 300, 400, 500]);
    t.same(await times({ since: 200 }), [200, 300, 400, 500]);
    t.same(await times({ until: 300 }), [100, 200]);
    t.same(await times({ since: 200, until: 500 }), [200, 300, 400]);
    t.same(await times({ user: 'ALICE' }), [100, 300], 'username, case-insensitive');
    t.same(await times({ user: 'bob' }), [200]);
    t.same(await times({ user: 'u-1' }), [100, 300, 500], 'or the user id');
    t.same(await times({ user: 'alice', since: 150 }), [300]);
    t.same(await times({ user: 'nobody' }), []);

    // Leaving an iteration early releases what it held.
    for await (const r of store.queryAudit()) {
      t.equal(r.seq, 1);
      break;
    }
    t.same(await times({ since: 450 }), [500]);
  });

  withStore('audit: close() flushes pending appends first', async (t, h) => {
    const { store } = h;
    const pending = Array.from({ length: 25 }, () => store.appendAudit(makeEntry()));
    await store.close();
    const records: AuditRecord[] = await Promise.all(pending);
    t.equal(records.at(-1)?.seq, 25, 'all resolved, committed by close');
    await t.rejects(store.appendAudit(makeEntry()), StoreError, 'no appends after close');
    await t.rejects(store.getUser('x'), StoreError, 'no reads after close');
    await store.close();
    if (h.openAnother !== undefined) {
      const again = await h.openAnother();
      try {
        t.same(await again.verifyAudit(), { ok: true, records: 25, problems: [] }, 'durable');
      } finally {
        await again.close();
      }
    }
  });

  // --- accounting and change notice ---------------------------------------------------------

  withStore('accounting: record and count', async (t, { store }) => {
    t.equal(await store.countAccounting(), 0);
    for (let i = 0; i < 3; i++) {
      await store.recordAccounting({
        receivedAt: 1000 + i,
        clientName: 'vpn',
        clientIp: '192.0.2.10',
        statusType: i === 0 ? 'Start' : 'Interim-Update',
        sessionId: 's1',
        username: 'alice',
        nasIdentifier: null,
        nasIpAddress: '192.0.2.10',
        attributes: { 'Acct-Session-Id': ['s1'], Class: ['a', 'b'] },
      });
    }
    t.equal(await store.countAccounting(), 3);
  });

  withStore('changeMarker: changes after a write by another instance, and after own writes', async (t, h) => {
    const { store } = h;
    const m0 = await store.changeMarker();
    t.type(m0, 'string');
    t.equal(await store.changeMarker(), m0, 'stable while nothing changes');
    await store.createUser({ username: 'judy' });
    const m1 = await store.changeMarker();
    t.not(m1, m0, 'own write');
    if (h.openAnother === undefined) return;
    const other = await h.openAnother();
    try {
      t.equal(await store.changeMarker(), m1, 'opening another instance is no change');
      await other.createUser({ username: 'ken' });
      const m2 = await store.changeMarker();
      t.not(m2, m1, "another instance's write is noticed");
      await other.appendAudit(makeEntry());
      t.not(await store.changeMarker(), m2, "another instance's audit append is noticed");
    } finally {
      await other.close();
    }
  });

  // --- cloud verification ------------------------------------------------------------------

  withStore('push devices, PINs: added, listed, used, deleted; gone with the user; sync never touches the PIN', async (t, { store }) => {
    const user = await store.createUser({ username: 'pia' });
    const device = await store.addPushDevice({ userId: user.id, provider: 'ntfy', address: 'mfa_topic_1', label: 'phone' });
    t.match(device, { userId: user.id, provider: 'ntfy', address: 'mfa_topic_1', label: 'phone', lastUsedAt: null });
    await store.markPushDeviceUsed(device.id, 1_000);
    t.match(await store.listPushDevices(user.id), [{ id: device.id, lastUsedAt: 1_000 }]);
    await t.rejects(store.addPushDevice({ userId: 'nobody', provider: 'ntfy', address: 'x', label: 'x' }), { code: 'GW_ERR_NOT_FOUND' });
    await store.deletePushDevice(device.id);
    await t.rejects(store.deletePushDevice(device.id), { code: 'GW_ERR_NOT_FOUND' });
    t.same(await store.listPushDevices(user.id), []);

    const pinned = await store.updateUser(user.id, { pinHash: 'scrypt$pin', pinMustChange: true });
    t.match(pinned, { pinHash: 'scrypt$pin', pinMustChange: true });
    t.match(await store.updateUser(user.id, { email: 'p@example.test' }), { pinHash: 'scrypt$pin', pinMustChange: true }, 'other updates keep the PIN');
    await store.addPushDevice({ userId: user.id, provider: 'ntfy', address: 'mfa_topic_2', label: 'phone' });
    await store.deleteUser(user.id);
    t.same(await store.listPushDevices(user.id), [], 'devices go with the user');

    await store.upsertDirectoryUsers('directory:corp', [{ externalId: 'g-1', dn: 'uid=sam,dc=corp', username: 'sam', upn: null, firstName: null, lastName: null, email: null, phone: null, mobile: null, defaultMethod: null, language: null, enabled: true }], { item: 'all', now: 1 });
    const sam = (await store.findUser('sam'))!;
    await store.updateUser(sam.id, { pinHash: 'scrypt$sam' });
    await store.upsertDirectoryUsers('directory:corp', [{ externalId: 'g-1', dn: 'uid=sam,dc=corp', username: 'sam', upn: null, firstName: 'Sam', lastName: null, email: null, phone: null, mobile: null, defaultMethod: null, language: null, enabled: true }], { item: 'all', now: 2 });
    t.match(await store.findUser('sam'), { firstName: 'Sam', pinHash: 'scrypt$sam' }, 'a sync update keeps the PIN');
  });

  withStore('sent codes: live until expiry, used once (one winner among racers), pruned', async (t, h) => {
    const { store } = h;
    const user = await store.createUser({ username: 'otto' });
    const hash = Buffer.alloc(32, 7);
    await store.addSentCode({ id: 'c1', userId: user.id, method: 'sms', provider: 'tw', codeHash: hash, expiresAt: 10_000, createdAt: 1_000 });
    await store.addSentCode({ id: 'c2', userId: user.id, method: 'sms', provider: 'duo', codeHash: null, expiresAt: 20_000, createdAt: 2_000 });
    t.match(await store.listLiveSentCodes(user.id, 5_000), [{ id: 'c2', codeHash: null }, { id: 'c1', codeHash: hash, usedAt: null }], 'newest first');
    const r = await racers(h);
    try {
      const wins = await Promise.all([...r.stores, ...r.stores].map((s) => s.useSentCode('c1', 5_000)));
      t.equal(wins.filter(Boolean).length, 1, 'one winner');
    } finally {
      await r.close();
    }
    t.match(await store.listLiveSentCodes(user.id, 5_000), [{ id: 'c2' }, { id: 'c1', usedAt: 5_000 }], 'a used code stays visible (a second use is a replay) until it expires');
    t.equal(await store.useSentCode('c2', 25_000), false, 'expired');
    t.same((await store.listLiveSentCodes(user.id, 25_000)).map((c) => c.id), []);
    await store.prune(25_000);
  });

  withStore('bypasses: uses counted down, expiry, one winner for the last use, delete', async (t, h) => {
    const { store } = h;
    const user = await store.createUser({ username: 'bea' });
    const b = await store.addBypass({ userId: user.id, expiresAt: 60_000, uses: 2, reason: 'lost phone', now: 1_000 });
    t.match(b, { userId: user.id, usesLeft: 2, reason: 'lost phone', expiresAt: 60_000 });
    t.match(await store.useBypass(user.id, 2_000), { id: b.id, usesLeft: 1 });
    const r = await racers(h);
    try {
      const taken = await Promise.all([...r.stores, ...r.stores].map((s) => s.useBypass(user.id, 3_000)));
      t.equal(taken.filter((x) => x !== undefined).length, 1, 'the last use goes to one request');
    } finally {
      await r.close();
    }
    t.equal(await store.useBypass(user.id, 4_000), undefined);
    await store.addBypass({ userId: user.id, expiresAt: 10_000, uses: 1, now: 5_000 });
    t.equal(await store.useBypass(user.id, 10_000), undefined, 'expired at expiresAt');
    await store.addBypass({ userId: user.id, expiresAt: 90_000, uses: 1, now: 5_000 });
    t.equal((await store.listBypasses(undefined, 20_000)).length, 1);
    t.equal((await store.listBypasses(user.id, 20_000)).length, 1);
    t.equal(await store.deleteBypasses(user.id), 3);
    t.same(await store.listBypasses(user.id, 20_000), []);
    await t.rejects(store.addBypass({ userId: user.id, expiresAt: 90_000, uses: 0, now: 5_000 }), { code: 'GW_ERR_INVALID_INPUT' });
  });

  withStore('remembered logins and rate slots', async (t, h) => {
    const { store } = h;
    const user = await store.createUser({ username: 'rita' });
    await store.rememberLogin(user.id, 'vpn|198.51.100.7', 10_000);
    t.equal(await store.isLoginRemembered(user.id, 'vpn|198.51.100.7', 9_999), true);
    t.equal(await store.isLoginRemembered(user.id, 'vpn|198.51.100.8', 9_999), false);
    t.equal(await store.isLoginRemembered(user.id, 'vpn|198.51.100.7', 10_000), false, 'expired');
    await store.rememberLogin(user.id, 'vpn|198.51.100.7', 20_000);
    t.equal(await store.isLoginRemembered(user.id, 'vpn|198.51.100.7', 15_000), true, 'extended');
    await store.forgetLogins(user.id);
    t.equal(await store.isLoginRemembered(user.id, 'vpn|198.51.100.7', 15_000), false, 'forgotten');

    const r = await racers(h);
    try {
      const slots = await Promise.all(Array.from({ length: 10 }, (_, i) => r.stores[i % r.stores.length]!.takeRateSlot('push', user.id, 600_000, 5, 1_000_000)));
      t.equal(slots.filter(Boolean).length, 5, 'exactly the limit, among racers');
    } finally {
      await r.close();
    }
    t.equal(await store.takeRateSlot('push', user.id, 600_000, 5, 1_000_000 + 600_000), true, 'the window moved on');
    t.equal(await store.takeRateSlot('push', 'someone-else', 600_000, 5, 1_000_000), true, 'per key');
    t.equal(await store.takeRateSlot('sms', '*', 3_600_000, 0, 1_000_000), false, 'limit 0 refuses');
    await store.prune(1_000_000 + 86_400_001);
    // Six events of (push, user) were taken; the five at 1 000 000 are older than a day now.
    t.equal(await store.takeRateSlot('push', user.id, 86_400_000 * 2, 2, 1_000_000 + 86_400_001), true, 'events older than a day are pruned');
  });
}
