// The connection's pure parts (static/connection.js) and the mirrored rate limit (static/ratelimit.js).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BACKOFF_CAP, backoffDelay, parseEvents, wsUrl } from '../../static/connection.js';
import { createBucket } from '../../static/ratelimit.js';
import { after, named, reduce } from './helpers.mjs';

test('the backoff doubles from half a second to a cap of ten, with jitter in the upper half', () => {
  const low = (attempt) => backoffDelay(attempt, () => 0);
  const high = (attempt) => backoffDelay(attempt, () => 1);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(low), [0.25, 0.5, 1, 2, 4, 5, 5]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map(high), [0.5, 1, 2, 4, 8, 10, 10]);
  assert.equal(high(50), BACKOFF_CAP);
  assert.equal(backoffDelay(3, () => 0.5), 3);
});

test('each close retries with the next attempt; a join resets the count', () => {
  let s = after([]);
  const attempts = [];
  for (let i = 0; i < 3; i += 1) {
    const out = reduce(s, { type: '@close' });
    attempts.push(named(out.effects, 'reconnect')[0][1]);
    assert.equal(out.state.conn, 'disconnected');
    s = out.state;
  }
  assert.deepEqual(attempts, [0, 1, 2]);
  s = reduce(reduce(s, { type: '@open' }).state, { type: 'ui:join', id: 'a' }).state;
  s = reduce(s, { type: 'joined', id: 'a' }).state;
  assert.equal(s.attempt, 0);
  // an unreachable server stays said through the retry
  s = reduce(s, { type: 'status', state: 'disconnected', reason: 'backend-unavailable' }).state;
  assert.equal(reduce(s, { type: '@close' }).state.conn, 'unavailable');
});

test('a close fails every message awaiting its ack and empties the room', () => {
  let s = after([{ type: '@open' }, { type: 'ui:join', id: 'a' }, { type: 'joined', id: 'a' }, { type: 'users', ids: ['a', 'b'] }]);
  s = reduce(s, { type: 'ui:send', cmd: { type: 'say', text: 'x' }, line: 'x' }).state;
  const { state, effects } = reduce(s, { type: '@close' });
  assert.deepEqual(named(effects, 'failed'), [['failed', 'ack-1', { reason: 'backend-unavailable' }]]);
  assert.deepEqual(state.users, []);
  assert.equal(state.myId, null);
  assert.equal(state.open, false);
});

test('one JSON event a line; anything else is skipped', () => {
  assert.deepEqual(parseEvents('{"type":"a"}\n\n{"type":"b"}\nnot json\n[1]\n"s"\nnull\n'), [{ type: 'a' }, { type: 'b' }]);
});

test('the socket is beside the page, wss under https', () => {
  assert.equal(wsUrl('http://h:8080/chat/?lang=ko#x'), 'ws://h:8080/chat/ws');
  assert.equal(wsUrl('https://h/'), 'wss://h/ws');
});

test('the rate limit: a burst, then the rate', () => {
  let now = 0;
  const bucket = createBucket(2, 3, () => now);
  assert.ok(bucket.take(1) && bucket.take(1) && bucket.take(1));
  assert.ok(!bucket.take(1));
  now = 500; // one more token at 2 a second
  assert.ok(bucket.take(1));
  assert.ok(!bucket.take(1));
  assert.ok(createBucket(0, 1, () => now).take(100)); // no rate: no limit
});
