import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { SyncedUser } from '../../src/store/store.js';
import { GATEWAY_BIN, REPO_ROOT, gatewayConfig, type CliResult } from '../peers/gateway.js';
import { trackChild } from '../peers/process-reaper.js';
import { findBinary, requirePeer } from '../peers/require-peer.js';
import { startSlapd } from '../peers/slapd.js';
import { tempDir } from '../peers/temp.js';

/**
 * `mfa-gateway sync run|status` as an admin runs them, against a real slapd: counts on stdout,
 * exit 0, or exit 1 with one line on stderr; --dry-run changes nothing; the mass-deletion guard
 * and --force; status lists the runs; a progress bar only on a terminal.
 */

function cli(args: readonly string[], config: string, viaTerminal = false): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv = [GATEWAY_BIN, ...args, '--config', config];
    // `script` gives the command a pseudo-terminal, as an admin's shell would.
    const child = viaTerminal
      ? spawn(findBinary('script') ?? 'script', ['-qec', [process.execPath, ...argv].map((a) => `'${a}'`).join(' '), '/dev/null'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, argv, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    trackChild(child, 'mfa-gateway cli', config);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

const lines = (text: string): string[] => text.split(/\r?\n/).filter((l) => l.trim() !== '');

void t.test('sync run and sync status from the command line', async (t) => {
  if (!requirePeer(t, 'slapd', 'slapd')) return;
  const slapd = await startSlapd({ t });
  const dir = tempDir('sync-cli');
  t.teardown(() => dir.cleanup());
  const dataDir = join(dir.path, 'data');
  const configFile = join(dir.path, 'gateway.yaml');
  const q = JSON.stringify;
  const directories = `directories:
  corp:
    flavour: ldap
    urls: [${q(slapd.ldapsUrl)}]
    ca_file: ${q(slapd.caFile)}
    bind_dn: ${q(slapd.adminDn)}
    bind_password: {file: corp-bind-password}
    base_dn: ${q(slapd.baseDn)}
    sync:
      interval_minutes: 15
      clock_skew_seconds: 0
      items:
        - name: people
          ou: ${q(`ou=people,${slapd.baseDn}`)}
        - name: others
          filter: "(sn=One)"
`;
  const yaml = gatewayConfig({ radiusPort: 18120, acctPort: 18130, dataDir, logLevel: 'silent', extra: directories });
  // The bind password lives in a 0600 file, never in the YAML.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, 'corp-bind-password'), slapd.adminPassword, { mode: 0o600 });
  writeFileSync(configFile, yaml, { mode: 0o600 });
  const dbPath = join(dataDir, 'gateway.db');
  const listUsers = async (): Promise<SyncedUser[]> => {
    const store = await openSqliteStore({ path: dbPath });
    try {
      return await store.listUsersBySource('directory:corp');
    } finally {
      await store.close();
    }
  };

  t.equal((await cli(['check-config'], configFile)).code, 0, 'the config with a sync section is valid');
  const never = await cli(['sync', 'status'], configFile);
  t.equal(never.code, 0);
  t.match(lines(never.stdout)[1], /^corp\s+people\s+never\s/, 'no runs yet');

  const added = await cli(['users', 'add', 'localadmin', '--no-password', '--email', 'admin@local'], configFile);
  t.equal(added.code, 0, added.stderr);

  // --- a dry run writes nothing ---
  const dry = await cli(['sync', 'run', '--dry-run'], configFile);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, /^corp\/people: full ok \(dry run: nothing changed\): 5 added, 0 updated, 0 disabled, 0 removed, 0 unchanged \(5 read, 5 in scope\)/m);
  t.match(dry.stdout, /^corp\/others: full ok \(dry run: nothing changed\): 1 added/m);
  t.equal(dry.stderr, '', 'no progress bar when not on a terminal');
  t.same(await listUsers(), [], 'nothing synced by the dry run');

  // --- the real run ---
  const run = await cli(['sync', 'run'], configFile);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /^corp\/people: full ok: 5 added/m);
  t.equal((await listUsers()).length, 6);

  // A change, seen by a dry run but not written.
  await new Promise((r) => setTimeout(r, 1100)); // modifyTimestamp has one-second steps
  await slapd.ldapmodify(`dn: ${slapd.userDn('user2')}\nchangetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 555 4242\n`);
  const dryChange = await cli(['sync', 'run', '--dry-run', '--item', 'people'], configFile);
  t.equal(dryChange.code, 0, dryChange.stderr);
  t.match(dryChange.stdout, /^corp\/people: delta ok \(dry run: nothing changed\): 0 added, 1 updated, 0 disabled, 0 removed/m);
  t.equal(lines(dryChange.stdout).length, 1, 'only the item asked for');
  t.equal((await listUsers()).find((u) => u.username === 'user2')?.phone, '+1 555 0102', 'the dry run changed nothing');

  // --- a progress bar on a terminal ---
  if (findBinary('script') !== undefined) {
    const tty = await cli(['sync', 'run', '--item', 'people'], configFile, true);
    t.equal(tty.code, 0, tty.stdout);
    t.match(tty.stdout, /syncing \d+|\[[#-]+\]/, 'a progress line on the terminal');
    t.match(tty.stdout, /corp\/people: delta ok: 0 added, 1 updated/);
  } else {
    await cli(['sync', 'run', '--item', 'people'], configFile);
  }
  t.equal((await listUsers()).find((u) => u.username === 'user2')?.phone, '+1 555 4242');

  // --- the mass-deletion guard, then --force ---
  await slapd.ldapmodify(`dn: ${slapd.userDn('user5')}\nchangetype: delete\n`);
  const refused = await cli(['sync', 'run'], configFile);
  t.equal(refused.code, 1);
  t.same(lines(refused.stderr), [
    'mfa-gateway: sync refused: corp/people: refused: this run would disable 1 of 6 synced users (16.7% > max_delete_percent 10%); nobody was disabled. Check the sync items and the directory, or run with --force',
  ]);
  t.equal((await listUsers()).find((u) => u.username === 'user5')?.enabled, true);
  const forced = await cli(['sync', 'run', '--force'], configFile);
  t.equal(forced.code, 0, forced.stderr);
  t.match(forced.stdout, /^corp\/people: delta ok: 0 added, 0 updated, 1 disabled/m);
  t.equal((await listUsers()).find((u) => u.username === 'user5')?.enabled, false);

  // --- status ---
  const status = await cli(['sync', 'status', '--limit', '10'], configFile);
  t.equal(status.code, 0, status.stderr);
  const rows = lines(status.stdout);
  t.match(rows[0], /^DIRECTORY\s+ITEM\s+STARTED\s+KIND\s+STATUS\s+ADDED\s+UPDATED\s+DISABLED\s+REMOVED\s+UNCHANGED\s+DURATION\s+LAST FULL\s+PROBLEMS$/);
  const people = rows.filter((r) => /^corp\s+people\s/.test(r)).map((r) => r.split(/\s{2,}/).slice(3, 9).join(' '));
  t.same(people, ['delta ok 0 0 1 0', 'delta refused 0 0 0 0', 'delta ok 0 1 0 0', 'full ok 5 0 0 0'], 'newest first; dry runs are not recorded');
  const json = await cli(['sync', 'status', '--json'], configFile);
  const parsed = JSON.parse(json.stdout) as Array<{ directory: string; item: string; runs: Array<{ status: string }> }>;
  t.same(parsed.map((r) => [r.directory, r.item, r.runs[0]?.status]), [['corp', 'people', 'ok'], ['corp', 'others', 'ok']]);

  // --- errors: one line, exit 1 ---
  const unknown = await cli(['sync', 'run', '--directory', 'nope'], configFile);
  t.equal(unknown.code, 1);
  t.same(lines(unknown.stderr), ["mfa-gateway: no directory 'nope' with a sync section (have: corp) [GW_ERR_INVALID_INPUT]"]);
  const users = await cli(['users', 'show', 'localadmin'], configFile);
  t.match(JSON.parse(users.stdout), { username: 'localadmin', source: 'local', email: 'admin@local', enabled: true }, 'the local user is untouched');
  for (const r of [dry, run, dryChange, refused, forced, status, json]) t.notOk((r.stdout + r.stderr).includes(slapd.adminPassword), 'no password in the output');
});
