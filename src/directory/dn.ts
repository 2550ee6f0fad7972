/**
 * The RDNs of a DN as written: split on unescaped commas, escapes kept; undefined for a dangling
 * escape. What the DN helpers of the directory client and of group matching build on.
 */
export function splitRdns(dn: string): string[] | undefined {
  const rdns: string[] = [];
  let current = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i] ?? '';
    if (c === '\\') {
      const next = dn[i + 1];
      if (next === undefined) return undefined;
      current += c + next;
      i++;
    } else if (c === ',') {
      rdns.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  rdns.push(current);
  return rdns;
}
