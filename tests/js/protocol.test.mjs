// The page's protocol reducer (static/protocol.js, refusals.js): each server event type, the resume
// position's counting, resume and replay, refusals. Pure: no DOM, no socket.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { GATEWAY_EVENTS, HANDLED, initialState } from '../../static/protocol.js';
import { after, COUNTED, joined, named, reduce, sent } from './helpers.mjs';

describe('joining', () => {
  test('a guest join sends join, and joined starts a session counted from zero', () => {
    let s = after([{ type: '@open' }]);
    const asked = reduce(s, { type: 'ui:join', id: 'alice' });
    assert.deepEqual(sent(asked.effects), [{ type: 'join', id: 'alice' }]);
    const { state, effects } = reduce(asked.state, { type: 'joined', id: 'alice' });
    assert.equal(state.myId, 'alice');
    assert.equal(state.position, 0);
    assert.equal(state.joinedBy, 'guest');
    assert.deepEqual(named(effects, 'notice'), [['notice', { key: 'joined' }]]);
    assert.ok(named(effects, 'chat').length === 1);
    assert.deepEqual(named(effects, 'save').find((fx) => fx[1] === 'hanchat.id'), ['save', 'hanchat.id', 'alice']);
  });

  test('a join typed before the socket opens asks to connect, and goes at open', () => {
    const { state, effects } = reduce(initialState({}, COUNTED), { type: 'ui:join', id: 'bob' });
    assert.deepEqual(named(effects, 'connect'), [['connect']]);
    assert.deepEqual(sent(effects), []);
    assert.deepEqual(sent(reduce(state, { type: '@open' }).effects), [{ type: 'join', id: 'bob' }]);
  });

  test('an automatic rejoin says so in the status area, not in the log', () => {
    const s = after([{ type: '@open' }], { id: 'alice' });
    const { state, effects } = reduce(s, { type: 'joined', id: 'alice' });
    assert.equal(state.reconnectedAs, 'alice');
    assert.deepEqual(named(effects, 'notice'), []);
  });

  test('id_taken on an automatic rejoin retries later, at most five times, then gives up', () => {
    let s = after([{ type: '@open' }], { id: 'alice' });
    for (let i = 0; i < 5; i += 1) {
      const out = reduce(s, { type: 'id_taken' });
      assert.deepEqual(named(out.effects, 'later'), [['later', 1000, { type: '@retry_join' }]]);
      s = out.state;
      assert.deepEqual(sent(reduce(s, { type: '@retry_join' }).effects), [{ type: 'join', id: 'alice' }]);
    }
    const { state, effects } = reduce(s, { type: 'id_taken' });
    assert.equal(state.wantId, null);
    assert.deepEqual(named(effects, 'join'), [['join', { key: 'id_taken' }]]);
  });

  test('left forgets the ID and everything kept for it, and counts the room without us', () => {
    const s = joined('alice', [{ type: 'users', ids: ['alice', 'bob', 'carol'] }]);
    const { state, effects } = reduce(s, { type: 'left' });
    assert.equal(state.myId, null);
    assert.equal(state.wantId, null);
    assert.equal(state.online, 2);
    assert.deepEqual(state.users, []);
    const cleared = named(effects, 'save').filter((fx) => fx[2] === null).map((fx) => fx[1]).sort();
    assert.deepEqual(cleared, ['hanchat.id', 'hanchat.joinedBy', 'hanchat.log', 'hanchat.paged', 'hanchat.position',
      'hanchat.session']);
  });
});

describe('the resume position', () => {
  test('counts exactly the counted events, only while joined', () => {
    let s = after([{ type: '@open' }, { type: 'message', from: 'x', text: 'before the join' }]);
    assert.equal(s.position, 0);
    s = reduce(s, { type: 'ui:join', id: 'alice' }).state;
    s = reduce(s, { type: 'joined', id: 'alice' }).state;
    const events = [
      { type: 'message', from: 'bob', text: 'hi', ts: 1 }, { type: 'whisper', from: 'bob', text: 'psst', ts: 2 },
      { type: 'user_joined', id: 'carol' }, { type: 'user_left', id: 'carol' }, { type: 'notice', text: 'ops' },
      { type: 'history', from: 'bob', text: 'old', ts: 0 }, { type: 'pong', token: 'x' }, { type: 'users', ids: [] },
      { type: 'session', token: 't' }, { type: 'no-such-type' },
    ];
    for (const ev of events) s = reduce(s, ev).state;
    assert.equal(s.position, 5);
  });

  test('a session token is kept for the resume, which names the position', () => {
    let s = joined('alice', [{ type: 'session', token: 'tok' }, { type: 'message', from: 'bob', text: 'a' }]);
    assert.equal(s.token, 'tok');
    s = reduce(s, { type: '@close' }).state;
    assert.equal(s.myId, null);
    const { state, effects } = reduce(s, { type: '@open' });
    assert.deepEqual(sent(effects), [{ type: 'resume', token: 'tok', position: 1 }]);
    assert.equal(state.resuming, true);
    // the resume's joined keeps counting where it was
    assert.equal(reduce(state, { type: 'joined', id: 'alice' }).state.position, 1);
  });

  test('a reload resumes with the kept position; an unreadable one resumes without any', () => {
    const saved = { id: 'alice', token: 'tok' };
    const s = after([{ type: '@restore', msgs: [], position: '7' }, { type: '@open' }], saved);
    assert.deepEqual(sent(reduce(after([{ type: '@restore', msgs: [], position: '7' }], saved), { type: '@open' }).effects),
      [{ type: 'resume', token: 'tok', position: 7 }]);
    assert.equal(s.position, 7);
    const unknown = after([{ type: '@restore', msgs: [], position: 'x' }], saved);
    assert.deepEqual(sent(reduce(unknown, { type: '@open' }).effects), [{ type: 'resume', token: 'tok' }]);
  });

  test('resumed shows the chat again, says reconnected, and pages from the newest when the server pages', () => {
    const s = after([{ type: '@open' }], { id: 'alice', token: 'tok', paged: true });
    const { state, effects } = reduce(s, { type: 'resumed', missed: 0 });
    assert.equal(state.myId, 'alice');
    assert.equal(state.reconnectedAs, 'alice');
    assert.deepEqual(named(effects, 'chat'), [['chat']]);
    assert.deepEqual(sent(effects), [{ type: 'older', room: 'lobby', cursor: '', limit: 50 }]);
    const unpaged = reduce(after([{ type: '@open' }], { id: 'alice', token: 'tok' }), { type: 'resumed', missed: 0 });
    assert.deepEqual(sent(unpaged.effects), []);
  });

  test('bad-token and gap drop the token and join afresh, saying messages may be missing', () => {
    for (const reason of ['bad-token', 'gap']) {
      const s = after([{ type: '@open' }], { id: 'alice', token: 'tok' });
      const { state, effects } = reduce(s, { type: 'error', reason, text: '' });
      assert.equal(state.token, null);
      assert.deepEqual(named(effects, 'notice'), [['notice', { key: 'resume_gap' }]]);
      assert.deepEqual(sent(effects), [{ type: 'join', id: 'alice' }]);
    }
  });
});

describe('the room', () => {
  test('users, user_joined, user_left, accounts', () => {
    let s = joined('alice');
    s = reduce(s, { type: 'users', ids: ['alice', 'bob'] }).state;
    assert.deepEqual(s.users, ['alice', 'bob']);
    assert.equal(s.online, 2);
    let out = reduce(s, { type: 'user_joined', id: 'carol', account: true });
    assert.deepEqual(out.state.users, ['alice', 'bob', 'carol']);
    assert.deepEqual(out.state.accounts, ['carol']);
    assert.deepEqual(named(out.effects, 'notice'), [['notice', { key: 'user_joined', fields: { id: 'carol' } }]]);
    out = reduce(out.state, { type: 'user_left', id: 'carol' });
    assert.deepEqual(out.state.users, ['alice', 'bob']);
    assert.deepEqual(out.state.accounts, []);
    out = reduce(out.state, { type: 'accounts', ids: ['bob', 7] });
    assert.deepEqual(out.state.accounts, ['bob']);
    assert.equal(reduce(s, { type: 'users', ids: 'nope' }).effects.length, 0);
  });

  test('/who lists the users once, in the log', () => {
    let s = joined('alice');
    s = reduce(s, { type: 'ui:send', cmd: { type: 'who' }, line: '/who' }).state;
    const { state, effects } = reduce(s, { type: 'users', ids: ['alice'] });
    assert.deepEqual(named(effects, 'who'), [['who', ['alice']]]);
    assert.deepEqual(named(reduce(state, { type: 'users', ids: ['alice'] }).effects, 'who'), []);
  });

  test('status: limits, the online count, the link state', () => {
    const s = initialState({}, COUNTED);
    let out = reduce(s, { type: 'status', state: 'connected', rate: 2, burst: 5, max_message: 100, online: 3 });
    assert.deepEqual(named(out.effects, 'limits'), [['limits', { rate: 2, burst: 5, max_message: 100 }]]);
    assert.equal(out.state.online, 3);
    assert.equal(reduce(s, { type: 'status', state: 'disconnected', reason: 'backend-unavailable' }).state.conn, 'unavailable');
    assert.equal(reduce(s, { type: 'status', state: 'disconnected' }).state.conn, 'disconnected');
    assert.equal(reduce(s, { type: 'status', state: 'shutdown' }).state.conn, 'shutdown');
  });

  test('accounts: registered and password_changed', () => {
    const s = joined('alice');
    let out = reduce(s, { type: 'registered', id: 'alice' });
    assert.equal(out.state.joinedBy, 'login');
    assert.deepEqual(out.state.accounts, ['alice']);
    assert.deepEqual(named(out.effects, 'notice'), [['notice', { key: 'registered_notice', fields: { id: 'alice' } }]]);
    out = reduce(s, { type: 'password_changed' });
    assert.deepEqual(named(out.effects, 'notice'), [['notice', { key: 'password_changed' }]]);
  });
});

describe('messages', () => {
  test('message and whisper are shown; a whisper always notifies, a message when it mentions you', () => {
    const s = joined('alice');
    const m = reduce(s, { type: 'message', from: 'bob', text: 'hi', ts: 10, account: true });
    assert.deepEqual(m.effects, [['message', { kind: 'all', from: 'bob', text: 'hi', ts: 10, account: true }, 'mention']]);
    assert.equal(m.state.lastServerTs, 10);
    const w = reduce(s, { type: 'whisper', from: 'bob', text: 'psst', ts: 11 });
    assert.deepEqual(w.effects, [['message', { kind: 'whisper', from: 'bob', text: 'psst', ts: 11 }, 'always']]);
    assert.deepEqual(reduce(s, { type: 'message', from: 'bob' }).effects, []);
    assert.deepEqual(reduce(s, { type: 'notice', text: 'maintenance' }).effects,
      [['notice', { key: 'server_notice', fields: { text: 'maintenance' } }]]);
  });

  test('a rejoin shows only the history after what it showed', () => {
    let s = joined('alice', [{ type: 'message', from: 'bob', text: 'seen', ts: 100 }]);
    s = reduce(s, { type: '@close' }).state;
    s = reduce(s, { type: '@open' }).state;
    s = reduce(s, { type: 'joined', id: 'alice' }).state;
    assert.equal(s.historyCutoff, 100);
    const shown = (ev) => named(reduce(s, { type: 'history', ...ev }).effects, 'message').length;
    assert.equal(shown({ from: 'bob', text: 'older', ts: 50 }), 0);
    assert.equal(shown({ from: 'bob', text: 'seen', ts: 100, seen: { same: true, own: false } }), 0);
    assert.equal(shown({ from: 'carol', text: 'same ms', ts: 100, seen: { same: false, own: false } }), 1);
    assert.equal(shown({ from: 'bob', text: 'newer', ts: 150 }), 1);
    assert.equal(shown({ from: 'alice', text: 'mine', ts: 150, seen: { same: false, own: true } }), 0);
    const [[, msg]] = named(reduce(s, { type: 'history', from: 'bob', text: 'n', ts: 200 }).effects, 'message');
    assert.equal(msg.history, true);
  });

  test('a pong acks its message and every one before it; no_such_user and errors fail the oldest pending', () => {
    let s = joined('alice');
    for (const text of ['one', 'two', 'three']) {
      s = reduce(s, { type: 'ui:send', cmd: { type: 'say', text }, line: text }).state;
    }
    assert.deepEqual(s.pending.map((p) => p.token), ['ack-1', 'ack-2', 'ack-3']);
    let out = reduce(s, { type: 'no_such_user', to: 'nobody' });
    assert.deepEqual(named(out.effects, 'failed'), [['failed', 'ack-1', { key: 'no_such_user' }]]);
    assert.deepEqual(named(out.effects, 'toast'), [['toast', { key: 'not_sent', fields: { reason: { key: 'no_such_user' } } }]]);
    out = reduce(out.state, { type: 'pong', token: 'ack-2' });
    assert.deepEqual(named(out.effects, 'sent'), [['sent', ['ack-2']]]);
    out = reduce(out.state, { type: 'error', reason: 'malformed', text: '' });
    assert.deepEqual(named(out.effects, 'failed'), [['failed', 'ack-3', { reason: 'malformed' }]]);
    out = reduce(out.state, { type: 'pong', token: 'ack-3' });
    assert.deepEqual(out.state.pending, []);
    out = reduce(out.state, { type: 'no_such_user', to: 'x' });
    assert.deepEqual(out.effects, [['toast', { key: 'no_such_user' }]]);
  });
});

test('an event with no handler but a sentence is said in the log with its fields (e.g. 126, 127)', () => {
  const s = joined('alice');
  assert.deepEqual(reduce(s, { type: 'room_listed', room: 'lobby', count: 3, topic: '' }).effects,
    [['notice', { key: 'room_listed', fields: { room: 'lobby', count: 3, topic: '' } }]]);
  assert.deepEqual(reduce(s, { type: 'rooms_listed', total: 1 }).effects,
    [['notice', { key: 'rooms_listed', fields: { total: 1 } }]]);
  assert.deepEqual(reduce(s, { type: 'room_listed', room: 'x', odd: { no: 1 } }).effects,
    [['notice', { key: 'room_listed', fields: { room: 'x' } }]]); // only text and numbers
  assert.deepEqual(reduce(initialState({}, []), { type: 'room_listed', room: 'x' }).effects, []); // no sentence: ignored
});

describe('scrollback and search', () => {
  const paged = () => joined('alice', [{ type: 'page', room: 'lobby', count: 0, cursor: 'c1' }]);

  test('a page gives the cursor; asking sends older; the page shows what is not on screen', () => {
    let s = paged();
    assert.equal(s.cursor, 'c1');
    assert.equal(s.paged, true);
    let out = reduce(s, { type: 'ui:older', full: false });
    assert.deepEqual(sent(out.effects), [{ type: 'older', room: 'lobby', cursor: 'c1', limit: 50 }]);
    s = out.state;
    assert.deepEqual(sent(reduce(s, { type: 'ui:older', full: false }).effects), []); // one at a time
    s = reduce(s, { type: 'older', room: 'lobby', from: 'bob', text: 'a', ts: 1, seen: { same: true } }).state;
    s = reduce(s, { type: 'older', room: 'lobby', from: 'bob', text: 'b', ts: 2, seen: { same: false } }).state;
    out = reduce(s, { type: 'page', room: 'lobby', count: 2, cursor: '' });
    assert.deepEqual(named(out.effects, 'older'), [['older', [{ from: 'bob', text: 'b', ts: 2, own: false }], true]]);
    assert.equal(out.state.older, null);
    assert.equal(out.state.cursor, '');
    assert.deepEqual(sent(reduce(out.state, { type: 'ui:older', full: false }).effects), []); // nothing older
  });

  test('a page all on screen asks the one before at once, at most eight times', () => {
    let s = reduce(paged(), { type: 'ui:older', full: false }).state;
    for (let round = 1; round <= 8; round += 1) {
      s = reduce(s, { type: 'older', from: 'bob', text: 'x', ts: 1, seen: { same: true } }).state;
      const out = reduce(s, { type: 'page', cursor: `c${round + 1}` });
      assert.deepEqual(sent(out.effects), [{ type: 'older', room: 'lobby', cursor: `c${round + 1}`, limit: 50 }]);
      s = out.state;
    }
    s = reduce(s, { type: 'older', from: 'bob', text: 'x', ts: 1, seen: { same: true } }).state;
    const out = reduce(s, { type: 'page', cursor: 'c10' });
    assert.deepEqual(sent(out.effects), []);
    assert.deepEqual(named(out.effects, 'older'), [['older', [], false]]);
  });

  test('a search collects found until searched', () => {
    let s = reduce(paged(), { type: 'ui:search', query: 'hi' });
    assert.deepEqual(sent(s.effects), [{ type: 'search', room: 'lobby', text: 'hi' }]);
    s = reduce(s.state, { type: 'found', room: 'lobby', from: 'bob', text: 'hi there', ts: 5 });
    const out = reduce(s.state, { type: 'searched', room: 'lobby', count: 1 });
    assert.deepEqual(named(out.effects, 'results'), [['results', [{ from: 'bob', text: 'hi there', ts: 5 }], 'hi']]);
    assert.equal(out.state.found, null);
    assert.deepEqual(reduce(out.state, { type: 'found', from: 'x', text: 'y' }).state.found, null); // unasked
  });

  test('a refused page or search ends it; bad-cursor ends the paging', () => {
    const s = reduce(paged(), { type: 'ui:older', full: false }).state;
    const out = reduce(s, { type: 'error', reason: 'bad-cursor', text: '' });
    assert.equal(out.state.older, null);
    assert.equal(out.state.cursor, '');
  });
});

describe('refusals', () => {
  test('a refused login is said by the login form, with the password rule', () => {
    let s = after([{ type: '@open' }, { type: 'ui:login', id: 'alice', password: 'pw' }]);
    let out = reduce(s, { type: 'error', reason: 'bad-login', text: '' });
    assert.deepEqual(named(out.effects, 'login_error'), [['login_error', { password: { reason: 'bad-login', text: '' } }]]);
    s = after([{ type: '@open' }, { type: 'ui:login', id: 'a#b', password: 'pw' }]);
    out = reduce(s, { type: 'error', reason: 'bad-id', rule: 'hash', text: '' });
    assert.deepEqual(named(out.effects, 'login_error'), [['login_error', { idRule: { rule: 'hash', char: undefined } }]]);
  });

  test('a guest join of a registered ID goes to the login form; a lost session asks to log in again', () => {
    const typed = reduce(after([{ type: '@open' }, { type: 'ui:join', id: 'alice' }]), { type: 'error', reason: 'registered' });
    assert.deepEqual(named(typed.effects, 'login_error'), [['login_error', { password: { reason: 'registered', text: '' } }]]);
    assert.deepEqual(named(typed.effects, 'login_id'), [['login_id', 'alice']]);
    const lost = reduce(after([{ type: '@open' }], { id: 'alice' }), { type: 'error', reason: 'registered' });
    assert.deepEqual(named(lost.effects, 'login_error'), [['login_error', { key: 'relogin' }]]);
  });

  test('kicked and banned end the session with the operator\'s words; no automatic rejoin', () => {
    const { state, effects } = reduce(joined('alice'), { type: 'error', reason: 'kicked', text: 'spam' });
    assert.equal(state.myId, null);
    assert.equal(state.wantId, null);
    assert.deepEqual(named(effects, 'join'), [['join', { reason: 'kicked', detail: 'spam' }]]);
  });

  test('a refused join says why on the welcome screen; a link error goes with the link', () => {
    const s = after([{ type: '@open' }, { type: 'ui:join', id: 'alice' }]);
    assert.deepEqual(named(reduce(s, { type: 'error', reason: 'busy' }).effects, 'join'), [['join', { reason: 'busy' }]]);
    const out = reduce(joined('alice'), { type: 'error', reason: 'replaced' });
    assert.deepEqual(named(out.effects, 'toast'), [['toast', { reason: 'replaced' }, 'error', 'link']]);
    assert.equal(reduce(joined('alice'), { type: 'error', reason: 'backend-unavailable' }).state.conn, 'unavailable');
  });

  test('an account form\'s refusal goes under the form', () => {
    let s = joined('alice');
    s = reduce(s, { type: 'ui:password', kind: 'register', password: 'pw' }).state;
    const out = reduce(s, { type: 'error', reason: 'weak-password', text: 'length:8' });
    assert.deepEqual(named(out.effects, 'account_error'),
      [['account_error', { password: { reason: 'weak-password', text: 'length:8' } }]]);
  });
});

test('the reducer is pure: the state given is never changed', () => {
  const s = joined('alice', [{ type: 'users', ids: ['alice'] }]);
  const copy = structuredClone(s);
  for (const type of HANDLED) reduce(s, { type, id: 'bob', ids: ['x'], from: 'b', text: 't', ts: 1, token: 'ack-1', reason: 'kicked' });
  assert.deepEqual(s, copy);
});

test('unknown events are ignored, and the gateway\'s own are handled too', () => {
  assert.deepEqual(reduce(joined('alice'), { type: 'from-the-future' }).effects, []);
  for (const type of GATEWAY_EVENTS) assert.ok(HANDLED.includes(type), type);
});

test('every effect the reducers emit is one effects.js applies', async () => {
  const { createEffects } = await import('../../static/effects.js');
  const applied = new Set(createEffects({ i18n: {}, conn: {}, session: {}, bucket: {}, rules: {} }).EFFECTS);
  const emitted = new Set();
  const run = (state, events) => {
    let s = state;
    for (const ev of events) {
      const out = reduce(s, ev);
      for (const [name] of out.effects) emitted.add(name);
      s = out.state;
    }
    return s;
  };
  const s = run(initialState({ id: 'alice', token: 'tok', paged: true }, COUNTED), [
    { type: '@restore', msgs: [{ kind: 'all', from: 'bob', text: 'kept', ts: 1 }], position: '3' }, { type: '@open' },
    { type: 'status', state: 'connected', rate: 1, burst: 2, online: 1 }, { type: 'resumed' }, { type: 'joined', id: 'alice' },
    { type: 'session', token: 't2' }, { type: 'page', cursor: 'c' }, { type: 'ui:older', full: false },
    { type: 'older', from: 'b', text: 'o', ts: 1 }, { type: 'page', cursor: '' }, { type: 'ui:search', query: 'ab' },
    { type: 'found', from: 'b', text: 'ab', ts: 1 }, { type: 'searched' }, { type: 'history', from: 'b', text: 'h', ts: 9 },
    { type: 'ui:send', cmd: { type: 'who' } }, { type: 'users', ids: ['alice'] }, { type: 'user_joined', id: 'c' },
    { type: 'user_left', id: 'c' }, { type: 'accounts', ids: ['alice'] }, { type: 'registered', id: 'alice' },
    { type: 'password_changed' }, { type: 'message', from: 'b', text: 'm' }, { type: 'whisper', from: 'b', text: 'w' },
    { type: 'ui:send', cmd: { type: 'say', text: 'x' }, line: 'x' }, { type: 'pong', token: 'ack-1' },
    { type: 'ui:send', cmd: { type: 'say', text: 'y' }, line: 'y' }, { type: 'no_such_user' },
    { type: 'ui:password', kind: 'passwd', password: 'p' }, { type: 'error', reason: 'weak-password', text: 'x' },
    { type: 'error', reason: 'replaced' }, { type: 'notice', text: 'n' }, { type: 'ui:send', cmd: { type: 'leave' } },
    { type: 'left' }, { type: 'ui:login', id: 'alice', password: 'p' }, { type: 'error', reason: 'registered' },
    { type: '@close' }, { type: 'ui:join', id: 'alice' }, { type: 'id_taken' },
  ]);
  run(s, [{ type: '@open' }, { type: 'ui:join', id: 'a' }, { type: 'error', reason: 'kicked', text: 'k' }]);
  for (const name of emitted) assert.ok(applied.has(name), `effects.js does not apply the effect ${name}`);
  assert.ok(emitted.size >= 25, [...emitted].join(' '));
});
