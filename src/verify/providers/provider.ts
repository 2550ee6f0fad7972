import type { Logger } from '../../log.js';
import type { CallbackTokens } from '../callback-tokens.js';

/**
 * The cloud side of the second factor: a provider is one configured account at one service
 * (a Twilio account, a Duo application, an ntfy server, an SMS webhook, an SMTP relay). The
 * methods in src/verify/ use providers through these interfaces only; which provider serves a
 * method, in which order, is the configuration's `methods.<method>.providers`.
 *
 * Faults: a provider that cannot be reached, answers 5xx, times out or has its circuit breaker
 * open throws ProviderUnavailableError (the next provider of the method is then tried, and when
 * none is left the policy's fail mode decides). A provider that answers but refuses the request
 * (a 4xx: bad number, unknown Duo user) throws ProviderRejectedError: the next provider is tried
 * too, but it does not count against the breaker.
 */

/** Channels that carry a one-time code to the user, who types it back. */
export type CodeChannel = 'sms' | 'voice' | 'email';
/**
 * Channels on which the user approves (or denies) on their own device while the login waits:
 * `push` (app notification), `phone` (a call: press # or key in the PIN), `sms_reply` (two-way
 * SMS: the user answers the text message with the code it carries).
 */
export type ApprovalChannel = 'push' | 'phone' | 'sms_reply';

export type ProviderType = 'twilio' | 'duo' | 'ntfy' | 'webhook' | 'smtp';

/** Whom a message is for: what a provider may show or log (never a code). */
export interface Recipient {
  readonly userId: string;
  readonly username: string;
  /** "First Last" when known. */
  readonly displayName: string | null;
  /** BCP 47 tag from the directory (e.g. `de`, `en-GB`), null for the default. */
  readonly language: string | null;
}

/** Where the login comes from, as an approval prompt shows it ("VPN login from 198.51.100.7"). */
export interface LoginContext {
  readonly attemptId: string;
  readonly clientName: string;
  readonly clientIp: string;
  readonly nasIdentifier: string | null;
  /** The end user's address as the NAS reports it (Calling-Station-Id). */
  readonly callingStationId: string | null;
}

export interface CodeMessage {
  readonly channel: CodeChannel;
  /** E.164 phone number (`+4915112345678`) for sms/voice, an address for email. */
  readonly to: string;
  /** The one-time code (digits). Never logged. */
  readonly code: string;
  readonly ttlSeconds: number;
  readonly recipient: Recipient;
  readonly login: LoginContext;
  readonly signal: AbortSignal;
}

export interface SentMessage {
  /** The provider's id of the message or call (Twilio SID, Duo txid, …), for the audit record. */
  readonly messageId: string | null;
}

/**
 * Number matching (push): the login screen shows `correct`; the app offers `choices` (three
 * numbers, `correct` among them, in random order) and the user must pick the one shown.
 */
export interface NumberMatch {
  readonly correct: number;
  readonly choices: readonly number[];
}

/** PIN mode of a phone call: the user keys in their PIN instead of pressing #. */
export interface PinCheck {
  /** True when the digits are the user's PIN. */
  verify(digits: string): Promise<boolean>;
  /** The user must choose a new PIN during this call (after keying in the current one). */
  readonly mustChange: boolean;
  /** Stores a new PIN (called once, after it was keyed in twice the same). */
  change(digits: string): Promise<void>;
  /** Digits a PIN has (min..max). */
  readonly minLength: number;
  readonly maxLength: number;
}

export interface ProviderCodeRequest {
  readonly channel: 'sms';
  /** The provider's name for the user (Duo username) or an E.164 number, as the provider needs. */
  readonly to: string;
  readonly recipient: Recipient;
  readonly login: LoginContext;
  readonly signal: AbortSignal;
}

export interface ProviderCodeCheck {
  readonly to: string;
  /** Never logged. */
  readonly code: string;
  readonly recipient: Recipient;
  readonly login: LoginContext;
  readonly signal: AbortSignal;
}

export interface ApprovalRequest {
  readonly channel: ApprovalChannel;
  /** E.164 number (phone, sms_reply), device address (ntfy topic) or provider user name (Duo). */
  readonly to: string;
  readonly recipient: Recipient;
  readonly login: LoginContext;
  /** Push only, and only when the provider says `numberMatching`. */
  readonly numberMatch?: NumberMatch;
  /** Phone only, in PIN mode. */
  readonly pin?: PinCheck;
  /** sms_reply only: the code the text message carries and the user sends back. Never logged. */
  readonly code?: string;
  /** Epoch ms: after this the outcome is `timeout`. */
  readonly expiresAt: number;
  /** Aborted when the login gives up waiting (timeout, shutdown): the provider stops and settles `timeout`. */
  readonly signal: AbortSignal;
}

export type ApprovalResult =
  /** The user approved (pressed #, keyed in the right PIN, tapped Approve with the right number). */
  | 'approved'
  /** The user declined (tapped Deny, hung up before answering, pressed another key). */
  | 'denied'
  /** The user reported the request as fraudulent (Deny → "this wasn't me", pressed 0 on a call). */
  | 'fraud'
  /** Number matching: the user picked another number than the login screen shows. */
  | 'wrong_number'
  /** PIN mode: the digits were not the PIN. */
  | 'bad_pin'
  /** No answer before expiresAt (or the call was not picked up, busy, failed after it started). */
  | 'timeout';

export interface ApprovalOutcome {
  readonly result: ApprovalResult;
  /** One line for the log and audit (never a code or PIN): "call completed, no digits". */
  readonly detail?: string;
}

export interface StartedApproval {
  /** The provider's id of the push, call or message, for the audit record. */
  readonly messageId: string | null;
  /** Settles exactly once, never rejects. */
  readonly outcome: Promise<ApprovalOutcome>;
}

/**
 * The HTTP listener (src/verify/callback-server.ts) on which providers receive their callbacks,
 * under `/callbacks/<provider name>/…`. Handlers get the raw body (signatures are computed over
 * the exact bytes or form parameters) and answer with a status, a content type and a body.
 */
export interface CallbackRequest {
  readonly method: string;
  /** Path and query as received (what signatures over the URL need). */
  readonly url: string;
  /** Path parameters (`:token`). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly rawBody: Buffer;
  /** `application/x-www-form-urlencoded` bodies, parsed (Twilio). Empty otherwise. */
  readonly form: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
}

export interface CallbackResponse {
  readonly status: number;
  readonly contentType?: string;
  readonly body?: string;
}

export type CallbackHandler = (req: CallbackRequest) => Promise<CallbackResponse>;

export interface CallbackRoutes {
  /** `path` is relative to `/callbacks/<provider name>`, e.g. `/voice/:token`. */
  add(method: 'GET' | 'POST', path: string, handler: CallbackHandler): void;
}

/** What every provider gets when it is built. */
export interface ProviderDeps {
  readonly log: Logger;
  /** Signed, single-use, expiring tokens for callback URLs (src/verify/callback-tokens.ts). */
  readonly tokens: CallbackTokens;
  /**
   * The gateway's public base URL for provider callbacks (`http.public_url`, e.g.
   * `https://mfa.example.com`), without a trailing slash; undefined when no HTTP listener is
   * configured (a provider that needs callbacks is refused by the config check before that).
   */
  readonly publicUrl: string | undefined;
  /** Epoch ms; replaceable in tests. */
  readonly now: () => number;
}

export interface Provider {
  /** The configuration key (`providers.<name>`). */
  readonly name: string;
  readonly type: ProviderType;
  readonly codeChannels: ReadonlySet<CodeChannel>;
  readonly approvalChannels: ReadonlySet<ApprovalChannel>;
  /** Whether push through this provider can show number-matching choices. */
  readonly numberMatching: boolean;
  /** Delivers a gateway-made one-time code. */
  sendCode?(message: CodeMessage): Promise<SentMessage>;
  /** Starts a push, call or two-way SMS; resolves once the provider accepted it (the outcome follows). */
  startApproval?(request: ApprovalRequest): Promise<StartedApproval>;
  /**
   * Codes the provider makes and checks itself (Duo's SMS passcodes): `requestProviderCode`
   * has the provider send one, `verifyProviderCode` asks it whether a typed code is right.
   */
  requestProviderCode?(request: ProviderCodeRequest): Promise<SentMessage>;
  verifyProviderCode?(request: ProviderCodeCheck): Promise<boolean>;
  /** Registers the provider's callback routes (called once, before the listener starts). */
  routes?(routes: CallbackRoutes): void;
  /** Stops timers and closes connection pools; pending approvals settle `timeout`. */
  close(): Promise<void>;
}
