import t from 'tap';
import { StoreError } from '../src/errors.js';
import { createLogger } from '../src/log.js';

function capture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  const raw: string[] = [];
  const log = createLogger({ level: 'debug' }, { write: (s: string) => void raw.push(s) });
  return { log, text: () => raw.join('') };
}

void t.test("a logged error keeps its code, as errorCode (the redaction of '*.code' would hide it)", async (t) => {
  const { log, text } = capture();
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:636'), { code: 'ECONNREFUSED' });
  log.error({ err: refused }, 'directory down');
  log.error({ err: new StoreError('appendAudit: database or disk is full') }, 'audit group commit failed');
  log.error(new StoreError('as the first argument'));
  const lines = text()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { err: Record<string, unknown> });
  t.match(lines[0]?.err, { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:636', errorCode: 'ECONNREFUSED' });
  t.match(lines[1]?.err, { type: 'StoreError', message: 'appendAudit: database or disk is full', errorCode: 'GW_ERR_STORE' });
  t.match(lines[2]?.err, { type: 'StoreError', errorCode: 'GW_ERR_STORE' });
  for (const l of lines) t.notOk('code' in l.err, 'no code field left to redact');
  t.notMatch(text(), '[redacted]');
});

void t.test('one-time codes, passwords and keys are still redacted, at the top level and one below', async (t) => {
  const { log, text } = capture();
  log.info({ code: '314159', attempt: { code: '271828', password: 'Hunter-22', key: 'a2V5LWJ5dGVz' }, err: 'not an Error' }, 'careless');
  const out = text();
  for (const secret of ['314159', '271828', 'Hunter-22', 'a2V5LWJ5dGVz']) t.notMatch(out, secret, `${secret} not printed`);
  t.match(JSON.parse(out), { code: '[redacted]', attempt: { code: '[redacted]', password: '[redacted]', key: '[redacted]' }, err: 'not an Error' });
});

void t.test('an error without a code is written as pino writes it', async (t) => {
  const { log, text } = capture();
  log.warn({ err: new TypeError('bad input') }, 'plain');
  const line = JSON.parse(text()) as { err: Record<string, unknown> };
  t.match(line.err, { type: 'TypeError', message: 'bad input' });
  t.notOk('errorCode' in line.err);
});
