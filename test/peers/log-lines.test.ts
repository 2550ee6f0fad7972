import t from 'tap';
import { pino } from 'pino';
import { duplicateKeys, linesWithDuplicateKeys } from './log-lines.js';

t.test('duplicateKeys finds a key written twice in one object, at any depth', async (t) => {
  t.same(duplicateKeys('{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}'), [], 'the same key in different objects is fine');
  t.same(duplicateKeys('{"module":"store","module":"store","msg":"x"}'), ['module']);
  t.same(duplicateKeys('{"a":{"x":1,"y":[1,{"z":2}],"x":3}}'), ['x']);
  t.same(duplicateKeys('{"a":"{\\"b\\":1,\\"b\\":2}","c":"x,\\"c\\""}'), [], 'braces, commas and quotes inside strings are text');
  t.same(duplicateKeys('{"k\\"":1,"k\\"":2}'), ['k\\"'], 'escaped keys compared as written');
  t.same(duplicateKeys('[1,"a",{"a":1}]'), []);
});

t.test('a pino child that binds a key its parent bound prints it twice: what linesWithDuplicateKeys catches', async (t) => {
  const lines: string[] = [];
  const log = pino({ base: null, timestamp: false }, { write: (line: string) => void lines.push(line) });
  log.child({ module: 'directory' }).child({ module: 'directory', directory: 'corp' }).info('nested');
  log.child({ module: 'directory', directory: 'corp' }).info('flat');
  const found = linesWithDuplicateKeys(lines.join(''));
  t.equal(found.length, 1);
  t.match(found[0], /^module twice in: .*"msg":"nested"/);
  t.same(linesWithDuplicateKeys('not json\n{"a":1}\n'), [], 'lines that are not JSON objects are skipped');
});
