/**
 * The TwiML documents (https://www.twilio.com/docs/voice/twiml) the Twilio provider hands out:
 * the inline document of a voice code call, and the pages of a phone approval call. Pure text
 * builders; every interpolated value is XML-escaped.
 *
 * Prompts are English; `voice_language` picks the text-to-speech voice that reads them.
 */

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>';

/** What Twilio gets where nothing is to be done (status callbacks, SMS replies we ignore). */
export const EMPTY_TWIML = `${XML_HEAD}<Response/>`;

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

function response(...verbs: string[]): string {
  return `${XML_HEAD}<Response>${verbs.join('')}</Response>`;
}

function say(text: string, language: string): string {
  return `<Say language="${escapeXml(language)}">${escapeXml(text)}</Say>`;
}

/** Digits read one by one ("4, 2, 7"): read as a number, 427816 is hard to take down. */
function spell(digits: string): string {
  return digits.split('').join(', ');
}

interface GatherOptions {
  readonly action: string;
  readonly numDigits: number;
  /** '' makes every key a digit (so `#` itself can be the answer). */
  readonly finishOnKey: string;
  readonly timeoutSeconds: number;
}

function gather(opts: GatherOptions, prompt: string, language: string): string {
  return (
    `<Gather input="dtmf" action="${escapeXml(opts.action)}" method="POST" numDigits="${opts.numDigits}" ` +
    `finishOnKey="${escapeXml(opts.finishOnKey)}" timeout="${opts.timeoutSeconds}">${say(prompt, language)}</Gather>`
  );
}

/** A sentence then hang up. */
export function goodbyeTwiml(text: string, language: string): string {
  return response(say(text, language), '<Hangup/>');
}

/** Inline document of a voice code call: the code digit by digit, twice. */
export function codeCallTwiml(code: string, language: string): string {
  return response(
    '<Pause length="1"/>',
    say(`Your verification code is ${spell(code)}.`, language),
    '<Pause length="1"/>',
    say(`Again, your verification code is ${spell(code)}.`, language),
    '<Pause length="1"/>',
    say('Goodbye.', language),
  );
}

/** Seconds Twilio waits for a key after the prompt was read. */
const KEY_TIMEOUT_SECONDS = 10;

/**
 * Approve mode. finishOnKey is empty so that `#` is delivered as the digit itself (Digits=#):
 * with the default finishOnKey (#), a lone # would end the Gather without any input and Twilio
 * would not call the action URL at all. numDigits=1 ends the Gather at the first key.
 */
export function approvePromptTwiml(clientName: string, action: string, language: string): string {
  return response(
    gather(
      { action, numDigits: 1, finishOnKey: '', timeoutSeconds: KEY_TIMEOUT_SECONDS },
      `This is your sign-in verification for ${clientName}. Press the pound key to approve. Press any other key to deny. If you did not try to sign in, press 0 to report fraud.`,
      language,
    ),
    say('No key was pressed. The sign-in was not approved. Goodbye.', language),
    '<Hangup/>',
  );
}

/**
 * PIN entry Gathers allow one digit more than the longest PIN, so that a PIN of maximum length
 * is still ended by the # the prompt asks for (numDigits would end the Gather one key earlier,
 * and the # would land in the next Gather as an empty answer). Too many digits is a wrong PIN.
 */
function pinDigits(maxLength: number): number {
  return maxLength + 1;
}

/** PIN mode: the PIN ended by #; `0#` reports fraud. */
export function pinPromptTwiml(clientName: string, action: string, maxLength: number, language: string): string {
  return response(
    gather(
      { action, numDigits: pinDigits(maxLength), finishOnKey: '#', timeoutSeconds: KEY_TIMEOUT_SECONDS },
      `This is your sign-in verification for ${clientName}. Enter your PIN, followed by the pound key. If you did not try to sign in, press 0 and then the pound key to report fraud.`,
      language,
    ),
    say('No PIN was entered. The sign-in was not approved. Goodbye.', language),
    '<Hangup/>',
  );
}

/** Asks for a new PIN (`lead` says why we ask again, if we do). */
export function newPinPromptTwiml(lead: string, action: string, minLength: number, maxLength: number, language: string): string {
  const length = minLength === maxLength ? `${minLength} digits` : `${minLength} to ${maxLength} digits`;
  return response(
    gather(
      { action, numDigits: pinDigits(maxLength), finishOnKey: '#', timeoutSeconds: KEY_TIMEOUT_SECONDS },
      `${lead}Please choose a new PIN of ${length}, followed by the pound key.`,
      language,
    ),
    say('No PIN was entered. Your PIN was not changed. Goodbye.', language),
    '<Hangup/>',
  );
}

export function confirmPinPromptTwiml(action: string, maxLength: number, language: string): string {
  return response(
    gather({ action, numDigits: pinDigits(maxLength), finishOnKey: '#', timeoutSeconds: KEY_TIMEOUT_SECONDS }, 'Please enter the new PIN again, followed by the pound key.', language),
    say('No PIN was entered. Your PIN was not changed. Goodbye.', language),
    '<Hangup/>',
  );
}
