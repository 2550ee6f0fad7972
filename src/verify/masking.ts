/**
 * How a phone number or mail address appears in logs and prompts: enough to tell them apart (and
 * for users to recognise their own), not to call or write to them.
 */

/** `+4915112345678` → `+*********5678`. */
export function maskPhone(number: string): string {
  const plus = number.startsWith('+') ? '+' : '';
  const rest = number.slice(plus.length);
  if (rest.length <= 4) return `${plus}****`;
  return `${plus}${'*'.repeat(rest.length - 4)}${rest.slice(-4)}`;
}

/** `anna.schmidt@example.com` → `a***@example.com`. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  return at <= 0 ? '***' : `${address[0] ?? ''}***${address.slice(at)}`;
}
