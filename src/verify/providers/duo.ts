import { isIP } from 'node:net';
import type { ResolvedProvider } from '../../config/config.js';
import { InternalError, ProviderRejectedError, ProviderUnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { providerClient, type CloudClient } from '../cloud-client.js';
import { DuoApi } from './duo-api.js';
import { asyncAuthResponse, authResultResponse, describe, preauthResponse, readResponse } from './duo-responses.js';
import { duoEncode, type DuoParams } from './duo-signature.js';
import { watchTransaction, type TransactionWatch } from './duo-transaction.js';
import type {
  ApprovalChannel,
  ApprovalRequest,
  CodeChannel,
  LoginContext,
  Provider,
  ProviderCodeCheck,
  ProviderCodeRequest,
  ProviderDeps,
  SentMessage,
  StartedApproval,
} from './provider.js';

/**
 * Duo through its Auth API v2, for sites that already pay for Duo: the gateway checks the first
 * factor, Duo does the second (push to Duo Mobile, a phone call, or SMS passcodes Duo makes and
 * checks itself). Duo users are named by their Duo username (`to`).
 *
 * A push or call: `/auth/v2/preauth` first (is the user enrolled, bypassed, denied?), then
 * `/auth/v2/auth` with `async=1`, whose txid is followed through `/auth/v2/auth_status` (see
 * duo-transaction.ts). Duo does its own number matching ("Verified Push"), which the gateway's
 * login prompt cannot drive, so `numberMatching` is false.
 *
 * Two HTTP clients to the same host: `api` for the calls that start something (the configured
 * timeout, retries and circuit breaker), and `pollApi` for auth_status long polls, which Duo
 * holds open until the status changes. A held poll is no fault, so that client waits as long as
 * Duo's own push lifetime, has no breaker (a poll that ends at expiresAt would otherwise count
 * as a failure and thousands of waiting logins would open it) and enough connections for many
 * logins waiting at once; its failures are retried by the poll loop itself.
 */

type DuoProviderConfig = Extract<ResolvedProvider, { type: 'duo' }>;

/** Duo expires a push or call after 60 s; a held auth_status never outlives that by much. */
const LONG_POLL_TIMEOUT_MS = 75_000;
/** Concurrent preauth/auth calls (short requests; many logins may start at once). */
const START_CONNECTIONS = 64;
/** Concurrent auth_status long polls (each holds a connection while Duo waits for the user). */
const POLL_CONNECTIONS = 1024;

export class DuoProvider implements Provider {
  readonly type = 'duo' as const;
  readonly name: string;
  readonly codeChannels: ReadonlySet<CodeChannel> = new Set<CodeChannel>();
  readonly approvalChannels: ReadonlySet<ApprovalChannel> = new Set<ApprovalChannel>(['push', 'phone']);
  readonly numberMatching = false;

  private readonly client: CloudClient;
  private readonly pollClient: CloudClient;
  private readonly api: DuoApi;
  private readonly pollApi: DuoApi;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly pending = new Set<TransactionWatch>();
  private closed = false;

  constructor(config: DuoProviderConfig, deps: ProviderDeps) {
    this.name = config.name;
    this.log = deps.log.child({ module: 'duo', provider: config.name });
    const baseUrl = config.base_url ?? `https://${config.api_host}`;
    this.client = providerClient(config, baseUrl, deps.log, { connections: START_CONNECTIONS });
    // Long polls are held by Duo until something changes: their own pool, no retries, and no
    // breaker (a poll cut off at the login's expiry is no provider failure).
    this.pollClient = providerClient(config, baseUrl, deps.log, {
      timeoutMs: Math.max(config.timeout_ms, LONG_POLL_TIMEOUT_MS),
      retries: 0,
      breakerFailures: Number.MAX_SAFE_INTEGER,
      breakerCooldownMs: 0,
      connections: POLL_CONNECTIONS,
    });
    const creds = {
      name: config.name,
      integrationKey: config.integration_key,
      secretKey: config.secret_key,
      apiHost: config.api_host,
      now: deps.now,
    };
    this.api = new DuoApi(creds, this.client);
    this.pollApi = new DuoApi(creds, this.pollClient);
    this.now = deps.now;
  }

  async startApproval(request: ApprovalRequest): Promise<StartedApproval> {
    if (this.closed) throw new ProviderUnavailableError(`${this.name}: provider closed`);
    if (request.channel !== 'push' && request.channel !== 'phone') {
      throw new InternalError(`${this.name}: Duo does not offer the ${request.channel} channel`);
    }
    const username = request.to;
    const ipaddr = endUserAddress(request.login);
    const pre = readResponse(
      preauthResponse,
      await this.api.call('POST', '/auth/v2/preauth', { username, ...(ipaddr === undefined ? {} : { ipaddr }) }, { idempotent: true, signal: request.signal }),
      'preauth',
      this.name,
    );
    switch (pre.result) {
      case 'auth':
        break;
      case 'allow':
        this.log.info({ attemptId: request.login.attemptId, duoUser: username }, 'duo preauth allows the user without a second factor (bypass)');
        return settledApproval({ result: 'approved', detail: 'duo preauth allow: bypass user' });
      case 'deny':
        return settledApproval({ result: 'denied', detail: pre.status_msg ?? 'duo preauth deny' });
      case 'enroll':
        throw new ProviderRejectedError(`${this.name}: Duo user '${username}' is not enrolled in Duo`, 'enroll');
      default:
        throw new ProviderUnavailableError(`${this.name}: unexpected Duo preauth result '${pre.result}'`);
    }
    const capability = request.channel;
    if (pre.devices !== undefined && !pre.devices.some((d) => d.capabilities?.includes(capability) === true)) {
      throw new ProviderRejectedError(`${this.name}: Duo user '${username}' has no device that can take a ${capability === 'push' ? 'push' : 'phone call'}`, 'no_device');
    }

    const params: Record<string, string> = { username, factor: request.channel, device: 'auto', async: '1' };
    if (ipaddr !== undefined) params['ipaddr'] = ipaddr;
    if (request.channel === 'push') {
      params['type'] = 'Login request';
      params['display_username'] = request.recipient.displayName ?? request.recipient.username;
      params['pushinfo'] = pushinfo(request.login);
    }
    // Not idempotent: a retried auth after a lost answer would push (or ring) a second time.
    const started = readResponse(asyncAuthResponse, await this.api.call('POST', '/auth/v2/auth', params, { idempotent: false, signal: request.signal }), 'auth', this.name);
    const txid = started.txid;
    this.log.info({ attemptId: request.login.attemptId, duoUser: username, channel: request.channel, txid }, 'duo authentication started');

    if (this.closed) return settledApproval({ result: 'timeout', detail: 'provider closed' }, txid);
    const watch = watchTransaction({
      provider: this.name,
      api: this.pollApi,
      txid,
      expiresAt: request.expiresAt,
      signal: request.signal,
      now: this.now,
      log: this.log,
    });
    this.pending.add(watch);
    const outcome = watch.outcome.then((result) => {
      this.pending.delete(watch);
      this.log.info({ attemptId: request.login.attemptId, txid, result: result.result, detail: result.detail }, 'duo authentication ended');
      return result;
    });
    return { messageId: txid, outcome };
  }

  /** Duo texts the user a batch of passcodes; its answer to factor=sms is `deny` with status `sent`. */
  async requestProviderCode(request: ProviderCodeRequest): Promise<SentMessage> {
    if (this.closed) throw new ProviderUnavailableError(`${this.name}: provider closed`);
    const res = readResponse(
      authResultResponse,
      await this.api.call('POST', '/auth/v2/auth', this.userParams(request.to, request.login, { factor: 'sms', device: 'auto' }), { idempotent: false, signal: request.signal }),
      'auth (sms)',
      this.name,
    );
    if (res.result === 'deny' && res.status === 'sent') {
      this.log.info({ attemptId: request.login.attemptId, duoUser: request.to }, 'duo sent SMS passcodes');
      return { messageId: null };
    }
    if (res.result === 'allow') {
      // A bypass user: Duo sends nothing and will accept whatever passcode is typed.
      this.log.info({ attemptId: request.login.attemptId, duoUser: request.to, detail: describe(res) }, 'duo allows the user without SMS passcodes');
      return { messageId: null };
    }
    throw new ProviderRejectedError(`${this.name}: Duo did not send SMS passcodes (${describe(res)})`, res.status ?? res.result);
  }

  /** Asks Duo whether the typed passcode (SMS batch, Duo Mobile, hardware token) is right. */
  async verifyProviderCode(request: ProviderCodeCheck): Promise<boolean> {
    if (this.closed) throw new ProviderUnavailableError(`${this.name}: provider closed`);
    const res = readResponse(
      authResultResponse,
      // Not idempotent: Duo passcodes are single use, a retry after a lost answer would be refused.
      await this.api.call('POST', '/auth/v2/auth', this.userParams(request.to, request.login, { factor: 'passcode', passcode: request.code }), { idempotent: false, signal: request.signal }),
      'auth (passcode)',
      this.name,
    );
    const ok = res.result === 'allow';
    this.log.info({ attemptId: request.login.attemptId, duoUser: request.to, accepted: ok, detail: describe(res) }, 'duo passcode checked');
    return ok;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const watch of [...this.pending]) watch.cancel('provider closed');
    this.pending.clear();
    await Promise.all([this.client.close(), this.pollClient.close()]);
  }

  private userParams(username: string, login: LoginContext, extra: DuoParams): Record<string, string> {
    const ipaddr = endUserAddress(login);
    return { username, ...extra, ...(ipaddr === undefined ? {} : { ipaddr }) };
  }
}

/** The end user's IP for Duo's policies (`ipaddr`): Calling-Station-Id when it is an address (it may be a MAC or a phone number). */
function endUserAddress(login: LoginContext): string | undefined {
  const address = login.callingStationId?.trim();
  return address !== undefined && isIP(address) !== 0 ? address : undefined;
}

/** What Duo Mobile shows under the request: URL-encoded key/value pairs. */
function pushinfo(login: LoginContext): string {
  const from = login.callingStationId ?? login.clientIp;
  return `client=${duoEncode(login.clientName)}&from=${duoEncode(from)}`;
}

function settledApproval(outcome: { result: 'approved' | 'denied' | 'timeout'; detail: string }, messageId: string | null = null): StartedApproval {
  return { messageId, outcome: Promise.resolve(outcome) };
}
