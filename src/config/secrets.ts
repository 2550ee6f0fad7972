import { randomBytes, randomInt } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { SecretError, errorMessage } from '../errors.js';
import type { SecretRef } from './schema.js';

/**
 * Resolves `{env: NAME}` / `{file: path}` secret references to bytes, and creates the
 * `generate: true` files on first start. The only place besides the loader that reads
 * process.env (through ctx.env) or secret files.
 */

/** `password`: any non-empty text (a directory service account's password), never generated. */
export type SecretKind = 'radius-secret' | 'master-key' | 'password';

export interface SecretContext {
  /** Relative `{file:}` paths are resolved against this directory (the data directory). */
  readonly baseDir: string;
  readonly env: NodeJS.ProcessEnv;
  /** Whether a missing `generate: true` file may be created now (false for check-config). */
  readonly generate: boolean;
  readonly kind: SecretKind;
}

export interface ResolvedSecret {
  readonly value: Buffer;
  /** Set when this call created the file: a notice for the admin naming the absolute path. */
  readonly generated?: string;
}

/** RFC 6614 §4 / Blast-RADIUS guidance: short shared secrets are brute-forced offline from one packet. */
export const MIN_RADIUS_SECRET_LENGTH = 16;
export const MASTER_KEY_BYTES = 32;
const GENERATED_RADIUS_SECRET_LENGTH = 32;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export async function resolveSecret(ref: SecretRef, keyPath: string, ctx: SecretContext): Promise<ResolvedSecret> {
  if ('env' in ref) {
    const raw = ctx.env[ref.env];
    if (raw === undefined || raw === '') throw new SecretError(`${keyPath}: environment variable ${ref.env} is not set`);
    return { value: decode(Buffer.from(raw, 'utf8'), keyPath, ctx.kind) };
  }

  const file = resolve(ctx.baseDir, ref.file);
  const existing = await readSecretFile(file, keyPath);
  if (existing !== undefined) return { value: decode(existing, keyPath, ctx.kind) };

  if (!ref.generate) throw new SecretError(`${keyPath}: secret file ${file} does not exist`);
  if (!ctx.generate) {
    throw new SecretError(`${keyPath}: secret file ${file} does not exist yet (generate: true creates it when the gateway starts)`);
  }
  const created = await createSecretFile(file, keyPath, ctx.kind);
  if (created === undefined) {
    // Another process (or another client sharing the file) created it first: use theirs.
    const theirs = await readSecretFile(file, keyPath);
    if (theirs === undefined) throw new SecretError(`${keyPath}: secret file ${file} vanished while it was being created`);
    return { value: decode(theirs, keyPath, ctx.kind) };
  }
  return { value: decode(created, keyPath, ctx.kind), generated: generatedNotice(file, ctx.kind) };
}

function generatedNotice(file: string, kind: SecretKind): string {
  return kind === 'radius-secret'
    ? `generated a new RADIUS shared secret in ${file} (mode 0600); configure the same secret on the NAS`
    : `generated a new master key in ${file} (mode 0600); back it up: without it enrolled tokens cannot be decrypted`;
}

/** Reads a secret file, refusing one that group or others may access. `undefined` when it does not exist. */
async function readSecretFile(file: string, keyPath: string): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(file, fsConstants.O_RDONLY);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new SecretError(`${keyPath}: cannot open secret file ${file}: ${errorMessage(err)}`);
  }
  try {
    // fstat on the open descriptor, so the mode checked is the mode of the file read.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new SecretError(`${keyPath}: secret file ${file} is not a regular file`);
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new SecretError(
        `${keyPath}: secret file ${file} is accessible by group or others (mode ${mode}); restrict it with: chmod 600 ${file}`,
      );
    }
    return trimOneNewline(await handle.readFile());
  } catch (err) {
    if (err instanceof SecretError) throw err;
    throw new SecretError(`${keyPath}: cannot read secret file ${file}: ${errorMessage(err)}`);
  } finally {
    await handle.close();
  }
}

function trimOneNewline(buf: Buffer): Buffer {
  if (buf.length > 0 && buf[buf.length - 1] === 0x0a) {
    const end = buf.length >= 2 && buf[buf.length - 2] === 0x0d ? buf.length - 2 : buf.length - 1;
    return buf.subarray(0, end);
  }
  return buf;
}

/**
 * Creates the file with fresh random content, mode 0600, never replacing an existing one.
 * The content is written to an O_EXCL temp file first and published with link(), which fails
 * if the target exists: a concurrent reader never sees a half-written secret.
 * Returns the secret bytes (without the trailing newline), or `undefined` when the file appeared meanwhile.
 */
async function createSecretFile(file: string, keyPath: string, kind: SecretKind): Promise<Buffer | undefined> {
  const secret = kind === 'radius-secret' ? randomAlphanumeric(GENERATED_RADIUS_SECRET_LENGTH) : randomBytes(MASTER_KEY_BYTES).toString('hex');
  const content = Buffer.from(`${secret}\n`, 'utf8');
  const dir = dirname(file);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new SecretError(`${keyPath}: cannot create directory ${dir} for the secret file: ${errorMessage(err)}`);
  }

  const temp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeExclusive(temp, content);
    try {
      await link(temp, file);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return undefined;
      // Filesystems without hard links: fall back to creating the target itself exclusively.
      if (!isErrno(err, 'EPERM') && !isErrno(err, 'ENOTSUP') && !isErrno(err, 'EOPNOTSUPP') && !isErrno(err, 'ENOSYS')) throw err;
      try {
        await writeExclusive(file, content);
      } catch (err2) {
        if (isErrno(err2, 'EEXIST')) return undefined;
        throw err2;
      }
    }
  } catch (err) {
    throw new SecretError(`${keyPath}: cannot create secret file ${file}: ${errorMessage(err)}`);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  return Buffer.from(secret, 'utf8');
}

async function writeExclusive(path: string, content: Buffer): Promise<void> {
  const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Printable on purpose: admins paste it into their NAS. 32 of 62 symbols ≈ 190 bits. */
function randomAlphanumeric(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHANUMERIC.charAt(randomInt(ALPHANUMERIC.length));
  return out;
}

function decode(raw: Buffer, keyPath: string, kind: SecretKind): Buffer {
  if (kind === 'master-key') return decodeMasterKey(raw, keyPath);
  if (kind === 'password') {
    if (raw.length === 0) throw new SecretError(`${keyPath}: must not be empty`);
    return raw;
  }
  if (raw.length < MIN_RADIUS_SECRET_LENGTH) {
    throw new SecretError(`${keyPath}: must be at least ${MIN_RADIUS_SECRET_LENGTH} characters`);
  }
  return raw;
}

/** 64 hex characters, or base64 (standard or URL-safe, padded or not) of exactly 32 bytes. */
function decodeMasterKey(raw: Buffer, keyPath: string): Buffer {
  const text = raw.toString('utf8').trim();
  if (/^[0-9A-Fa-f]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(text) || /^[A-Za-z0-9_-]{43}=?$/.test(text)) {
    const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (key.length === MASTER_KEY_BYTES) return key;
  }
  throw new SecretError(`${keyPath}: must be ${MASTER_KEY_BYTES} bytes (64 hex characters)`);
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}
