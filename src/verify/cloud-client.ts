import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { ProviderUnavailableError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { CircuitBreaker } from './circuit-breaker.js';

/**
 * The HTTP client of one provider: one undici Pool to its base URL with connect, header and body
 * timeouts, bounded retries with jittered exponential backoff, and a circuit breaker.
 *
 * What is retried: a request that never reached the provider (connection refused or reset before
 * sending, connect timeout) always; a 5xx, a 429 or a timeout waiting for the answer only when
 * the request is `idempotent` (a GET, or a POST the provider de-duplicates), because otherwise
 * the provider may have sent the SMS already and a retry would send a second one.
 *
 * Errors: transport failures, 5xx and an open breaker throw ProviderUnavailableError; any other
 * status is returned for the provider to interpret (a 4xx is its business, not an outage).
 */

export interface CloudClientOptions {
  /** Provider name, for errors and logs. */
  readonly name: string;
  /** `https://api.twilio.com` (or `http://127.0.0.1:port` for a loopback test double). */
  readonly baseUrl: string;
  readonly timeoutMs: number;
  /** Extra tries after the first (0 = one try). */
  readonly retries: number;
  readonly breakerFailures: number;
  readonly breakerCooldownMs: number;
  /** PEM CA bundle for a provider behind a private CA; default: the system's. */
  readonly ca?: Buffer;
  readonly connections?: number;
  readonly log: Logger;
  /** Backoff base in ms (tests shorten it). */
  readonly backoffMs?: number;
}

/** The settings every `providers.<name>` entry has (providers-schema.ts), after loading. */
export interface ProviderHttpSettings {
  readonly name: string;
  readonly timeout_ms: number;
  readonly retries: number;
  readonly breaker_failures: number;
  readonly breaker_cooldown_seconds: number;
  readonly ca: Buffer | undefined;
}

/** The client of a configured provider: its timeouts, retries, breaker and CA, to `baseUrl`. */
export function providerClient(config: ProviderHttpSettings, baseUrl: string, log: Logger, overrides: Partial<CloudClientOptions> = {}): CloudClient {
  return new CloudClient({
    name: config.name,
    baseUrl,
    timeoutMs: config.timeout_ms,
    retries: config.retries,
    breakerFailures: config.breaker_failures,
    breakerCooldownMs: config.breaker_cooldown_seconds * 1000,
    ...(config.ca === undefined ? {} : { ca: config.ca }),
    log,
    ...overrides,
  });
}

export interface CloudRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  readonly idempotent?: boolean;
  readonly signal?: AbortSignal;
}

export interface CloudResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  /** Attempts it took (1 = first try). */
  readonly tries: number;
}

/** Upper bound on a provider answer; anything bigger is not an API response we understand. */
const MAX_BODY_BYTES = 1 << 20;

export class CloudClient {
  private readonly pool: Pool;
  readonly breaker: CircuitBreaker;
  readonly origin: string;

  constructor(private readonly opts: CloudClientOptions) {
    const url = new URL(opts.baseUrl);
    this.origin = url.origin;
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? 16,
      connectTimeout: opts.timeoutMs,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      ...(opts.ca === undefined ? {} : { connect: { ca: opts.ca } }),
    });
    this.breaker = new CircuitBreaker(opts.breakerFailures, opts.breakerCooldownMs);
  }

  /** Base URL path prefix (e.g. a webhook's `/sms/send`), without the origin. */
  get basePath(): string {
    const path = new URL(this.opts.baseUrl).pathname;
    return path === '/' ? '' : path.replace(/\/$/, '');
  }

  async request(req: CloudRequest): Promise<CloudResponse> {
    const tries = this.opts.retries + 1;
    let lastError = 'no try made';
    for (let attempt = 1; attempt <= tries; attempt++) {
      if (req.signal?.aborted) throw new ProviderUnavailableError(`${this.opts.name}: request abandoned`);
      if (!this.breaker.allow()) throw new ProviderUnavailableError(`${this.opts.name}: circuit breaker open after repeated failures`);
      let retryable = false;
      try {
        const res = await this.pool.request({
          method: req.method,
          path: req.path,
          headers: { 'user-agent': 'mfa-gateway', ...req.headers },
          body: req.body ?? null,
          ...(req.signal === undefined ? {} : { signal: req.signal }),
        });
        const body = await readLimited(res.body);
        if (res.statusCode >= 500 || res.statusCode === 429) {
          this.breaker.failure();
          lastError = `HTTP ${res.statusCode}`;
          // Even a 503 or 429 may come from a proxy after the provider acted: a second SMS, call or push costs.
          retryable = req.idempotent === true;
        } else {
          this.breaker.success();
          return { status: res.statusCode, headers: res.headers, body, tries: attempt };
        }
      } catch (err) {
        this.breaker.failure();
        lastError = errorMessage(err);
        retryable = neverSent(err) || req.idempotent === true;
        if (req.signal?.aborted) throw new ProviderUnavailableError(`${this.opts.name}: request abandoned`);
      }
      this.opts.log.warn({ provider: this.opts.name, attempt, tries, error: lastError, willRetry: retryable && attempt < tries }, 'provider request failed');
      if (!retryable || attempt === tries) break;
      await sleep(jitteredBackoff(this.opts.backoffMs ?? 200, attempt), undefined, req.signal ? { signal: req.signal } : undefined).catch(() => undefined);
    }
    throw new ProviderUnavailableError(`${this.opts.name}: ${lastError}`);
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => undefined);
  }
}

/** Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): uniform in [0, base·2^(n-1)]. */
export function jitteredBackoff(baseMs: number, attempt: number): number {
  return Math.random() * baseMs * 2 ** (attempt - 1);
}

/** Failures where the provider cannot have acted on the request. */
function neverSent(err: unknown): boolean {
  if (err instanceof undiciErrors.ConnectTimeoutError) return true;
  const code = (err as { code?: unknown }).code;
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH';
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      throw new Error(`answer larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
