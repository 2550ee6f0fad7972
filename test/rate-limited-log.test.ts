import t from 'tap';
import { createLogger } from '../src/log.js';
import { RateLimitedLog } from '../src/rate-limited-log.js';

interface Line {
  level: number;
  msg: string;
  kind?: string;
  suppressed?: number;
  n?: number;
}

function setup(perMinute: number): { limited: RateLimitedLog; lines: Line[]; clock: { ms: number } } {
  const lines: Line[] = [];
  const log = createLogger({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const clock = { ms: 1_000_000 };
  return { limited: new RateLimitedLog(log, perMinute, () => clock.ms), lines, clock };
}

void t.test('at most perMinute lines per key per minute, then one line with the count suppressed', async (t) => {
  const { limited, lines, clock } = setup(3);
  for (let n = 0; n < 10; n++) limited.error('fault|GW_ERR_STORE', { n }, 'access-request not answered');
  t.same(
    lines.map((l) => [l.level, l.n]),
    [
      [50, 0],
      [50, 1],
      [50, 2],
    ],
    'the first three, at error level',
  );

  clock.ms += 59_999;
  limited.error('fault|GW_ERR_STORE', { n: 10 }, 'access-request not answered');
  t.equal(lines.length, 3, 'still the same minute');

  clock.ms += 1;
  limited.error('fault|GW_ERR_STORE', { n: 11 }, 'access-request not answered');
  t.match(lines.slice(3), [
    { level: 50, kind: 'fault|GW_ERR_STORE', suppressed: 8, msg: 'access-request not answered (suppressed lines in the last minute)' },
    { level: 50, n: 11 },
  ]);
});

void t.test('keys are limited apart, and each line keeps its level', async (t) => {
  const { limited, lines } = setup(1);
  limited.warn('unknown_client', { n: 1 }, 'packet dropped');
  limited.warn('unknown_client', { n: 2 }, 'packet dropped');
  limited.warn('malformed', { n: 3 }, 'packet dropped');
  limited.error('fault|GW_ERR_INTERNAL', { n: 4 }, 'access-request not answered');
  t.same(
    lines.map((l) => [l.level, l.n]),
    [
      [40, 1],
      [40, 3],
      [50, 4],
    ],
  );
});

void t.test('the count line names its kind in the clear (the logger redacts any field named key)', async (t) => {
  const { limited, lines, clock } = setup(1);
  limited.warn('bad_message_authenticator', {}, 'packet dropped');
  limited.warn('bad_message_authenticator', {}, 'packet dropped');
  clock.ms += 60_000;
  limited.warn('bad_message_authenticator', {}, 'packet dropped');
  t.match(lines[1], { kind: 'bad_message_authenticator', suppressed: 1 });
  t.notMatch(JSON.stringify(lines), '[redacted]');
});

void t.test('a minute with nothing suppressed leaves no count line', async (t) => {
  const { limited, lines, clock } = setup(2);
  limited.warn('k', { n: 1 }, 'packet dropped');
  clock.ms += 60_000;
  limited.warn('k', { n: 2 }, 'packet dropped');
  t.same(
    lines.map((l) => l.n),
    [1, 2],
  );
});
