import { createHash, createHmac } from 'node:crypto';

/**
 * Request signing for Duo's REST APIs (Auth API v2 here), as Duo's documentation ("API Details →
 * Authentication") and Duo's own clients (duo_client_python, duo_api_ruby, duo_api_csharp)
 * define it. Pure functions, no I/O: the provider signs with them, the table tests pin them to
 * Duo's published vectors.
 *
 * The signature is the HTTP Basic password: `Authorization: Basic base64(ikey:hex(HMAC(skey,
 * canonical)))`, sent with a `Date` header in RFC 2822 form that is the first line of the
 * canonical string. Duo checks the hex case-insensitively.
 *
 * Two canonical forms exist:
 * - version 2 (the documented five lines): date, METHOD, host (lowercase), path, and the sorted,
 *   URL-encoded parameters (query for GET, form body for POST). Duo's documentation example signs
 *   it with HMAC-SHA1; Duo's clients moved to HMAC-SHA512 in 2022 (SHA-1 is deprecated).
 * - version 5 (the default of Duo's current clients): the same five lines plus the SHA-512 hex of
 *   the body (POST parameters travel as canonical JSON, GET parameters stay in the query) and
 *   the SHA-512 hex of the `X-Duo-*` headers; HMAC-SHA512 only.
 *
 * The provider signs version 5, what Duo's maintained clients send today; the test fake accepts
 * all three (v2/SHA-1, v2/SHA-512, v5) as Duo's service does.
 */

export type DuoParams = Readonly<Record<string, string>>;

export type DuoDigest = 'sha1' | 'sha512';

/**
 * Duo's URL encoding (RFC 3986, as OAuth 1.0 §3.4.1.3.2): every UTF-8 byte except ASCII letters,
 * digits and `_ . ~ -` becomes `%XX` with upper-case hex. encodeURIComponent leaves `!'()*` as
 * they are, so those are escaped afterwards.
 */
export function duoEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * `key=value` pairs joined by `&`, sorted by encoded key (then by encoded value), as the
 * `params` line of the canonical string and as the query string of a GET.
 */
export function canonParams(params: DuoParams): string {
  return Object.entries(params)
    .map(([key, value]) => [duoEncode(key), duoEncode(value)] as const)
    .sort(([ka, va], [kb, vb]) => compareCodeUnits(ka, kb) || compareCodeUnits(va, vb))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

/** The canonical JSON body of a version 5 POST: keys sorted, no whitespace (Python's `json.dumps(sort_keys=True, separators=(',', ':'))`). */
export function canonJson(params: DuoParams): string {
  const sorted: Record<string, string> = {};
  for (const key of Object.keys(params).sort(compareCodeUnits)) sorted[key] = params[key] as string;
  return JSON.stringify(sorted);
}

export interface CanonicalRequest {
  /** RFC 2822, the exact text of the `Date` header. */
  readonly date: string;
  readonly method: string;
  /** The API hostname (`api-XXXXXXXX.duosecurity.com`), lowercased here. */
  readonly host: string;
  readonly path: string;
  /** Query (GET) or form (v2 POST) parameters; empty for a v5 POST, whose parameters are the body. */
  readonly params: DuoParams;
}

/** Version 2: the five documented lines. */
export function canonicalizeV2(req: CanonicalRequest): string {
  return [req.date, req.method.toUpperCase(), req.host.toLowerCase(), req.path, canonParams(req.params)].join('\n');
}

/** Version 5: the five lines, then SHA-512 of the body and of the `X-Duo-*` headers. */
export function canonicalizeV5(req: CanonicalRequest & { readonly body: string; readonly duoHeaders?: Readonly<Record<string, string>> }): string {
  return [canonicalizeV2(req), sha512Hex(req.body), sha512Hex(canonDuoHeaders(req.duoHeaders ?? {}))].join('\n');
}

/** `name\0value\0name\0value` over the lowercased `X-Duo-*` header names, sorted (hashed by the caller). */
export function canonDuoHeaders(headers: Readonly<Record<string, string>>): string {
  const lowered = Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value] as const);
  const parts: string[] = [];
  for (const [name, value] of lowered.sort(([a], [b]) => compareCodeUnits(a, b))) {
    if (!name.startsWith('x-duo-')) throw new Error(`signed headers must start with X-Duo-: ${name}`);
    if (name.includes('\0') || value.includes('\0')) throw new Error('signed headers may not contain NUL');
    parts.push(name, value);
  }
  return parts.join('\0');
}

export function signatureHex(digest: DuoDigest, secretKey: string, canonical: string): string {
  return createHmac(digest, secretKey).update(canonical, 'utf8').digest('hex');
}

export function basicAuthorization(integrationKey: string, signature: string): string {
  return `Basic ${Buffer.from(`${integrationKey}:${signature}`, 'utf8').toString('base64')}`;
}

/** `Tue, 21 Aug 2012 17:29:18 -0000`, the form of Duo's examples and Python's `email.utils.formatdate()`. */
export function rfc2822Date(epochMs: number): string {
  return new Date(epochMs).toUTCString().replace(/ GMT$/, ' -0000');
}

export interface SignedRequest {
  /** Path with the query string (GET) or the bare path (POST). */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string | undefined;
}

export interface SignOptions {
  readonly integrationKey: string;
  readonly secretKey: string;
  readonly host: string;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly params: DuoParams;
  readonly now: number;
}

/** A complete version 5 request: where to send it, its headers and its body. */
export function signV5(opts: SignOptions): SignedRequest {
  const date = rfc2822Date(opts.now);
  const isPost = opts.method === 'POST';
  const body = isPost ? canonJson(opts.params) : '';
  const queryParams = isPost ? {} : opts.params;
  const canonical = canonicalizeV5({ date, method: opts.method, host: opts.host, path: opts.path, params: queryParams, body });
  const headers: Record<string, string> = {
    date,
    authorization: basicAuthorization(opts.integrationKey, signatureHex('sha512', opts.secretKey, canonical)),
  };
  if (isPost) headers['content-type'] = 'application/json';
  const query = canonParams(queryParams);
  return { path: query === '' ? opts.path : `${opts.path}?${query}`, headers, body: isPost ? body : undefined };
}

function sha512Hex(text: string): string {
  return createHash('sha512').update(text, 'utf8').digest('hex');
}

/** Python's (and the other clients') string order: by UTF-16 code unit, a prefix first. */
function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
