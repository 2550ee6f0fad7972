import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { CallbackTokens } from '../callback-tokens.js';
import type { ApprovalOutcome, ApprovalRequest, CallbackResponse, StartedApproval } from './provider.js';
import { maskPhone } from '../masking.js';
import type { TwilioApi } from './twilio-api.js';
import { sameSecret } from './twilio-signature.js';
import { EMPTY_TWIML, approvePromptTwiml, confirmPinPromptTwiml, goodbyeTwiml, newPinPromptTwiml, pinPromptTwiml } from './twilio-twiml.js';
import { ApprovalWaiter } from './twilio-waiter.js';

/**
 * Phone approvals: the gateway has Twilio call the user and reads the answer off the keypad.
 *
 *   Calls.json (Url=/voice/<t>, StatusCallback=/status/<t>)
 *   → Twilio fetches /voice/<t>: a <Gather> asking for # (approve mode) or the PIN (PIN mode)
 *   → Twilio posts the keys to /gather/<step>/<t>: the outcome settles, the answer is a goodbye
 *     or, when the PIN must change, the next <Gather>
 *   → Twilio posts the final call status to /status/<t>: a call that ended (or never connected)
 *     without an answer settles `timeout`.
 *
 * Every token names the call (its id) and the route purpose; a gather token is redeemed (single
 * use through the store), so a replayed keypress is refused even with a valid Twilio signature.
 * The provider checks X-Twilio-Signature and AccountSid before any of these handlers run.
 *
 * PIN change (PinCheck.mustChange): the login is approved as soon as the current PIN is right,
 * because that is what proves the login and a NAS does not wait long; the call then asks for the
 * new PIN twice. A mismatch or an unusable PIN is asked again once; after that, or when the user
 * hangs up, the PIN stays as it was and mustChange stays set, so the next call asks again.
 */

export interface PhoneApprovalsOptions {
  readonly name: string;
  /** The Twilio number calls come from. */
  readonly from: string;
  readonly language: string;
  readonly api: TwilioApi;
  readonly tokens: CallbackTokens;
  readonly log: Logger;
  readonly now: () => number;
  /** `<public URL>/callbacks/<provider name>`. */
  readonly callbackBase: string;
}

export const GATHER_STEPS = ['approve', 'pin', 'new1', 'confirm1', 'new2', 'confirm2'] as const;
export type GatherStep = (typeof GATHER_STEPS)[number];

export function isGatherStep(step: string): step is GatherStep {
  return (GATHER_STEPS as readonly string[]).includes(step);
}

export const REFUSED: CallbackResponse = { status: 403, contentType: 'text/plain; charset=utf-8', body: 'forbidden\n' };

/**
 * Callbacks of a call stay acceptable this long after the login's expiry: the status callback
 * follows the hang-up, and a PIN change may go on after the login was approved.
 */
const CALL_GRACE_MS = 5 * 60_000;
/** Ringing time is what is left of the login minus this (prompt and keypress), within Twilio's 5..60 s. */
const ANSWER_SECONDS = 20;
const MIN_RING_SECONDS = 5;
const MAX_RING_SECONDS = 60;
/** close() waits this long for best-effort hang-ups. */
const CLOSE_WAIT_MS = 2000;

const NO_LONGER_VALID = 'This sign-in request is no longer valid. Goodbye.';
const APPROVED = 'Thank you. The sign-in is approved. Goodbye.';

const TERMINAL_STATUS: Readonly<Record<string, string>> = {
  busy: 'line busy',
  'no-answer': 'call not answered',
  failed: 'call failed',
  canceled: 'call canceled',
};

class PendingCall {
  sid: string | undefined;
  /** Give-up happened before Calls.json answered: hang up as soon as the SID is known. */
  endWanted = false;
  /** Twilio fetched the prompt (the call was picked up). */
  answered = false;
  /** The current PIN was keyed in right (PIN change may follow). */
  pinProven = false;
  /** First entry of the new PIN, waiting for its confirmation. Never logged. */
  newPin: string | undefined;
  cleanup: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly request: ApprovalRequest,
    readonly waiter: ApprovalWaiter,
    readonly tokenExpiry: number,
  ) {}
}

export class PhoneApprovals {
  private readonly calls = new Map<string, PendingCall>();

  constructor(private readonly opts: PhoneApprovalsOptions) {}

  get pending(): number {
    return this.calls.size;
  }

  async start(request: ApprovalRequest): Promise<StartedApproval> {
    const { tokens, now } = this.opts;
    const id = CallbackTokens.newId();
    const tokenExpiry = request.expiresAt + CALL_GRACE_MS;
    const holder: { call?: PendingCall } = {};
    const waiter = new ApprovalWaiter(request.expiresAt, request.signal, now, () => {
      if (holder.call !== undefined) this.hangUp(holder.call);
    });
    const call = new PendingCall(id, request, waiter, tokenExpiry);
    holder.call = call;
    this.calls.set(id, call);
    call.cleanup = setTimeout(() => this.forget(call), Math.max(0, tokenExpiry - now()));
    call.cleanup.unref();

    const base = this.opts.callbackBase;
    const secondsLeft = Math.floor((request.expiresAt - now()) / 1000);
    const ring = Math.min(MAX_RING_SECONDS, Math.max(MIN_RING_SECONDS, secondsLeft - ANSWER_SECONDS));
    try {
      const sid = await this.opts.api.createCall(
        {
          To: request.to,
          From: this.opts.from,
          Url: `${base}/voice/${tokens.issue(id, 'twilio-voice', tokenExpiry)}`,
          Method: 'POST',
          StatusCallback: `${base}/status/${tokens.issue(id, 'twilio-status', tokenExpiry)}`,
          StatusCallbackMethod: 'POST',
          StatusCallbackEvent: 'completed',
          Timeout: String(ring),
        },
        request.signal,
      );
      call.sid = sid;
    } catch (err) {
      this.forget(call);
      throw err;
    }
    if (call.endWanted) this.hangUp(call);
    const logFields = { provider: this.opts.name, attemptId: request.login.attemptId, to: maskPhone(request.to), callSid: call.sid };
    this.opts.log.info({ ...logFields, mode: request.pin === undefined ? 'approve' : 'pin', ringSeconds: ring }, 'phone approval call started');
    void waiter.outcome.then((outcome) => this.opts.log.info({ ...logFields, result: outcome.result, detail: outcome.detail }, 'phone approval settled'));
    return { messageId: call.sid ?? null, outcome: waiter.outcome };
  }

  /** Twilio fetches the call's first TwiML page. */
  voice(token: string, form: Readonly<Record<string, string>>): CallbackResponse {
    const verified = this.opts.tokens.verify(token, 'twilio-voice');
    if (verified === undefined) return this.refuse('voice', 'callback token forged or expired');
    const call = this.calls.get(verified.id);
    if (call === undefined) return this.goodbye(NO_LONGER_VALID);
    if (!this.sameCall(call, form)) return this.refuse('voice', 'CallSid does not match the call');
    if (call.waiter.settled !== undefined) return this.goodbye(NO_LONGER_VALID);
    call.answered = true;
    const client = call.request.login.clientName;
    const pin = call.request.pin;
    return this.twiml(
      pin === undefined
        ? approvePromptTwiml(client, this.gatherUrl(call, 'approve'), this.opts.language)
        : pinPromptTwiml(client, this.gatherUrl(call, 'pin'), pin.maxLength, this.opts.language),
    );
  }

  /** Twilio posts the keys of one <Gather>. */
  async gather(step: GatherStep, token: string, form: Readonly<Record<string, string>>): Promise<CallbackResponse> {
    const purpose = `twilio-gather-${step}`;
    const verified = await this.opts.tokens.redeem(token, purpose, purpose);
    if (verified === undefined) return this.refuse('gather', 'callback token forged, expired or used already');
    const call = this.calls.get(verified.id);
    if (call === undefined) return this.goodbye(NO_LONGER_VALID);
    if (!this.sameCall(call, form)) return this.refuse('gather', 'CallSid does not match the call');
    const digits = form.Digits ?? '';
    switch (step) {
      case 'approve':
        return this.onApproveKey(call, digits);
      case 'pin':
        return this.onPin(call, digits);
      case 'new1':
      case 'new2':
        return this.onNewPin(call, step === 'new1' ? 1 : 2, digits);
      case 'confirm1':
      case 'confirm2':
        return this.onConfirmPin(call, step === 'confirm1' ? 1 : 2, digits);
    }
  }

  /** Twilio posts the call's final status (we subscribe to `completed` only, which covers all ends). */
  status(token: string, form: Readonly<Record<string, string>>): CallbackResponse {
    const verified = this.opts.tokens.verify(token, 'twilio-status');
    if (verified === undefined) return this.refuse('status', 'callback token forged or expired');
    const call = this.calls.get(verified.id);
    if (call === undefined) return this.twiml(EMPTY_TWIML);
    if (!this.sameCall(call, form)) return this.refuse('status', 'CallSid does not match the call');
    const status = form.CallStatus ?? '';
    let detail = TERMINAL_STATUS[status];
    if (status === 'completed') {
      detail = !call.answered ? 'call ended before the prompt' : call.request.pin === undefined ? 'call answered, no key pressed' : 'call answered, no PIN entered';
    }
    if (detail === undefined) return this.twiml(EMPTY_TWIML);
    call.waiter.settle({ result: 'timeout', detail });
    this.forget(call);
    return this.twiml(EMPTY_TWIML);
  }

  /** Settles every pending call `timeout` and hangs up those still ringing or waiting for keys. */
  async close(): Promise<void> {
    const hangUps: Promise<void>[] = [];
    for (const call of this.calls.values()) {
      if (call.waiter.settle({ result: 'timeout', detail: 'gateway shutting down' }) && call.sid !== undefined) {
        hangUps.push(this.opts.api.endCall(call.sid).catch(() => undefined));
      }
      this.forget(call);
    }
    if (hangUps.length > 0) await Promise.race([Promise.allSettled(hangUps), sleep(CLOSE_WAIT_MS, undefined, { ref: false })]);
  }

  private onApproveKey(call: PendingCall, digits: string): CallbackResponse {
    if (digits === '#') return this.settleAndSay(call, { result: 'approved', detail: 'pressed #' }, APPROVED);
    if (digits === '0') return this.settleAndSay(call, { result: 'fraud', detail: 'pressed 0 (fraud)' }, 'The sign-in was denied and reported as fraud. Goodbye.');
    return this.settleAndSay(call, { result: 'denied', detail: digits === '' ? 'no key' : 'pressed another key' }, 'The sign-in was denied. Goodbye.');
  }

  private async onPin(call: PendingCall, digits: string): Promise<CallbackResponse> {
    const pin = call.request.pin;
    if (pin === undefined || call.waiter.settled !== undefined) return this.goodbye(NO_LONGER_VALID);
    if (digits === '0') return this.settleAndSay(call, { result: 'fraud', detail: 'keyed 0 (fraud)' }, 'The sign-in was denied and reported as fraud. Goodbye.');
    const wrong = { result: 'bad_pin', detail: 'wrong PIN' } as const;
    const wrongText = 'That PIN is not correct. The sign-in was not approved. Goodbye.';
    if (!/^\d+$/.test(digits) || digits.length < pin.minLength || digits.length > pin.maxLength) return this.settleAndSay(call, wrong, wrongText);
    let ok: boolean;
    try {
      ok = await pin.verify(digits);
    } catch (err) {
      this.opts.log.error({ provider: this.opts.name, attemptId: call.request.login.attemptId, err: errorMessage(err) }, 'PIN check failed');
      return this.settleAndSay(call, { result: 'timeout', detail: 'the PIN could not be checked' }, 'Sorry, your PIN could not be checked. Goodbye.');
    }
    if (!ok) return this.settleAndSay(call, wrong, wrongText);
    if (!pin.mustChange) return this.settleAndSay(call, { result: 'approved', detail: 'PIN correct' }, APPROVED);
    if (!call.waiter.settle({ result: 'approved', detail: 'PIN correct, PIN change requested' })) return this.goodbye(NO_LONGER_VALID);
    call.pinProven = true;
    return this.twiml(
      newPinPromptTwiml('Your PIN is correct and the sign-in is approved. You must now change your PIN. ', this.gatherUrl(call, 'new1'), pin.minLength, pin.maxLength, this.opts.language),
    );
  }

  private onNewPin(call: PendingCall, attempt: 1 | 2, digits: string): CallbackResponse {
    const pin = call.request.pin;
    if (pin === undefined || !call.pinProven) return this.goodbye(NO_LONGER_VALID);
    // Whether the new PIN may equal the old one is PinCheck.change's policy: a verify() here
    // could count as a failed PIN attempt.
    if (!/^\d+$/.test(digits) || digits.length < pin.minLength || digits.length > pin.maxLength) {
      return this.askAgainOrStop(call, attempt, 'That PIN has the wrong length. ');
    }
    call.newPin = digits;
    return this.twiml(confirmPinPromptTwiml(this.gatherUrl(call, attempt === 1 ? 'confirm1' : 'confirm2'), pin.maxLength, this.opts.language));
  }

  private async onConfirmPin(call: PendingCall, attempt: 1 | 2, digits: string): Promise<CallbackResponse> {
    const pin = call.request.pin;
    const chosen = call.newPin;
    call.newPin = undefined;
    if (pin === undefined || !call.pinProven || chosen === undefined) return this.goodbye(NO_LONGER_VALID);
    if (!sameSecret(digits, chosen)) return this.askAgainOrStop(call, attempt, 'The two PINs did not match. ');
    const logFields = { provider: this.opts.name, attemptId: call.request.login.attemptId, callSid: call.sid };
    try {
      await pin.change(chosen);
    } catch (err) {
      this.opts.log.warn({ ...logFields, err: errorMessage(err) }, 'PIN change on the phone failed');
      return this.goodbye('Sorry, your PIN could not be changed. Goodbye.');
    }
    this.opts.log.info(logFields, 'PIN changed on the phone');
    return this.goodbye('Your new PIN is set. Goodbye.');
  }

  private askAgainOrStop(call: PendingCall, attempt: 1 | 2, why: string): CallbackResponse {
    const pin = call.request.pin;
    if (attempt === 1 && pin !== undefined) {
      return this.twiml(newPinPromptTwiml(why, this.gatherUrl(call, 'new2'), pin.minLength, pin.maxLength, this.opts.language));
    }
    this.opts.log.info({ provider: this.opts.name, attemptId: call.request.login.attemptId, callSid: call.sid }, 'PIN change on the phone abandoned, PIN unchanged');
    return this.goodbye(`${why}Your PIN was not changed. Goodbye.`);
  }

  private settleAndSay(call: PendingCall, outcome: ApprovalOutcome, text: string): CallbackResponse {
    return this.goodbye(call.waiter.settle(outcome) ? text : NO_LONGER_VALID);
  }

  /** The callback's CallSid is the call's (adopted from the first signed callback if Calls.json has not answered yet). */
  private sameCall(call: PendingCall, form: Readonly<Record<string, string>>): boolean {
    const sid = form.CallSid;
    if (sid === undefined || sid === '') return false;
    if (call.sid === undefined) {
      call.sid = sid;
      return true;
    }
    return call.sid === sid;
  }

  private gatherUrl(call: PendingCall, step: GatherStep): string {
    const purpose = `twilio-gather-${step}`;
    return `${this.opts.callbackBase}/gather/${step}/${this.opts.tokens.issue(call.id, purpose, call.tokenExpiry)}`;
  }

  private hangUp(call: PendingCall): void {
    if (call.sid === undefined) {
      call.endWanted = true;
      return;
    }
    const callSid = call.sid;
    this.opts.api.endCall(callSid).catch((err: unknown) => {
      this.opts.log.debug({ provider: this.opts.name, callSid, err: errorMessage(err) }, 'could not end the call');
    });
  }

  private forget(call: PendingCall): void {
    call.waiter.dispose();
    if (call.cleanup !== undefined) clearTimeout(call.cleanup);
    this.calls.delete(call.id);
  }

  private refuse(route: string, reason: string): CallbackResponse {
    this.opts.log.warn({ provider: this.opts.name, route, reason }, 'Twilio callback refused');
    return REFUSED;
  }

  private goodbye(text: string): CallbackResponse {
    return this.twiml(goodbyeTwiml(text, this.opts.language));
  }

  private twiml(body: string): CallbackResponse {
    return { status: 200, contentType: 'text/xml; charset=utf-8', body };
  }
}
