import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { binaryOrThrow } from './require-peer.js';

/**
 * Throwaway TLS material for directory peers (slapd, Samba AD): a CA, a server certificate it
 * signed whose SANs name the peer's loopback IP and DNS name(s), so a client can verify the
 * peer while connecting by IP (no /etc/hosts, no resolver), and a second, unrelated CA for the
 * "a certificate the configured CA did not sign is refused" cases. Made with `openssl` (RSA 2048,
 * valid 30 days); private keys are mode 0600, which Samba insists on for `tls keyfile`.
 */

export interface TlsFilesOptions {
  /** The peer's loopback address, written as an IP SAN. */
  ip: string;
  /** The certificate's CN and first DNS SAN (e.g. dc1.example.test). */
  dnsName: string;
  /** More DNS SANs (e.g. example.test, localhost). */
  extraDnsNames?: readonly string[];
  /** Subject CN of the CA (default "Test CA <dnsName>"). */
  caName?: string;
}

export interface TlsFiles {
  /** PEM of the CA that signed certFile: what a client trusts (LDAPTLS_CACERT, Node tls `ca`). */
  caFile: string;
  /** The CA's private key (0600), to sign more certificates in a test. */
  caKeyFile: string;
  /** The server certificate (PEM). */
  certFile: string;
  /** The server's private key (PEM, unencrypted, 0600). */
  keyFile: string;
  /** PEM of a CA that signed nothing here: a client trusting only it must refuse the peer. */
  untrustedCaFile: string;
}

const run = promisify(execFile);
const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Writes ca.pem, ca.key, cert.pem, key.pem and untrusted-ca.pem into `dir` (created 0700 if missing). */
export async function makeTlsFiles(dir: string, opts: TlsFilesOptions): Promise<TlsFiles> {
  const openssl = binaryOrThrow('openssl', 'openssl');
  if (isIP(opts.ip) === 0) throw new Error(`makeTlsFiles: ip must be an IP address, not ${JSON.stringify(opts.ip)}`);
  const dnsNames = [opts.dnsName, ...(opts.extraDnsNames ?? [])];
  for (const name of dnsNames) {
    if (!DNS_NAME.test(name)) throw new Error(`makeTlsFiles: bad DNS name ${JSON.stringify(name)}`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files: TlsFiles = {
    caFile: join(dir, 'ca.pem'),
    caKeyFile: join(dir, 'ca.key'),
    certFile: join(dir, 'cert.pem'),
    keyFile: join(dir, 'key.pem'),
    untrustedCaFile: join(dir, 'untrusted-ca.pem'),
  };
  const untrustedKey = join(dir, 'untrusted-ca.key');
  const csr = join(dir, 'server.csr');
  const ext = join(dir, 'server.ext');
  const caName = opts.caName ?? `Test CA ${opts.dnsName}`;
  const openssl$ = (args: string[]): Promise<unknown> =>
    run(openssl, args, { cwd: dir, timeout: 60_000 }).catch((err: unknown) => {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`openssl ${args[0] ?? ''} failed: ${err instanceof Error ? err.message : String(err)}\n${stderr}`);
    });
  const caArgs = (name: string, key: string, cert: string): string[] => [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', key, '-out', cert,
  ];
  writeFileSync(
    ext,
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n` +
      `subjectAltName=${[`IP:${opts.ip}`, ...dnsNames.map((n) => `DNS:${n}`)].join(',')}\n`,
  );
  // The three keys are independent: generate them at once.
  await Promise.all([
    openssl$(caArgs(caName, files.caKeyFile, files.caFile)),
    openssl$(caArgs(`Untrusted Test CA ${opts.dnsName}`, untrustedKey, files.untrustedCaFile)),
    openssl$(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${opts.dnsName}`, '-keyout', files.keyFile, '-out', csr]),
  ]);
  await openssl$([
    'x509', '-req', '-in', csr, '-CA', files.caFile, '-CAkey', files.caKeyFile, '-CAcreateserial',
    '-days', '30', '-extfile', ext, '-out', files.certFile,
  ]);
  chmodSync(files.keyFile, 0o600);
  chmodSync(files.caKeyFile, 0o600);
  for (const path of [untrustedKey, csr, ext, join(dir, 'ca.srl')]) rmSync(path, { force: true });
  return files;
}
