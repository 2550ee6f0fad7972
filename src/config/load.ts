import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, SecretError, errorMessage } from '../errors.js';
import type { GatewayConfig, LoadedConfig, ResolvedClient, ResolvedDirectory, ResolvedHttp, ResolvedProvider, ResolvedUpstream } from './config.js';
import { PROVIDER_SECRET_KEYS } from './providers-schema.js';
import { encodeReplyAttributes } from './reply-attributes-schema.js';
import { configSchema } from './schema.js';
import type { RawConfig, SecretRef } from './schema.js';
import { resolveSecret } from './secrets.js';
import type { SecretKind } from './secrets.js';

/**
 * Parse YAML → validate against the one schema → resolve paths and secrets → deep-freeze.
 * Every problem is reported as `path.to.key: message (line N)`, the form `check-config` prints.
 */

export interface LoadOptions {
  /** Create missing `generate: true` secret files (default true). */
  readonly generateSecrets?: boolean;
  /** Where `{env: NAME}` references are looked up (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<LoadedConfig> {
  const parsed = await parseAndValidate(file);
  const env = opts.env ?? process.env;
  // A private copy: zod hands out its default values by reference, and those must not be frozen.
  const raw = structuredClone(parsed.raw);
  const dataDir = resolve(dirname(parsed.file), raw.data_dir);

  // Check every reference before creating any file, so a failed start neither half-generates
  // secrets nor swallows the "generated …" notice the admin needs to configure the NAS.
  const problems = await secretProblems(parsed, dataDir, env);
  if (problems.length === 1 && problems[0] !== undefined) throw problems[0].error;
  if (problems.length > 1) throw new SecretError(problems.map((p) => p.error.message).join('; '));

  const ctx = { baseDir: dataDir, env, generate: opts.generateSecrets ?? true };
  const generated: string[] = [];
  const master = await resolveSecret(raw.keys.master_key, MASTER_KEY_PATH, { ...ctx, kind: 'master-key' });
  if (master.generated !== undefined) generated.push(`${MASTER_KEY_PATH}: ${master.generated}`);

  const clients: ResolvedClient[] = [];
  for (const [i, client] of raw.clients.entries()) {
    // Sequential on purpose: clients sharing one generated file get it created once, then read.
    const keyPath = clientSecretPath(i);
    const secret = await resolveSecret(client.secret, keyPath, { ...ctx, kind: 'radius-secret' });
    if (secret.generated !== undefined) generated.push(`client '${client.name}' (${keyPath}): ${secret.generated}`);
    clients.push({ ...client, secret: secret.value });
  }

  const directories: Record<string, ResolvedDirectory> = {};
  for (const [name, dir] of Object.entries(raw.directories)) {
    const password = await resolveSecret(dir.bind_password, directoryPasswordPath(name), { ...ctx, kind: 'password' });
    const { bind_password: _bindPassword, ca_file, ...rest } = dir;
    directories[name] = { ...rest, name, bind_password: password.value.toString('utf8'), ca: ca_file === undefined ? undefined : await readPemFile(resolve(dataDir, ca_file), `directories.${name}.ca_file`, 'CERTIFICATE') };
    // Encoded once here (the schema validated them): a login only looks its group's attributes up.
    const resolved = directories[name];
    if (resolved !== undefined && dir.reply_attributes !== undefined) directories[name] = { ...resolved, encoded_reply_attributes: encodeReplyAttributes(dir.reply_attributes) };
  }
  const upstreams: Record<string, ResolvedUpstream> = {};
  for (const [name, up] of Object.entries(raw.upstreams)) {
    const servers = [];
    for (const [i, server] of up.servers.entries()) {
      const secret = await resolveSecret(server.secret, upstreamSecretPath(name, i), { ...ctx, kind: 'radius-secret' });
      servers.push({ address: server.address, port: server.port, secret: secret.value });
    }
    upstreams[name] = { ...up, name, servers };
  }

  const providers: Record<string, ResolvedProvider> = {};
  for (const [name, provider] of Object.entries(raw.providers)) {
    const resolved: Record<string, unknown> = { ...provider, name, ca: provider.ca_file === undefined ? undefined : await readPemFile(resolve(dataDir, provider.ca_file), `providers.${name}.ca_file`, 'CERTIFICATE') };
    delete resolved.ca_file;
    for (const key of PROVIDER_SECRET_KEYS[provider.type]) {
      const ref = (provider as Record<string, unknown>)[key] as SecretRef | undefined;
      resolved[key] = ref === undefined ? undefined : (await resolveSecret(ref, `providers.${name}.${key}`, { ...ctx, kind: 'password' })).value.toString('utf8');
    }
    // The HMAC key of a webhook signs what reaches users' phones: no short, guessable ones.
    if (provider.type === 'webhook' && String(resolved.secret).length < 32) {
      const line = `providers.${name}.secret: must be at least 32 characters`;
      throw new ConfigError(line, [line]);
    }
    providers[name] = resolved as unknown as ResolvedProvider;
  }
  const { tls: httpTls, ...httpRest } = raw.http;
  const http: ResolvedHttp = {
    ...httpRest,
    tls:
      httpTls === undefined
        ? undefined
        : { cert: await readPemFile(resolve(dataDir, httpTls.cert_file), 'http.tls.cert_file', 'CERTIFICATE'), key: await readPemFile(resolve(dataDir, httpTls.key_file), 'http.tls.key_file', 'PRIVATE KEY') },
  };

  const config: GatewayConfig = {
    file: parsed.file,
    gatewayName: raw.gateway.name ?? hostname(),
    dataDir,
    masterKey: master.value,
    store: { engine: raw.store.engine, sqlite: { path: resolve(dataDir, raw.store.sqlite.path), fsync_before_reply: raw.store.sqlite.fsync_before_reply } },
    log: raw.log,
    radius: raw.radius,
    clients,
    directories,
    upstreams,
    providers,
    methods: raw.methods,
    http,
    fraud: raw.fraud,
    policies: raw.policies,
    challenge: raw.challenge,
    lockout: raw.lockout,
    totp: raw.totp,
    hotp: raw.hotp,
  };
  return deepFreeze({ config, generated });
}

/** The problems `check-config` prints, one `path: message` line each; empty when valid. Never creates files. */
export async function checkConfig(file: string, opts: Pick<LoadOptions, 'env'> = {}): Promise<string[]> {
  let parsed: Parsed;
  try {
    parsed = await parseAndValidate(file);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.length > 0 ? [...err.issues] : [err.message];
    throw err;
  }
  const dataDir = resolve(dirname(parsed.file), parsed.raw.data_dir);
  const problems = await secretProblems(parsed, dataDir, opts.env ?? process.env);
  return problems.map((p) => withLine(p.error.message, parsed.locate(p.path)));
}

const MASTER_KEY_PATH = 'keys.master_key';
const clientSecretPath = (i: number): string => `clients[${i}].secret`;
const directoryPasswordPath = (name: string): string => `directories.${name}.bind_password`;
const upstreamSecretPath = (name: string, i: number): string => `upstreams.${name}.servers[${i}].secret`;

/** A PEM file the config names (a CA, the HTTPS certificate or key); `keyPath` names it in errors. */
async function readPemFile(file: string, keyPath: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): Promise<Buffer> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    const line = `${keyPath}: cannot read ${file}: ${errorMessage(err)}`;
    throw new ConfigError(line, [line]);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(pem.toString('latin1'))) {
    const line = `${keyPath}: ${file} holds no PEM ${label.toLowerCase()}`;
    throw new ConfigError(line, [line]);
  }
  return pem;
}

interface Parsed {
  /** Absolute path of the config file. */
  readonly file: string;
  readonly raw: RawConfig;
  /** Line of the YAML node at (or nearest above) a schema path, when there is one. */
  readonly locate: (path: readonly PropertyKey[]) => number | undefined;
}

async function parseAndValidate(file: string): Promise<Parsed> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : errorMessage(err);
    const line = `cannot read configuration file ${abs}: ${why}`;
    throw new ConfigError(line, [line]);
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `line ${line}, column ${col}: ${e.message.split('\n')[0] ?? e.message}`;
    });
    throw new ConfigError(`invalid YAML in ${abs}: ${issues.join('; ')}`, issues);
  }

  const locate = (path: readonly PropertyKey[]): number | undefined => locateNode(doc, lineCounter, path);
  const data = dropNullValues(doc.toJS());
  if (data === undefined) {
    const line = 'the configuration file is empty; at least `clients` is required';
    throw new ConfigError(`invalid configuration in ${abs}: ${line}`, [line]);
  }

  const result = configSchema.safeParse(data, { error: friendlyMessage });
  if (!result.success) {
    const issues = [...new Set(flattenIssues(result.error.issues, [], data).map((i) => withLine(`${formatPath(i.path)}: ${i.message}`, locate(i.path))))];
    throw new ConfigError(`invalid configuration in ${abs}: ${issues.join('; ')}`, issues);
  }
  return { file: abs, raw: result.data, locate };
}

interface SecretProblem {
  readonly path: readonly PropertyKey[];
  readonly error: SecretError;
}

/** Resolves every reference without generating; a missing `generate: true` file is fine (it will be created). */
async function secretProblems(parsed: Parsed, dataDir: string, env: NodeJS.ProcessEnv): Promise<SecretProblem[]> {
  const refs: { ref: SecretRef; keyPath: string; path: PropertyKey[]; kind: SecretKind }[] = [
    { ref: parsed.raw.keys.master_key, keyPath: MASTER_KEY_PATH, path: ['keys', 'master_key'], kind: 'master-key' },
    ...parsed.raw.clients.map((c, i) => ({ ref: c.secret, keyPath: clientSecretPath(i), path: ['clients', i, 'secret'], kind: 'radius-secret' as const })),
    ...Object.entries(parsed.raw.directories).map(([name, d]) => ({
      ref: d.bind_password,
      keyPath: directoryPasswordPath(name),
      path: ['directories', name, 'bind_password'],
      kind: 'password' as const,
    })),
    ...Object.entries(parsed.raw.providers).flatMap(([name, p]) =>
      PROVIDER_SECRET_KEYS[p.type].flatMap((key) => {
        const ref = (p as Record<string, unknown>)[key] as SecretRef | undefined;
        return ref === undefined ? [] : [{ ref, keyPath: `providers.${name}.${key}`, path: ['providers', name, key], kind: 'password' as const }];
      }),
    ),
    ...Object.entries(parsed.raw.upstreams).flatMap(([name, u]) =>
      u.servers.map((server, i) => ({
        ref: server.secret,
        keyPath: upstreamSecretPath(name, i),
        path: ['upstreams', name, 'servers', i, 'secret'],
        kind: 'radius-secret' as const,
      })),
    ),
  ];
  const problems: SecretProblem[] = [];
  for (const { ref, keyPath, path, kind } of refs) {
    if ('file' in ref && ref.generate && !(await exists(resolve(dataDir, ref.file)))) continue;
    try {
      await resolveSecret(ref, keyPath, { baseDir: dataDir, env, generate: false, kind });
    } catch (err) {
      if (!(err instanceof SecretError)) throw err;
      problems.push({ path, error: err });
    }
  }
  return problems;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

// ---- issue formatting ----

interface Problem {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** `clients[0].secret`, `policies.vpn.methods`; keys that are not identifiers are quoted: `policies["a.b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out === '' ? '(top level)' : out;
}

function withLine(text: string, line: number | undefined): string {
  return line === undefined ? text : `${text} (line ${line})`;
}

function flattenIssues(issues: readonly z.core.$ZodIssue[], base: readonly PropertyKey[], data: unknown): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const suggestion = closest(key, knownKeys(path));
        out.push({ path: [...path, key], message: suggestion === undefined ? 'unknown key' : `unknown key (did you mean '${suggestion}'?)` });
      }
    } else if (issue.code === 'invalid_union') {
      out.push(...flattenUnion(issue, path, data));
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}

/**
 * zod reports a failed union with every branch's issues. Report the branch the admin evidently
 * meant (the one with fewest issues), or one line saying what the value may be.
 */
function flattenUnion(issue: z.core.$ZodIssueInvalidUnion, path: readonly PropertyKey[], data: unknown): Problem[] {
  const counts = issue.errors.map((branch) => (branch.every((i) => i.path.length === 0 && i.code === 'invalid_type') ? Infinity : branch.length));
  const best = Math.min(...counts);
  const candidates = issue.errors.filter((_, i) => counts[i] === best);
  const [only] = candidates;
  if (candidates.length === 1 && only !== undefined && best !== Infinity) return flattenIssues(only, path, data);

  const value = valueAt(data, path);
  if (value === undefined) return [{ path, message: 'is required' }];
  const last = path[path.length - 1];
  if (last === 'secret' || last === 'master_key') {
    const both = isRecord(value) && 'file' in value && 'env' in value;
    return [{ path, message: both ? 'use either {file: …} or {env: …}, not both' : 'must be {file: path} or {env: NAME} (never the secret itself)' }];
  }
  return [{ path, message: issue.message }];
}

/** Shorter messages than zod's defaults, in the admin's terms (mapping, list). Schema-level messages win over these. */
const friendlyMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      if (issue.expected === 'int') return 'must be a whole number';
      return `must be ${describeExpected(issue.expected)} (got ${describeValue(issue.input)})`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const [atLeast, more] = issue.code === 'too_small' ? ['at least', 'greater than'] : ['at most', 'less than'];
      const inclusive = issue.inclusive !== false;
      if (issue.origin === 'array') return `must have ${atLeast} ${bound} ${bound === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string') return bound === 1 && issue.code === 'too_small' ? 'must not be empty' : `must be ${atLeast} ${bound} characters`;
      return `must be ${inclusive ? atLeast : more} ${bound}`;
    }
    default:
      return undefined;
  }
};

function describeExpected(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a mapping (key: value)';
    case 'array':
      return 'a list';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true or false';
    default:
      return expected;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${value}`;
  return typeof value;
}

/** `key:` with nothing after it means "not set" to an admin; YAML says null. Treat it as absent so defaults apply. */
function dropNullValues(value: unknown): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.map((v: unknown) => (v === null ? null : dropNullValues(v)));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== null) Object.defineProperty(out, k, { value: dropNullValues(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let cur = data;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number') cur = cur[seg];
    else if (isRecord(cur) && typeof seg === 'string' && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return undefined;
  }
  return cur;
}

/** The YAML line of the node at `path`, or of the deepest ancestor present in the file (not the document root). */
function locateNode(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      line = lineOf(pair.key, lines) ?? line;
      next = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
      if (next === undefined) break;
      line = lineOf(next, lines) ?? line;
    } else {
      break;
    }
    node = next;
  }
  return line;
}

function lineOf(node: unknown, lines: LineCounter): number | undefined {
  const range = (node as { range?: readonly [number, number, number] } | null)?.range;
  return range === undefined ? undefined : lines.linePos(range[0]).line;
}

// ---- "did you mean" for unknown keys ----

/** The keys the schema allows in the object at `path` (walking wrappers, lists, records, unions). */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schemas: z.core.$ZodType[] = [configSchema];
  for (const seg of path) {
    schemas = schemas.flatMap((s) => childSchemas(unwrap(s), seg));
  }
  return schemas.flatMap((s) => {
    const def = (unwrap(s) as z.core.$ZodTypes)._zod.def;
    if (def.type === 'object') return Object.keys(def.shape);
    if (def.type === 'union') return def.options.flatMap((o) => ('shape' in o._zod.def ? Object.keys((o as z.core.$ZodObject)._zod.def.shape) : []));
    return [];
  });
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let cur = schema;
  for (;;) {
    const def = (cur as z.core.$ZodTypes)._zod.def;
    if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional' || def.type === 'nullable') cur = def.innerType;
    else if (def.type === 'pipe') cur = def.in;
    else return cur;
  }
}

function childSchemas(schema: z.core.$ZodType, seg: PropertyKey): z.core.$ZodType[] {
  const def = (schema as z.core.$ZodTypes)._zod.def;
  switch (def.type) {
    case 'object': {
      const child = typeof seg === 'string' && Object.hasOwn(def.shape, seg) ? def.shape[seg] : undefined;
      return child === undefined ? [] : [child];
    }
    case 'array':
      return typeof seg === 'number' ? [def.element] : [];
    case 'record':
      return [def.valueType];
    case 'union':
      return def.options.flatMap((o) => childSchemas(unwrap(o), seg));
    default:
      return [];
  }
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? Infinity;
}

// ---- freezing ----

/** Buffers cannot be frozen (typed arrays with elements); everything else is, recursively. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Reflect.ownKeys(value)) deepFreeze((value as Record<PropertyKey, unknown>)[key]);
  }
  return value;
}
