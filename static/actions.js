// hanchat's page: what the page's own events mean to the tab's state: the socket opening and closing, a
// form or a command sent, a timer's retry, a reload's kept log. PURE like protocol.js (same state, same
// effects); the forms check their input first (commands.js, the rate limit) and send only what may go.
import { reduce as reduceServer } from './protocol.js';
import { KEYS, ROOM, sendJoin, sendOlder, setConn, setUsers } from './state.js';

const fold = (text) => text.replace(/\r\n|\r|\n/g, ' '); // as the gateway folds it

const ACTIONS = {
  '@open'(s, ev, fx) {
    s.open = true;
    fx.push(['bucket_reset']);
    setConn(s, fx, 'connected');
    if (s.pendingLogin) { sendLogin(s, fx, s.pendingLogin); s.pendingLogin = null; } else if (s.wantId) {
      sendJoin(s, fx, s.wantId, s.wantIdConfirmed);
    } else s.attempt = 0;
  },
  '@close'(s, ev, fx) {
    s.open = false;
    s.myId = null;
    const why = { reason: 'backend-unavailable' };
    for (const p of s.pending) if (!p.failed) fx.push(['failed', p.token, why]);
    s.pending = [];
    setUsers(s, fx, []);
    // Capped exponential backoff with jitter (connection.js): a restarted server is not stormed by every page.
    fx.push(['reconnect', s.attempt]);
    s.attempt += 1;
    setConn(s, fx, s.conn === 'unavailable' ? 'unavailable' : 'disconnected');
  },
  '@retry_join'(s, ev, fx) { if (!s.myId && s.wantId) sendJoin(s, fx, s.wantId, true); },
  // A resume replays only what was missed, so a reload shows again the log this tab kept (app.js).
  '@restore'(s, ev, fx) {
    if (!s.wantId || !s.token) return;
    s.position = ev.position !== null && /^\d{1,15}$/.test(ev.position) ? Number(ev.position) : null;
    if (!Array.isArray(ev.msgs)) return;
    for (const m of ev.msgs) {
      if (!m || typeof m.from !== 'string' || typeof m.text !== 'string') continue;
      if (m.kind !== 'all' && m.kind !== 'whisper') continue;
      if (!m.own && typeof m.ts === 'number' && Number.isFinite(m.ts)) s.lastServerTs = Math.max(s.lastServerTs, m.ts);
      fx.push(['message', m]);
    }
  },
  'ui:join'(s, ev, fx) {
    forgetToken(s, fx, ev.id);
    if (!sendJoin(s, fx, ev.id, false)) fx.push(['connect']); // joins once connected
  },
  'ui:login'(s, ev, fx) {
    forgetToken(s, fx, ev.id);
    if (!sendLogin(s, fx, { id: ev.id, password: ev.password })) {
      s.pendingLogin = { id: ev.id, password: ev.password }; // sent at `@open`, then dropped
      fx.push(['connect']);
    }
  },
  'ui:password'(s, ev, fx) { // register (keep this ID) or passwd; a refusal goes under the account form
    if (!s.open) { fx.push(['account_error', { key: 'not_connected' }]); return; }
    fx.push(['send', { type: ev.kind, password: ev.password }]);
    s.accountPending = true;
  },
  'ui:send'(s, ev, fx) { // a say, a whisper (each followed by the ping whose pong acks it), /who, /q
    const cmd = ev.cmd;
    if (cmd.type === 'leave') { if (s.open) fx.push(['send', { type: 'leave' }]); return; }
    if (!s.open || !s.myId) { fx.push(['toast', { key: 'not_connected' }, 'error', 'link']); return; }
    if (cmd.type === 'who') { fx.push(['send', { type: 'who' }], ['clear_input']); s.whoAsked = true; return; }
    const msg = cmd.type === 'say' ? { type: 'say', text: cmd.text } : { type: 'whisper', to: cmd.to, text: cmd.text };
    s.ackSeq += 1;
    const token = `ack-${s.ackSeq}`;
    fx.push(['send', msg], ['send', { type: 'ping', token }], ['clear_input'], ['own', {
      kind: cmd.type === 'say' ? 'all' : 'whisper', from: s.myId, text: fold(cmd.text), own: true, to: cmd.to,
      state: 'pending',
    }, token, ev.line]);
    s.pending = [...s.pending, { token, failed: false }];
  },
  'ui:older'(s, ev, fx) { // the top of the log reached, or its button, or /more
    if (!s.cursor || s.older !== null || !s.myId || ev.full) return;
    if (sendOlder(s, fx, s.cursor)) fx.push(['render', 'more']);
  },
  'ui:search'(s, ev, fx) {
    if (s.found !== null || !s.myId || !s.open) return;
    fx.push(['send', { type: 'search', room: ROOM, text: ev.query }]);
    s.found = [];
    s.searched = ev.query;
  },
};

function forgetToken(s, fx, id) { // a join or a login typed by the user: a new session, not a resume
  s.wantId = id;
  s.wantIdConfirmed = false;
  s.token = null;
  fx.push(['save', KEYS.session, null]);
}

function sendLogin(s, fx, login) {
  s.loggingIn = true;
  s.autoJoin = false;
  if (!s.open) return false;
  fx.push(['send', { type: 'login', id: login.id, password: login.password }]);
  return true;
}

export const LOCAL_EVENTS = Object.keys(ACTIONS);

/** Every event, the server's (protocol.js) and the page's own (types starting with @ or ui:). */
export function reduce(state, event) {
  if (!Object.hasOwn(ACTIONS, event.type)) return reduceServer(state, event);
  const s = { ...state };
  const fx = [];
  ACTIONS[event.type](s, event, fx);
  return { state: s, effects: fx };
}
