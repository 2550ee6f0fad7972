import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Peers are Debian packages installed by scripts/install-test-peers.sh. A developer without them
 * gets a skip that says what to install; CI sets MFA_REQUIRE_PEERS=1, where a missing peer is a
 * failure, so a broken install can never turn into a green run of skipped tests.
 */

/** The slice of a tap `Test` this needs (bench scripts can pass their own). */
export interface PeerTest {
  pass(message: string, extra: { skip: string }): unknown;
  fail(message: string): unknown;
}

// sbin is not on a non-root user's PATH, but freeradius and slapd live there.
const EXTRA_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** Absolute path of an executable on PATH (plus the sbin directories), or undefined. */
export function findBinary(name: string): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Like findBinary, but throws the install hint instead of returning undefined. */
export function binaryOrThrow(name: string, pkg: string): string {
  const path = findBinary(name);
  if (path === undefined) throw new Error(missingMessage(name, pkg));
  return path;
}

/**
 * true when `binary` is installed. Otherwise fails the test (MFA_REQUIRE_PEERS=1) or skips it,
 * and returns false: `if (!requirePeer(t, 'freeradius', 'freeradius')) return;`
 */
export function requirePeer(t: PeerTest, binary: string, pkg: string): boolean {
  return requireAvailable(t, `${binary} is not installed`, findBinary(binary) === undefined ? missingMessage(binary, pkg) : undefined);
}

/**
 * The same rule for a peer that needs more than a binary (root, a loopback alias, …): `why` is
 * undefined when the peer can run, else what is missing. Fails under MFA_REQUIRE_PEERS=1, else skips.
 */
export function requireAvailable(t: PeerTest, what: string, why: string | undefined): boolean {
  if (why === undefined) return true;
  if (process.env.MFA_REQUIRE_PEERS === '1') t.fail(`${why} (MFA_REQUIRE_PEERS=1, so this is a failure, not a skip)`);
  else t.pass(what, { skip: why }); // an assertion marked # SKIP, counted in tap's skip total
  return false;
}

function missingMessage(binary: string, pkg: string): string {
  return `'${binary}' not found: install the Debian package '${pkg}' (as root: scripts/install-test-peers.sh)`;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
