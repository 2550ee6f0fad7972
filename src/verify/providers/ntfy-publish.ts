import type { LoginContext, NumberMatch, Recipient } from './provider.js';

/**
 * The wire side of an ntfy push: the JSON publish body (docs.ntfy.sh "Publishing": "Publish as
 * JSON" to the server's root URL, "Action buttons" of type `http`) and ntfy's answers.
 *
 * Every button is an `http` action that the ntfy app performs itself (method, url, headers and
 * body exactly as given), so the gateway learns the answer without the app knowing about us.
 * ntfy allows at most three actions; with number matching the three numbers take all of them and
 * "Deny" / "Not me" move to a page opened by tapping the notification (`click`).
 */

/** ntfy's topic rule (server topicRegex, "Picking a topic"): letters, digits, `-`, `_`; 1..64. */
export const NTFY_TOPIC = /^[-_A-Za-z0-9]{1,64}$/;

/** ntfy refuses more than this many actions per message (server actionsMax). */
export const NTFY_MAX_ACTIONS = 3;

export type PushAnswer = 'approve' | 'deny' | 'fraud';

/** Purpose of a callback token: what pressing it means. The pick's number is part of the purpose. */
export function answerPurpose(answer: PushAnswer): string {
  return `ntfy:${answer}`;
}
export function pickPurpose(n: number): string {
  return `ntfy:pick:${n}`;
}
export const PAGE_PURPOSE = 'ntfy:page';

export interface NtfyHttpAction {
  readonly action: 'http';
  readonly label: string;
  readonly url: string;
  readonly method: 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly clear: boolean;
}

export interface NtfyPublishBody {
  readonly topic: string;
  readonly title: string;
  readonly message: string;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly click: string;
  readonly actions: readonly NtfyHttpAction[];
}

/** One button: a form post, so the callback server parses the hint (which answer, which number). */
export function httpAction(label: string, url: string, form: Readonly<Record<string, string>>): NtfyHttpAction {
  return {
    action: 'http',
    label,
    url,
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
    clear: true,
  };
}

/** "VPN login for alice from 198.51.100.7": what the notification and the page show. */
export function loginSummary(recipient: Recipient, login: LoginContext): string {
  return `${login.clientName} login for ${recipient.username} from ${login.callingStationId ?? login.clientIp}`;
}

export interface PublishInput {
  readonly topic: string;
  readonly summary: string;
  readonly priority: number;
  /** Callback URL of the page the notification opens. */
  readonly pageUrl: string;
  /** Answer URL for a token of `purpose`. */
  readonly answerUrl: (purpose: string) => string;
  readonly numberMatch: NumberMatch | undefined;
}

export function publishBody(input: PublishInput): NtfyPublishBody {
  const actions =
    input.numberMatch === undefined
      ? [
          httpAction('Approve', input.answerUrl(answerPurpose('approve')), { answer: 'approve' }),
          httpAction('Deny', input.answerUrl(answerPurpose('deny')), { answer: 'deny' }),
          httpAction('Not me', input.answerUrl(answerPurpose('fraud')), { answer: 'fraud' }),
        ]
      : input.numberMatch.choices.slice(0, NTFY_MAX_ACTIONS).map((n) => httpAction(String(n), input.answerUrl(pickPurpose(n)), { pick: String(n) }));
  return {
    topic: input.topic,
    title: 'Sign-in request',
    message: input.summary,
    priority: input.priority,
    tags: ['lock'],
    click: input.pageUrl,
    actions,
  };
}

/** The `id` of ntfy's message answer, or null when the body is not the message JSON. */
export function publishedId(body: Buffer): string | null {
  const parsed = parseJson(body);
  const id = parsed?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= 64 ? id : null;
}

/** ntfy's error JSON (`{code, http, error, link}`) as one line, without echoing anything we sent. */
export function errorText(status: number, body: Buffer): { text: string; code: string } {
  const parsed = parseJson(body);
  const code = typeof parsed?.code === 'number' ? String(parsed.code) : String(status);
  const error = typeof parsed?.error === 'string' ? parsed.error.slice(0, 200) : `HTTP ${status}`;
  return { text: error, code };
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
