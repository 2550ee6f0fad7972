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

/** Starts like a DN (`cn=`, `CN =`, `2.5.4.3=`): the same test parseLogin uses. */
export function looksLikeDn(text: string): boolean {
  return /^\s*(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)\s*=/.test(text);
}

/**
 * A DN in one canonical spelling for comparison, or undefined when it is no DN: attribute types
 * and values lower-cased, blanks around `=` and `,` dropped, escapes (`\,`, `\2C`, `\C3\A9`)
 * decoded and the few characters that need it re-escaped the same way. So `CN=Smith\, J,DC=x`
 * and `cn=smith\2c j, dc=X` compare equal. Multi-valued RDNs (`+`) are compared as written.
 */
export function normaliseDn(dn: string): string | undefined {
  const rdns = splitRdns(dn);
  if (rdns === undefined) return undefined;
  const out: string[] = [];
  for (const rdn of rdns) {
    const eq = firstUnescaped(rdn, '=');
    if (eq <= 0) return undefined;
    const type = rdn.slice(0, eq).trim().toLowerCase();
    const value = unescapeValue(rdn.slice(eq + 1));
    if (type === '' || value === undefined || value === '') return undefined;
    out.push(`${type}=${value.normalize('NFC').toLowerCase().replace(/[\\,]/g, (c) => `\\${c}`)}`);
  }
  return out.join(',');
}

function firstUnescaped(text: string, char: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === char) return i;
  }
  return -1;
}

/** RFC 4514 §3 value: `\` + special character or two hex digits (UTF-8 octets); unescaped outer blanks dropped. */
function unescapeValue(raw: string): string | undefined {
  const bytes: number[] = [];
  let end = 0; // octets up to the last one that must stay (escaped, or not a blank)
  let i = 0;
  while (i < raw.length && raw[i] === ' ') i++;
  for (; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\') {
      const pair = raw.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
      } else {
        const cp = raw.codePointAt(i + 1);
        if (cp === undefined) return undefined;
        const next = String.fromCodePoint(cp);
        bytes.push(...Buffer.from(next, 'utf8'));
        i += next.length;
      }
      end = bytes.length;
    } else {
      // Whole code points: a surrogate pair is one character.
      const ch = String.fromCodePoint(raw.codePointAt(i) ?? 0xfffd);
      i += ch.length - 1;
      bytes.push(...Buffer.from(ch, 'utf8'));
      if (ch !== ' ') end = bytes.length;
    }
  }
  return Buffer.from(bytes.slice(0, end)).toString('utf8');
}
