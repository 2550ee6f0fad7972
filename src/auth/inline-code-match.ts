import type { OathToken, User } from '../store/types.js';
import { matchOathCode, type OathMatch, type OathSettings } from '../verify/oath.js';
import type { FlowContext } from './context.js';

/** The user's OATH tokens that the second factor may use, and which of them an inline code belongs to. */
export interface InlineCodeMatch {
  readonly tokens: readonly OathToken[];
  readonly matches: readonly OathMatch[];
}

/** The user's enabled tokens of the methods the policy allows. */
export async function usableTokens(ctx: FlowContext, user: User): Promise<readonly OathToken[]> {
  const allowed = new Set<string>(ctx.policy.methods);
  return (await ctx.deps.store.listTokens(user.id)).filter((t) => t.enabled && allowed.has(t.kind));
}

/** The configured TOTP window and HOTP look-ahead, as the OATH checks take them. */
export function oathSettings(ctx: FlowContext): OathSettings {
  return { totpWindow: ctx.config.totp.window, hotpLookAhead: ctx.config.hotp.look_ahead };
}

/**
 * Matches an inline code (`password,123456`) against the user's OATH tokens while the first
 * factor waits on its directory or upstream server; the second factor then only claims the
 * match (a login's code check, ~0.1 ms with its token read and secret opening, leaves the path
 * between the server's answer and the reply). Nothing is written or decided here: a rejected
 * password ends the attempt and the match is dropped. It runs on the next turn of the event
 * loop, after the first factor's request has gone out, and compares every step of the window
 * (matchOathCode `exhaustive`), since the password is not known to be right yet: a reject must
 * not take longer or shorter for a right code than for a wrong one.
 */
export function startInlineCodeMatch(ctx: FlowContext): void {
  const user = ctx.user;
  const code = ctx.input?.code;
  if (user === undefined || code === undefined || ctx.challenge !== undefined) return;
  const settings = oathSettings(ctx);
  const match = new Promise<InlineCodeMatch>((resolve) => {
    setImmediate(() => resolve(usableTokens(ctx, user).then((tokens) => ({ tokens, matches: matchOathCode(ctx.deps.keys, tokens, code, ctx.now, settings, true) }))));
  });
  // Awaited only when the first factor passes; a fault in it (the store) then fails the attempt there.
  match.catch(() => undefined);
  ctx.inlineCodeMatch = match;
}
