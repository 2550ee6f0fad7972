import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { ResolvedHttp } from '../config/config.js';
import { ListenError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { CallbackHandler, CallbackRequest, CallbackRoutes } from './providers/provider.js';

/**
 * The HTTP listener providers call back: Twilio fetches TwiML and posts keypresses and status
 * updates, the ntfy app's buttons post approve/deny/fraud, a two-way SMS reply arrives. Each
 * provider registers its routes under `/callbacks/<provider>/…` and checks its own signatures
 * (X-Twilio-Signature, signed tokens); this layer adds what every route needs: raw bodies for
 * those signatures, a body size limit, per-address rate limits, one log line per refused request
 * and `GET /health`. The portal will share this listener.
 */

export interface CallbackServerOptions {
  readonly http: ResolvedHttp;
  readonly log: Logger;
  /** Figures `GET /health` adds to `{status: 'ok'}` (pending approvals, event-loop delay, memory). */
  readonly health?: () => Record<string, unknown>;
}

/** Provider callbacks are small: a form post, a JSON button press. */
const BODY_LIMIT = 64 * 1024;

export class CallbackServer {
  private readonly app: FastifyInstance;
  private readonly hits: LRUCache<string, { count: number; windowStart: number }>;
  private started = false;

  constructor(private readonly opts: CallbackServerOptions) {
    this.app = Fastify({
      logger: false,
      bodyLimit: BODY_LIMIT,
      // X-Forwarded-For only from the proxies the admin named: anyone else could pick their own
      // address and slip past the rate limit.
      trustProxy: opts.http.trust_proxy.length > 0 ? [...opts.http.trust_proxy] : false,
      ...(opts.http.tls === undefined ? {} : { https: { cert: opts.http.tls.cert, key: opts.http.tls.key } }),
    });
    this.hits = new LRUCache({ max: 100_000, ttl: 120_000 });
    // Every body as raw bytes: signatures are computed over exactly what was sent.
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
      done(null, body);
    });
    this.app.addHook('onRequest', async (req, reply) => {
      if (!this.allow(req.ip)) {
        this.opts.log.warn({ remote: req.ip, route: routeOf(req.url) }, 'callback rate limit exceeded');
        await reply.code(429).header('retry-after', '60').send('too many requests\n');
      }
    });
    this.app.setErrorHandler(async (err, req, reply) => {
      const status = typeof (err as { statusCode?: unknown }).statusCode === 'number' ? (err as { statusCode: number }).statusCode : 500;
      this.opts.log.warn({ remote: req.ip, route: routeOf(req.url), status, err: errorMessage(err) }, 'callback request failed');
      await reply.code(status >= 400 && status < 600 ? status : 500).send(status >= 500 ? 'internal error\n' : 'bad request\n');
    });
    this.app.setNotFoundHandler(async (req, reply) => {
      this.opts.log.info({ remote: req.ip, method: req.method, route: routeOf(req.url) }, 'callback for an unknown route');
      await reply.code(404).send('not found\n');
    });
    this.app.get('/health', (_req, reply) => {
      void reply.send({ status: 'ok', ...this.opts.health?.() });
    });
  }

  /** Routes of one provider, under `/callbacks/<name>`. */
  routesFor(providerName: string): CallbackRoutes {
    return {
      add: (method, path, handler) => {
        this.app.route({ method, url: `/callbacks/${providerName}${path}`, handler: async (req, reply) => this.handle(handler, req, reply) });
      },
    };
  }

  /** Registers a route outside `/callbacks` (the portal's own, later). */
  get fastify(): FastifyInstance {
    return this.app;
  }

  async start(): Promise<void> {
    // The schema allows one address (a reverse proxy or a firewall rule fans in others).
    const [first] = this.opts.http.listen;
    if (first === undefined) return;
    try {
      await this.app.listen({ host: first.address, port: first.port });
    } catch (err) {
      throw new ListenError(`http ${first.address}:${first.port}: ${errorMessage(err)}`);
    }
    this.started = true;
  }

  /** Bound addresses (port 0 resolved), for tests and logs. */
  addresses(): { address: string; port: number }[] {
    if (!this.started) return [];
    const info = this.app.server.address() as AddressInfo | null;
    return info === null ? [] : [{ address: info.address, port: info.port }];
  }

  async close(): Promise<void> {
    await this.app.close();
  }

  private allow(ip: string): boolean {
    const now = Date.now();
    const entry = this.hits.get(ip);
    if (entry === undefined || now - entry.windowStart >= 60_000) {
      this.hits.set(ip, { count: 1, windowStart: now });
      return true;
    }
    entry.count++;
    return entry.count <= this.opts.http.rate_limit_per_minute;
  }

  private async handle(handler: CallbackHandler, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const form: Record<string, string> = {};
    if (type === 'application/x-www-form-urlencoded') for (const [k, v] of new URLSearchParams(rawBody.toString('utf8'))) form[k] = v;
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const request: CallbackRequest = {
      method: req.method,
      url: req.url,
      params: req.params as Record<string, string>,
      query: req.query as Record<string, string>,
      headers,
      rawBody,
      form,
      remoteAddress: req.ip,
    };
    const res = await handler(request);
    // The route pattern, not the URL: a callback URL carries a token, which is never logged.
    if (res.status >= 400) this.opts.log.info({ remote: req.ip, route: req.routeOptions.url, status: res.status }, 'callback refused');
    await reply
      .code(res.status)
      .header('content-type', res.contentType ?? 'text/plain; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(res.body ?? '');
  }
}

/** `/callbacks/ntfy/answer/…` → `/callbacks/ntfy/answer`: what a log may say of a URL whose tail is a token. */
function routeOf(url: string): string {
  return (url.split('?')[0] ?? '').split('/').slice(0, 4).join('/');
}
