// hanchat's page: the tab's protocol state (who it is, its session and resume position, the room as it
// knows it, what it asked and awaits) and the steps the reducers share (protocol.js: the server's events,
// refusals.js: its errors, actions.js: the page's own). Pure: no DOM, no socket, no storage, no clock;
// each step changes the state copy `s` and pushes effects ([name, ...args]) on `fx`.

export const ROOM = 'lobby'; // the only room until rooms exist (PROTOCOL: ROOM)
export const PAGE_SIZE = 50; // messages one scroll to the top asks for (016's LIMIT)
export const AUTO_JOIN_TRIES = 5; // an automatic rejoin may race the old connection's leave
export const MAX_ROUNDS = 8; // pages in a row all shown already, asked at once (a resumed tab finding its place)
export const KEYS = { // sessionStorage, per tab (never a cookie or URL)
  id: 'hanchat.id', session: 'hanchat.session', log: 'hanchat.log', position: 'hanchat.position',
  paged: 'hanchat.paged', joinedBy: 'hanchat.joinedBy',
};
/**
 * The tab's state before any event. `saved`: what sessionStorage kept ({id, token, position, paged,
 * joinedBy}); `counted`: the event types a resume position counts (the gateway's rules.counted);
 * `sentences`: each event type's sentence key (rules.sentences, from the protocol table's text_keys).
 */
export function initialState(saved = {}, counted = [], sentences = {}) {
  return {
    counted, sentences, open: false, conn: 'connecting', reconnectedAs: null, attempt: 0,
    myId: null, wantId: saved.id ?? null, wantIdConfirmed: (saved.id ?? null) !== null, token: saved.token ?? null,
    autoJoin: false, autoTries: 0, resuming: false, loggingIn: false, joinedBy: saved.joinedBy ?? null,
    // How many counted events this tab handled since its join: a resume names it and the server replays
    // exactly what follows. null: not known (a log kept by an older page): the server replays what it noticed.
    position: 0, whoAsked: false, online: null, users: [], accounts: [], historyCutoff: 0, lastServerTs: 0,
    cursor: null, older: null, found: null, searched: '', rounds: 0, paged: saved.paged === true,
    accountPending: false, pending: [], ackSeq: 0, pendingLogin: null,
  };
}

export const isText = (v) => typeof v === 'string';
export const isTime = (v) => typeof v === 'number' && Number.isFinite(v);

export function setConn(s, fx, conn) {
  s.conn = conn;
  if (conn !== 'connected') s.reconnectedAs = null;
  fx.push(['render', 'state']);
}

/** A join, or a resume when this tab holds a session token (the gateway's `session`). */
export function sendJoin(s, fx, id, auto) {
  s.autoJoin = auto;
  s.resuming = Boolean(s.token);
  if (!s.open) return false;
  const resume = s.position === null ? { type: 'resume', token: s.token } : { type: 'resume', token: s.token, position: s.position };
  fx.push(['send', s.token ? resume : { type: 'join', id }]);
  return true;
}

export function sendOlder(s, fx, cursor) {
  if (!s.open) return false;
  fx.push(['send', { type: 'older', room: ROOM, cursor, limit: PAGE_SIZE }]);
  s.older = [];
  return true;
}

export function setUsers(s, fx, ids) {
  s.users = [...ids];
  s.accounts = [];
  roomChanged(s, fx);
}

// While joined the page knows the room (a parked user is still in it): the welcome screen's count follows.
export function roomChanged(s, fx) {
  if (s.myId) s.online = s.users.length;
  fx.push(['render', 'users', 'online']);
}

export function forgetId(s, fx) {
  Object.assign(s, { wantId: null, wantIdConfirmed: false, autoJoin: false, autoTries: 0, attempt: 0,
    token: null, paged: false, joinedBy: null });
  for (const key of Object.values(KEYS)) fx.push(['save', key, null]);
}

export function setJoinedBy(s, fx, how) {
  s.joinedBy = how;
  fx.push(['save', KEYS.joinedBy, how]);
}

/** The oldest pending message failed (`why`): true, or false when none is pending. */
export function failPending(s, fx, why) {
  const p = s.pending.find((q) => !q.failed);
  if (!p) return false;
  s.pending = s.pending.map((q) => (q === p ? { ...q, failed: true } : q));
  fx.push(['failed', p.token, why], ['toast', { key: 'not_sent', fields: { reason: why } }]);
  return true;
}

