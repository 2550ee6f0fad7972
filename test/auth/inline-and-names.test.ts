import t from 'tap';
import { splitInlineFactor } from '../../src/auth/inline-factor.js';
import { nameCandidates } from '../../src/auth/names.js';

t.test('inline factor split', async (t) => {
  const cases: Array<[string, string, ReturnType<typeof splitInlineFactor>]> = [
    ['secret,123456', ',', { password: 'secret', code: '123456' }],
    ['secret,12345678', ',', { password: 'secret', code: '12345678' }],
    ['se,cret,123456', ',', { password: 'se,cret', code: '123456' }],
    ['secret,push', ',', { password: 'secret', keyword: 'push' }],
    ['secret,PUSH', ',', { password: 'secret', keyword: 'push' }],
    ['secret,12345', ',', { password: 'secret,12345' }],
    ['secret,123456789', ',', { password: 'secret,123456789' }],
    ['secret,pushy', ',', { password: 'secret,pushy' }],
    ['secret', ',', { password: 'secret' }],
    ['', ',', { password: '' }],
    ['secret|123456', '|', { password: 'secret', code: '123456' }],
    ['secret,123456', '|', { password: 'secret,123456' }],
    ['secret::654321', '::', { password: 'secret', code: '654321' }],
    [',123456', ',', { password: '', code: '123456' }],
  ];
  for (const [input, delimiter, expected] of cases) t.same(splitInlineFactor(input, delimiter), expected, `${input} with ${delimiter}`);
});

t.test('name forms', async (t) => {
  t.same(nameCandidates('alice'), ['alice']);
  t.same(nameCandidates('  Alice '), ['Alice']);
  t.same(nameCandidates('EXAMPLE\\alice'), ['EXAMPLE\\alice', 'alice']);
  t.same(nameCandidates('alice@example.test'), ['alice@example.test', 'alice']);
  t.same(nameCandidates('@example.test'), ['@example.test']);
  t.same(nameCandidates('a\\b\\c'), ['a\\b\\c']);
  t.same(nameCandidates(''), []);
});
