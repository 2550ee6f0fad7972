import type { MethodName } from '../config/schema.js';
import type { OathToken, PushDevice } from '../store/types.js';
import type { FlowContext } from './context.js';

/**
 * Which second-factor methods a user can use now: allowed by the policy (in its order), set up
 * for the user (a token, a push device, a phone number, an email address) and configured with a
 * provider. The user's default method comes first when it is among them.
 */

export interface UsableMethod {
  readonly method: MethodName;
  /** push: the user's devices at the method's providers (empty for Duo, which knows the user by name). */
  readonly devices: readonly PushDevice[];
  /** phone, sms, voice: the number; email: the address. */
  readonly address: string | null;
}

export async function usableMethods(ctx: FlowContext, tokens: readonly OathToken[]): Promise<UsableMethod[]> {
  const user = ctx.user;
  if (!user) return [];
  const methods = ctx.config.methods;
  const number = user.mobile ?? user.phone;
  const out: UsableMethod[] = [];
  let devices: PushDevice[] | undefined;
  for (const method of ctx.policy.methods) {
    switch (method) {
      case 'totp':
      case 'hotp':
        if (tokens.some((t) => t.kind === method)) out.push({ method, devices: [], address: null });
        break;
      case 'push': {
        const push = methods.push;
        if (push === undefined) break;
        devices ??= await ctx.deps.store.listPushDevices(user.id);
        const mine = devices.filter((d) => push.providers.includes(d.provider));
        const duo = push.providers.some((name) => ctx.config.providers[name]?.type === 'duo');
        if (mine.length > 0 || duo) out.push({ method, devices: mine, address: null });
        break;
      }
      case 'phone':
        // PIN mode needs a PIN (an admin sets a first one, possibly with "change at first use").
        if (number !== null && methods.phone !== undefined && (methods.phone.mode === 'approve' || user.pinHash !== null)) out.push({ method, devices: [], address: number });
        break;
      case 'sms':
      case 'voice':
        if (number !== null && methods[method] !== undefined) out.push({ method, devices: [], address: number });
        break;
      case 'email':
        if (user.email !== null && methods.email !== undefined) out.push({ method, devices: [], address: user.email });
        break;
    }
  }
  const preferred = out.findIndex((m) => m.method === user.defaultMethod);
  if (preferred > 0) out.unshift(...out.splice(preferred, 1));
  return out;
}

/** `secret,push` and friends: the keyword names a method (`call` is `phone`). */
export function keywordMethod(keyword: string): MethodName | undefined {
  switch (keyword) {
    case 'push':
    case 'sms':
    case 'voice':
    case 'email':
    case 'phone':
      return keyword;
    case 'call':
      return 'phone';
    default:
      return undefined;
  }
}

const MENU_LABELS: Record<MethodName, string> = {
  push: 'push',
  phone: 'call',
  sms: 'SMS',
  voice: 'voice code',
  email: 'email',
  totp: 'app code',
  hotp: 'token code',
};

/** "1 push, 2 SMS, 3 call, 4 app code" — the codes methods share one entry: a code can be typed at any prompt. */
export function menuEntries(usable: readonly UsableMethod[]): UsableMethod[] {
  return usable.filter((m, i) => !((m.method === 'totp' || m.method === 'hotp') && usable.findIndex((o) => o.method === 'totp' || o.method === 'hotp') !== i));
}

export function menuPrompt(usable: readonly UsableMethod[]): string {
  return `Choose a method: ${menuEntries(usable)
    .map((m, i) => `${i + 1} ${MENU_LABELS[m.method]}`)
    .join(', ')}`;
}

/** The method the answer to a menu picks: its number, or its keyword. */
export function menuChoice(usable: readonly UsableMethod[], answer: string): UsableMethod | undefined {
  const text = answer.trim().toLowerCase();
  const entries = menuEntries(usable);
  if (/^\d$/.test(text)) return entries[Number(text) - 1];
  const method = keywordMethod(text);
  return method === undefined ? undefined : usable.find((m) => m.method === method);
}
