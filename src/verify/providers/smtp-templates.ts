/**
 * The one-time-code mail, per language. English is the default; a recipient whose directory
 * language starts with `de` gets German. The code never goes into the subject: subjects show up
 * in lock-screen notifications and mail-server logs, bodies less so.
 */

export type MailLanguage = 'en' | 'de';

interface CodeMailTemplate {
  readonly subject: string;
  greeting(name: string): string;
  readonly codeIntro: string;
  expires(minutes: number): string;
  login(clientName: string, address: string): string;
  readonly warning: string;
}

const TEMPLATES: Readonly<Record<MailLanguage, CodeMailTemplate>> = {
  en: {
    subject: 'Your verification code',
    greeting: (name) => `Hello ${name},`,
    codeIntro: 'Your verification code is:',
    expires: (minutes) => `It expires in ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}.`,
    login: (clientName, address) => `Login: ${clientName} from ${address}`,
    warning: 'If this was not you, do not give this code to anyone and tell your IT department.',
  },
  de: {
    subject: 'Ihr Bestätigungscode',
    greeting: (name) => `Hallo ${name},`,
    codeIntro: 'Ihr Bestätigungscode lautet:',
    expires: (minutes) => `Er läuft in ${minutes} ${minutes === 1 ? 'Minute' : 'Minuten'} ab.`,
    login: (clientName, address) => `Anmeldung: ${clientName} von ${address}`,
    warning: 'Wenn Sie das nicht waren, geben Sie diesen Code niemandem weiter und informieren Sie Ihre IT-Abteilung.',
  },
};

/** `de`, `de-DE`, `DE-at` → German; anything else (or none) → English. */
export function mailLanguage(tag: string | null): MailLanguage {
  return tag !== null && /^de(-|$)/i.test(tag) ? 'de' : 'en';
}

export interface CodeMailInput {
  readonly language: string | null;
  /** Display name, or the user name when the directory has none. */
  readonly name: string;
  readonly code: string;
  readonly ttlSeconds: number;
  readonly clientName: string;
  /** Where the login comes from (the user's address, else the NAS's). */
  readonly address: string;
}

export interface RenderedMail {
  readonly language: MailLanguage;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export function renderCodeMail(input: CodeMailInput): RenderedMail {
  const language = mailLanguage(input.language);
  const tpl = TEMPLATES[language];
  // Directory attributes and NAS-supplied values end up in the body: no control characters, so
  // a crafted display name cannot fake extra lines (a second "code") in the text part.
  const name = oneLine(input.name);
  const clientName = oneLine(input.clientName);
  const address = oneLine(input.address);
  const minutes = Math.max(1, Math.ceil(input.ttlSeconds / 60));
  const lines = [tpl.greeting(name), '', tpl.codeIntro, '', input.code, '', tpl.expires(minutes), tpl.login(clientName, address), '', tpl.warning, ''];
  const html =
    `<!DOCTYPE html><html lang="${language}"><body>` +
    `<p>${esc(tpl.greeting(name))}</p>` +
    `<p>${esc(tpl.codeIntro)}</p>` +
    `<p style="font-family:monospace;font-size:1.6em;letter-spacing:0.15em"><strong>${esc(input.code)}</strong></p>` +
    `<p>${esc(tpl.expires(minutes))}<br>${esc(tpl.login(clientName, address))}</p>` +
    `<p>${esc(tpl.warning)}</p>` +
    `</body></html>`;
  return { language, subject: tpl.subject, text: lines.join('\n'), html };
}

function oneLine(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim().slice(0, 200);
}

function esc(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
