/**
 * Checks of the gateway's JSON log lines that JSON.parse cannot make: a key twice in one object
 * (pino writes a child logger's bindings after its parent's, so binding `module` at two levels
 * prints it twice). JSON.parse keeps the last value silently, but strict consumers refuse such a
 * line (Elasticsearch rejects a document with a duplicate field), and a log shipper then drops it.
 */

/** The keys that occur more than once in one object of `json`, at any depth (as written, escapes included). */
export function duplicateKeys(json: string): string[] {
  const found: string[] = [];
  /** One entry per open object or array; objects keep their keys and whether a key comes next. */
  const open: Array<{ keys: Set<string>; expectKey: boolean } | null> = [];
  let i = 0;
  while (i < json.length) {
    const c = json[i];
    if (c === '"') {
      let end = i + 1;
      while (end < json.length && json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      const top = open.at(-1);
      if (top?.expectKey) {
        const key = json.slice(i + 1, end);
        if (top.keys.has(key)) found.push(key);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === '{') open.push({ keys: new Set(), expectKey: true });
    else if (c === '[') open.push(null);
    else if (c === '}' || c === ']') open.pop();
    else if (c === ',') {
      const top = open.at(-1);
      if (top) top.expectKey = true;
    }
    i++;
  }
  return found;
}

/** The lines of `output` that are JSON objects with a duplicate key, each with the keys named. */
export function linesWithDuplicateKeys(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      const keys = duplicateKeys(line);
      return keys.length === 0 ? [] : [`${keys.join(', ')} twice in: ${line}`];
    });
}
