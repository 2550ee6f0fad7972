import { INLINE_KEYWORDS } from '../verify/method.js';
import { CODE_PATTERN } from '../verify/oath.js';

export interface SplitPassword {
  readonly password: string;
  /** A one-time code typed after the delimiter: `secret,123456`. */
  readonly code?: string;
  /** A method keyword typed after the delimiter: `secret,push`. */
  readonly keyword?: string;
}

/**
 * Splits an inline second factor off the password at the LAST delimiter, and only when what
 * follows is a 6–8 digit code or a known method keyword, so passwords that merely contain the
 * delimiter still work. The split is decided before any first-factor check, so it never costs a
 * second directory bind. (A password that itself ends in `,` + six digits cannot be used with
 * an inline delimiter of `,`: choose another delimiter for that client.)
 */
export function splitInlineFactor(input: string, delimiter: string): SplitPassword {
  const at = input.lastIndexOf(delimiter);
  if (at < 0) return { password: input };
  const suffix = input.slice(at + delimiter.length);
  const password = input.slice(0, at);
  if (CODE_PATTERN.test(suffix)) return { password, code: suffix };
  const keyword = suffix.toLowerCase();
  if (INLINE_KEYWORDS.has(keyword)) return { password, keyword };
  return { password: input };
}
