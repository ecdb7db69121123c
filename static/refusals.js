// hanchat's page: what an `error` event (the server's 109, the gateway's refusals) means to the tab: a
// refused login or join, an account form's refusal, a page or search refused, an operator's kick, a
// resume that cannot be, a message not sent. Pure, like protocol.js.
import {
  KEYS, failPending, forgetId, sendJoin, setConn, setUsers,
} from './state.js';

const LINK_REASONS = ['shutdown', 'unavailable', 'replaced', 'busy']; // about the connection, not a message
const LOGIN_REASONS = ['bad-login', 'too-many-attempts', 'needs-tls', 'account-locked', 'login-busy', 'registered',
  'needs-login', 'unavailable', 'bad-id', 'banned'];
const ACCOUNT_REASONS = ['weak-password', 'already-registered', 'registration-closed', 'needs-login', 'login-busy',
  'needs-tls', 'unavailable'];
const JOIN_REASONS = ['bad-id', 'busy', 'address-limit', 'not-joined', 'forbidden', 'flood'];

export function handleError(s, reason, text, ev, fx) {
  const idRule = { idRule: { rule: ev.rule, char: ev.char } };
  if (!s.myId && (s.loggingIn || reason === 'registered') && LOGIN_REASONS.includes(reason)) {
    // A refused login (or a guest join of a registered ID): the welcome screen says why, by the login form.
    s.loggingIn = false;
    const why = reason === 'bad-id' ? idRule : { password: { reason, text } };
    if (reason === 'registered') { // e.g. a resume that expired: log in again
      const relogin = s.wantIdConfirmed;
      fx.push(['login_id', s.wantId]);
      forgetId(s, fx);
      fx.push(['join', null], ['login_error', relogin ? { key: 'relogin' } : why]);
      return;
    }
    fx.push(['join', null], ['login_error', why]);
    return;
  }
  if (s.myId && ACCOUNT_REASONS.includes(reason) && s.accountPending) {
    s.accountPending = false;
    fx.push(['account_error', { password: { reason, text } }]);
    return;
  }
  if (s.older !== null || s.found !== null) { // a page or a search the server refused: none comes
    if (reason === 'bad-cursor') s.cursor = '';
    Object.assign(s, { older: null, found: null });
    fx.push(['render', 'more']);
  }
  if (reason === 'kicked' || reason === 'banned') {
    // An operator's decision: no automatic rejoin; their reason is their own words, so it is shown.
    forgetId(s, fx);
    s.myId = null;
    setUsers(s, fx, []);
    fx.push(['join', { reason, detail: text }]);
  } else if (reason === 'bad-token' || reason === 'gap') {
    // The session expired, passed its bound while away, or the position is older than the server keeps:
    // join afresh with the remembered ID, and say that what was said meanwhile may be missing.
    s.token = null;
    fx.push(['save', KEYS.session, null], ['notice', { key: 'resume_gap' }]);
    if (s.wantId) sendJoin(s, fx, s.wantId, s.autoJoin);
  } else if (reason === 'backend-unavailable') {
    setConn(s, fx, 'unavailable'); // the status area says it, once; the log stays the conversation
  } else if (!s.myId && JOIN_REASONS.includes(reason)) {
    forgetId(s, fx);
    fx.push(['join', reason === 'bad-id' ? idRule : { reason }]);
  } else {
    const why = reason === 'bad-id' ? idRule : { reason }; // e.g. a whisper's target
    if (!failPending(s, fx, why)) fx.push(['toast', why, 'error', LINK_REASONS.includes(reason) ? 'link' : '']);
  }
}
