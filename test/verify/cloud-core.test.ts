import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { DataKeys } from '../../src/crypto/keys.js';
import { silentLogger } from '../../src/log.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { CallbackServer } from '../../src/verify/callback-server.js';
import { CallbackTokens } from '../../src/verify/callback-tokens.js';
import { CircuitBreaker } from '../../src/verify/circuit-breaker.js';
import { CloudClient } from '../../src/verify/cloud-client.js';
import { freePort } from '../peers/ports.js';
import { tempDir } from '../peers/temp.js';
import { makeTlsFiles } from '../peers/tls-ca.js';

t.test('callback tokens: signed, bound to their purpose, expiring, single use per group', async (t) => {
  const dir = tempDir('mfa-tokens-');
  t.teardown(() => dir.cleanup());
  const store = await openSqliteStore({ path: join(dir.path, 'gw.db') });
  t.teardown(() => store.close());
  let now = 1_000_000;
  const tokens = new CallbackTokens(new DataKeys(randomBytes(32)), store, () => now);
  const id = CallbackTokens.newId();
  const approve = tokens.issue(id, 'push:approve', now + 60_000);
  const deny = tokens.issue(id, 'push:deny', now + 60_000);
  t.match(approve, /^[A-Za-z0-9_-]+\.[0-9a-z]+\.[A-Za-z0-9_-]+$/, 'URL-safe');
  t.same(tokens.verify(approve, 'push:approve'), { id, expiresAt: now + 60_000 });
  t.equal(tokens.verify(approve, 'push:deny'), undefined, 'not for another purpose');
  t.equal(new CallbackTokens(new DataKeys(randomBytes(32)), store, () => now).verify(approve, 'push:approve'), undefined, 'not under another key');
  const [tid, exp, mac] = approve.split('.') as [string, string, string];
  t.equal(tokens.verify(`${tid}.${(parseInt(exp, 36) + 1).toString(36)}.${mac}`, 'push:approve'), undefined, 'a longer expiry breaks the MAC');
  for (const c of 'AQgw_-') {
    const other = `${tid}.${exp}.${mac.slice(0, -1)}${c}`;
    if (other !== approve) t.equal(tokens.verify(other, 'push:approve'), undefined, `another spelling of the MAC (${c}) is refused`);
  }
  t.equal(tokens.verify('a.b', 'push:approve'), undefined, 'malformed');
  t.ok(await tokens.redeem(approve, 'push:approve', id), 'first use');
  t.equal(await tokens.redeem(approve, 'push:approve', id), undefined, 'second use');
  t.equal(await tokens.redeem(deny, 'push:deny', id), undefined, 'the other button of the same push after the first');
  const late = tokens.issue(CallbackTokens.newId(), 'push:approve', now + 1_000);
  now += 1_000;
  t.equal(tokens.verify(late, 'push:approve'), undefined, 'expired');
});

t.test('circuit breaker: opens after N failures, one probe after the cooldown', async (t) => {
  let now = 0;
  const breaker = new CircuitBreaker(3, 1_000, () => now);
  breaker.failure();
  breaker.failure();
  t.ok(breaker.allow());
  breaker.failure();
  t.equal(breaker.state, 'open');
  t.notOk(breaker.allow());
  now = 1_000;
  t.equal(breaker.state, 'half-open');
  t.ok(breaker.allow(), 'one probe');
  t.notOk(breaker.allow(), 'only one');
  breaker.failure();
  t.equal(breaker.state, 'open', 'a failed probe opens it again');
  now = 2_000;
  t.ok(breaker.allow());
  breaker.success();
  t.equal(breaker.state, 'closed');
});

t.test('cloud client: retries only what the provider cannot have acted on, then the breaker', async (t) => {
  let hits = 0;
  let status = 500;
  const server: Server = createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json' }).end('{"ok":false}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const client = new CloudClient({ name: 'p', baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 1_000, retries: 2, breakerFailures: 4, breakerCooldownMs: 60_000, log: silentLogger(), backoffMs: 5 });
  t.teardown(() => client.close());

  await t.rejects(client.request({ method: 'POST', path: '/send', body: 'x' }), { code: 'GW_ERR_PROVIDER_UNAVAILABLE', message: 'p: HTTP 500' });
  t.equal(hits, 1, 'a 500 to a POST that may have sent the SMS is not retried');
  await t.rejects(client.request({ method: 'POST', path: '/send', body: 'x', idempotent: true }), { code: 'GW_ERR_PROVIDER_UNAVAILABLE' });
  t.equal(hits, 4, 'an idempotent request is retried (3 tries); the 4th failure in a row opened the breaker');
  await t.rejects(client.request({ method: 'GET', path: '/x', idempotent: true }), { message: /circuit breaker open/ });
  t.equal(hits, 4, 'an open breaker sends nothing');

  status = 400;
  const fresh = new CloudClient({ name: 'q', baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 1_000, retries: 2, breakerFailures: 4, breakerCooldownMs: 60_000, log: silentLogger() });
  t.teardown(() => fresh.close());
  const res = await fresh.request({ method: 'POST', path: '/send', body: 'x' });
  t.equal(res.status, 400, 'a 4xx is the caller’s to read');
  t.equal(fresh.breaker.state, 'closed', 'and no failure of the provider');

  const closedPort = await freePort('tcp');
  const refused = new CloudClient({ name: 'r', baseUrl: `http://127.0.0.1:${closedPort}`, timeoutMs: 1_000, retries: 2, breakerFailures: 10, breakerCooldownMs: 60_000, log: silentLogger(), backoffMs: 5 });
  t.teardown(() => refused.close());
  const started = Date.now();
  await t.rejects(refused.request({ method: 'POST', path: '/send', body: 'x' }), { code: 'GW_ERR_PROVIDER_UNAVAILABLE', message: /ECONNREFUSED/ });
  t.ok(Date.now() - started < 2_000, 'connection refused: retried quickly, then given up');
});

t.test('callback listener: HTTPS with the configured certificate, rate limit, unknown routes, health', async (t) => {
  const dir = tempDir('mfa-callback-');
  t.teardown(() => dir.cleanup());
  const tls = await makeTlsFiles(join(dir.path, 'tls'), { ip: '127.0.0.1', dnsName: 'mfa.example.test' });
  const port = await freePort('tcp');
  const server = new CallbackServer({
    http: { listen: [{ address: '127.0.0.1', port }], public_url: undefined, tls: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, insecure: false, rate_limit_per_minute: 3, trust_proxy: [] },
    log: silentLogger(),
    health: () => ({ pendingApprovals: 3 }),
  });
  let seen: { params: Record<string, string>; form: Record<string, string>; raw: string } | undefined;
  server.routesFor('prov').add('POST', '/answer/:token', async (req) => {
    seen = { params: { ...req.params }, form: { ...req.form }, raw: req.rawBody.toString() };
    return { status: 200, body: 'ok' };
  });
  await server.start();
  t.teardown(() => server.close());
  const ca = readFileSync(tls.caFile);
  const call = (method: string, path: string, body?: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, method, path, ca, servername: 'mfa.example.test', headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  t.same(JSON.parse((await call('GET', '/health')).body), { status: 'ok', pendingApprovals: 3 });
  t.equal((await call('POST', '/callbacks/prov/answer/tok123', 'answer=approve&x=%20y')).status, 200);
  t.same(seen, { params: { token: 'tok123' }, form: { answer: 'approve', x: ' y' }, raw: 'answer=approve&x=%20y' }, 'raw body and parsed form');
  t.equal((await call('GET', '/callbacks/other/thing')).status, 404);
  t.equal((await call('GET', '/health')).status, 429, 'the fourth request in a minute from one address');
  await t.rejects(
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/health', ca: readFileSync(tls.untrustedCaFile) }, resolve);
      req.on('error', reject);
      req.end();
    }),
    /self[- ]signed|unable to verify|certificate/i,
    'a client that does not trust the CA refuses the listener',
  );
});

t.test('callback listener behind a named proxy: the rate limit counts X-Forwarded-For', async (t) => {
  const port = await freePort('tcp');
  const server = new CallbackServer({
    http: { listen: [{ address: '127.0.0.1', port }], public_url: undefined, tls: undefined, insecure: true, rate_limit_per_minute: 2, trust_proxy: ['127.0.0.1'] },
    log: silentLogger(),
  });
  await server.start();
  t.teardown(() => server.close());
  const get = async (forwarded: string): Promise<number> => (await fetch(`http://127.0.0.1:${port}/health`, { headers: { 'x-forwarded-for': forwarded } })).status;
  t.same([await get('198.51.100.1'), await get('198.51.100.1'), await get('198.51.100.1')], [200, 200, 429], 'one client over its limit');
  t.equal(await get('198.51.100.2'), 200, 'another client behind the same proxy is not');
});
