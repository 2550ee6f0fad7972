/**
 * Login names arrive as `user`, `DOMAIN\user`, `user@realm` or with odd case. The store matches
 * case-insensitively on username and UPN; these are the forms to try, most specific first.
 */
export function nameCandidates(raw: string): string[] {
  const name = raw.trim().normalize('NFC');
  if (name === '') return [];
  const out = [name];
  const backslash = name.indexOf('\\');
  if (backslash >= 0) {
    const bare = name.slice(backslash + 1);
    if (bare !== '' && !bare.includes('\\')) out.push(bare);
    return out;
  }
  const at = name.lastIndexOf('@');
  if (at > 0) out.push(name.slice(0, at));
  return out;
}
