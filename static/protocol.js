// hanchat's page: what each server event (PROTOCOL.md, "Browser JSON") means to this tab. A PURE reducer:
// reduce(state, event) returns {state, effects}; it touches no DOM, no socket, no storage, no clock.
// Effects are data ([name, ...args], applied by effects.js); texts are descriptors ({key, fields},
// {reason}, {idRule}, {password}) that i18n.js puts in the reader's language. What the screen already
// shows (a rejoin's history, a page of older messages) comes in the event as `seen` ({same, own}),
// added by app.js. The page's own events (the socket opening, a form sent) are actions.js's.
// tests/test_page_tables.py checks HANDLED against the protocol table's events.

import { handleError } from './refusals.js';
import {
  AUTO_JOIN_TRIES, KEYS, MAX_ROUNDS, failPending, forgetId, isText, isTime, roomChanged, sendJoin, sendOlder, setConn, setJoinedBy,
  setUsers,
} from './state.js';

export { KEYS, initialState } from './state.js';

/** The gateway's own event (not a frame of the server's): its link's state. */
export const GATEWAY_EVENTS = ['status'];

export function reduce(state, event) {
  const s = { ...state };
  const fx = [];
  if (s.counted.includes(event.type) && s.myId && s.position !== null) s.position += 1; // before any return
  const handler = Object.hasOwn(HANDLERS, event.type) ? HANDLERS[event.type] : null;
  if (handler) handler(s, event, fx);
  else if (Object.hasOwn(s.sentences, event.type)) said(s, event, fx);
  return { state: s, effects: fx };
}

// An event with no handler here but a sentence in the protocol table (a new frame, e.g. 126 room_listed):
// a notice in the log, its sentence filled with the event's own fields. A frame the page shows otherwise
// gets a handler below; tests/test_page_tables.py fails naming an event with neither.
function said(s, event, fx) {
  const fields = {};
  for (const [name, value] of Object.entries(event)) {
    if (name !== 'type' && (isText(value) || isTime(value))) fields[name] = value;
  }
  fx.push(['notice', { key: s.sentences[event.type], fields }]);
}

function message(s, msg) {
  if (!msg.own && isTime(msg.ts)) s.lastServerTs = Math.max(s.lastServerTs, msg.ts);
  return msg;
}

// A rejoin's history repeats what this page already shows up to historyCutoff. Several messages may share a
// millisecond, so at the cutoff itself the screen is asked (seen.same); your own lines (shown with this
// browser's time) are looked up by text near the server's time (seen.own).
function shownBefore(s, ev) {
  if (!isTime(ev.ts)) return false;
  const seen = ev.seen || {};
  if (ev.from === s.myId && seen.own) return true;
  if (ev.ts > s.historyCutoff) return false;
  return ev.ts < s.historyCutoff || Boolean(seen.same);
}

function shownOlder(s, m) { return Boolean(m.seen && (m.seen.same || (m.from === s.myId && m.seen.own))); }

// ---------------------------------------------------------------- one handler per event type

const HANDLERS = {
  status(s, ev, fx) {
    if (ev.state === 'connected') {
      const limits = {};
      if (typeof ev.rate === 'number') Object.assign(limits, { rate: ev.rate, burst: ev.burst || 1 });
      if (typeof ev.max_message === 'number') limits.max_message = ev.max_message;
      if (Object.keys(limits).length) fx.push(['limits', limits]);
      if (typeof ev.online === 'number') { s.online = ev.online; fx.push(['render', 'online']); }
    } else if (ev.state === 'disconnected') {
      setConn(s, fx, ev.reason === 'backend-unavailable' ? 'unavailable' : 'disconnected');
    } else if (ev.state === 'shutdown') {
      setConn(s, fx, 'shutdown');
    }
  },
  joined(s, ev, fx) {
    if (!isText(ev.id)) return;
    const again = s.autoJoin;
    Object.assign(s, { myId: ev.id, wantId: ev.id, wantIdConfirmed: true });
    fx.push(['save', KEYS.id, ev.id]);
    if (!s.resuming) setJoinedBy(s, fx, s.loggingIn ? 'login' : 'guest');
    else if (s.joinedBy !== null) setJoinedBy(s, fx, 'resume'); // may neither register nor change the password
    if (!s.resuming) s.position = 0; // a new session counts from its join
    Object.assign(s, { loggingIn: false, resuming: false, attempt: 0, autoTries: 0, older: null, found: null });
    s.historyCutoff = s.lastServerTs; // this join's history is new after what is shown
    fx.push(['link_back'], ['new_join'], ['render', 'more'], ['clear_join_input']);
    if (again) { s.reconnectedAs = ev.id; fx.push(['render', 'state']); } else fx.push(['notice', { key: 'joined' }]);
    s.autoJoin = false;
    fx.push(['chat']);
  },
  session(s, ev, fx) {
    if (isText(ev.token)) { s.token = ev.token; fx.push(['save', KEYS.session, ev.token]); }
  },
  page(s, ev, fx) { // after a join's history, and ending each page of older messages
    const next = isText(ev.cursor) ? ev.cursor : '';
    s.paged = true;
    fx.push(['save', KEYS.paged, '1']);
    if (s.older !== null) {
      const fresh = s.older.filter((m) => !shownOlder(s, m)).map(({ seen, ...m }) => m);
      s.cursor = next;
      if (!fresh.length && next && s.rounds < MAX_ROUNDS && sendOlder(s, fx, next)) {
        s.rounds += 1; // all of it is on screen already: the page before, at once
        fx.push(['search_form']);
        return;
      }
      s.rounds = 0;
      fx.push(['older', fresh, !next]);
      s.older = null;
    }
    s.cursor = next;
    fx.push(['render', 'more'], ['search_form']); // a server that pages also searches
  },
  older(s, ev) {
    if (s.older !== null && isText(ev.from) && isText(ev.text)) {
      s.older = [...s.older, { from: ev.from, text: ev.text, ts: ev.ts, own: ev.from === s.myId, seen: ev.seen }];
    }
  },
  found(s, ev) {
    if (s.found !== null && isText(ev.from) && isText(ev.text)) s.found = [...s.found, { from: ev.from, text: ev.text, ts: ev.ts }];
  },
  searched(s, ev, fx) {
    if (s.found === null) return;
    fx.push(['results', s.found, s.searched]);
    s.found = null;
  },
  history(s, ev, fx) { // a fresh join: earlier messages, oldest first; a rejoin: only those not shown yet
    if (!isText(ev.from) || !isText(ev.text) || shownBefore(s, ev)) return;
    fx.push(['message', message(s, { kind: 'all', from: ev.from, text: ev.text, ts: ev.ts, own: ev.from === s.myId,
      history: true, account: ev.account === true })]);
  },
  resumed(s, ev, fx) { // the missed events were replayed: no join/leave noise, just the status
    if (!s.myId && s.wantId) { s.myId = s.wantId; s.autoJoin = false; fx.push(['chat']); }
    s.reconnectedAs = s.myId;
    fx.push(['link_back'], ['render', 'state']);
    if (!s.paged) return; // a resumed tab (no `page` comes with a resume) finds its place from the newest
    fx.push(['search_form']);
    if (s.cursor === null && s.older === null && sendOlder(s, fx, '')) { s.rounds = 0; fx.push(['render', 'more']); }
  },
  id_taken(s, ev, fx) {
    if (s.autoJoin && s.autoTries < AUTO_JOIN_TRIES) {
      s.autoTries += 1; // our own old connection may not have left yet
      fx.push(['later', 1000, { type: '@retry_join' }]);
      return;
    }
    forgetId(s, fx);
    fx.push(['join', { key: 'id_taken' }]);
  },
  left(s, ev, fx) {
    fx.push(['notice', { key: 'left' }]);
    const online = Math.max(0, s.users.length - 1); // the room without us, as we last knew it
    s.myId = null;
    forgetId(s, fx);
    setUsers(s, fx, []);
    s.online = online;
    fx.push(['join', null]);
  },
  users(s, ev, fx) {
    if (!Array.isArray(ev.ids)) return;
    setUsers(s, fx, ev.ids);
    s.online = ev.ids.length;
    if (s.whoAsked) { s.whoAsked = false; fx.push(['who', ev.ids]); }
  },
  user_joined(s, ev, fx) {
    if (!isText(ev.id)) return;
    if (ev.account === true && !s.accounts.includes(ev.id)) s.accounts = [...s.accounts, ev.id];
    if (!s.users.includes(ev.id)) s.users = [...s.users, ev.id];
    roomChanged(s, fx);
    fx.push(['notice', { key: 'user_joined', fields: { id: ev.id } }]);
  },
  user_left(s, ev, fx) {
    if (!isText(ev.id)) return;
    s.accounts = s.accounts.filter((id) => id !== ev.id);
    s.users = s.users.filter((id) => id !== ev.id);
    roomChanged(s, fx);
    fx.push(['notice', { key: 'user_left', fields: { id: ev.id } }]);
  },
  accounts(s, ev, fx) { // which online IDs are accounts (after `users`, and after an account's join)
    if (!Array.isArray(ev.ids)) return;
    s.accounts = [...new Set([...s.accounts, ...ev.ids.filter(isText)])];
    fx.push(['render', 'users', 'account']);
  },
  registered(s, ev, fx) {
    if (!isText(ev.id)) return;
    if (!s.accounts.includes(ev.id)) s.accounts = [...s.accounts, ev.id];
    setJoinedBy(s, fx, 'login');
    fx.push(['account_error', null], ['notice', { key: 'registered_notice', fields: { id: ev.id } }],
      ['render', 'users', 'account']);
  },
  password_changed(s, ev, fx) {
    fx.push(['account_error', null], ['notice', { key: 'password_changed' }]);
  },
  message(s, ev, fx) {
    if (!isText(ev.from) || !isText(ev.text)) return;
    fx.push(['message', message(s, { kind: 'all', from: ev.from, text: ev.text, ts: ev.ts, account: ev.account === true }),
      'mention']);
  },
  whisper(s, ev, fx) {
    if (!isText(ev.from) || !isText(ev.text)) return;
    fx.push(['message', message(s, { kind: 'whisper', from: ev.from, text: ev.text, ts: ev.ts }), 'always']);
  },
  pong(s, ev, fx) { // a message's ack: it and every message before it reached the server
    const i = s.pending.findIndex((p) => p.token === ev.token);
    if (i < 0) return;
    const done = s.pending.slice(0, i + 1).filter((p) => !p.failed).map((p) => p.token);
    s.pending = s.pending.slice(i + 1);
    fx.push(['sent', done]);
  },
  no_such_user(s, ev, fx) {
    if (!failPending(s, fx, { key: 'no_such_user' })) fx.push(['toast', { key: 'no_such_user' }]);
  },
  error(s, ev, fx) { handleError(s, ev.reason, isText(ev.text) ? ev.text : '', ev, fx); },
  notice(s, ev, fx) { // from the server's operators, to everyone
    if (isText(ev.text)) fx.push(['notice', { key: 'server_notice', fields: { text: ev.text } }]);
  },
};

/** The server event types this reducer handles itself; others with a sentence are said (`said`), the rest ignored. */
export const HANDLED = Object.freeze(Object.keys(HANDLERS));
