import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { DuplicateCache } from '../../src/radius/duplicates.js';

t.test('pending copies join, done replies are re-sent, then forgotten after the window', async (t) => {
  const cache = new DuplicateCache(200);
  const key = DuplicateCache.key('127.0.0.1', 5000, 7, Buffer.alloc(16, 1));
  t.equal(cache.begin(key), undefined, 'first copy is new');
  t.same(cache.begin(key), { kind: 'pending' });
  t.same(cache.begin(key), { kind: 'pending' });
  t.equal(cache.finish(key, Buffer.from('reply')), 3, 'three copies to answer');
  t.same(cache.begin(key), { kind: 'done', reply: Buffer.from('reply') });
  await sleep(300);
  t.equal(cache.begin(key), undefined, 'after the window the same bytes are a new request');
});

t.test('a pending request does not expire while it waits (a push may outlast the window)', async (t) => {
  const cache = new DuplicateCache(50);
  const key = DuplicateCache.key('127.0.0.1', 5000, 8, Buffer.alloc(16, 2));
  cache.begin(key);
  await sleep(120);
  t.same(cache.begin(key), { kind: 'pending' });
  cache.forget(key);
  t.equal(cache.begin(key), undefined, 'forgotten after a fault: processed afresh');
});

t.test('the key separates address, port, identifier and authenticator', async (t) => {
  const auth = Buffer.alloc(16, 3);
  const keys = new Set([
    DuplicateCache.key('127.0.0.1', 1, 1, auth),
    DuplicateCache.key('127.0.0.2', 1, 1, auth),
    DuplicateCache.key('127.0.0.1', 2, 1, auth),
    DuplicateCache.key('127.0.0.1', 1, 2, auth),
    DuplicateCache.key('127.0.0.1', 1, 1, Buffer.alloc(16, 4)),
  ]);
  t.equal(keys.size, 5);
});
