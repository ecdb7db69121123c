// hanchat's page, wired (an ES module; templates/index.html loads it with type="module"). One WebSocket
// to the gateway (JSON protocol in PROTOCOL.md, "Browser JSON"). Every text reaches the DOM through
// textContent or DOM APIs, never as HTML; every URL is relative, so the page works at / and under a
// proxy's prefix alike. The strings and rules come from the gateway in #page-strings.
//
// The parts: protocol.js and actions.js (the pure reducers: state and event in, state and effects out),
// effects.js (effects applied), connection.js (socket, backoff), commands.js (the typed line), i18n.js,
// storage.js, ratelimit.js, and the views: log.js, status.js, users.js, forms.js, composer.js,
// scrollback.js, notify.js.
//
// Caching: every module is served from one versioned directory, static/m/<VERSION>/ (VERSION: one hash over
// all of them; web_gateway/app.py), so the relative imports below stay in it: kept for a year, and a change
// to any module moves them all to a new directory. Never import by an absolute or ../ path.
import { reduce } from './actions.js';
import { createComposer } from './composer.js';
import { createConnection, wsUrl } from './connection.js';
import { createEffects } from './effects.js';
import { createForms } from './forms.js';
import { applyStatic, createI18n, pickLang } from './i18n.js';
import { createLog } from './log.js';
import { createNotify } from './notify.js';
import { KEYS, initialState } from './protocol.js';
import { createBucket } from './ratelimit.js';
import { createScrollback, MAX_LOG } from './scrollback.js';
import { createStatus } from './status.js';
import { local, session } from './storage.js';
import { createUsers } from './users.js';

const GROUP_MS = 5 * 60 * 1000; // consecutive messages from one author within this share a header
const OWN_SLACK_MS = 10000; // your own line and the server's time for it differ by the clocks and the trip

const $ = (id) => document.getElementById(id);
const { strings, rules } = JSON.parse($('page-strings').textContent);
const i18n = createI18n(strings, pickLang(strings, new URLSearchParams(location.search).get('lang'),
  local.load('hanchat.lang'), document.body.dataset.lang));

let state = initialState({
  id: session.load(KEYS.id), token: session.load(KEYS.session), paged: session.load(KEYS.paged) === '1',
  joinedBy: session.load(KEYS.joinedBy),
}, rules.counted, rules.sentences);
let timeFormat = null;

const ctx = { $, i18n, rules, session, local, state: () => state, bucket: createBucket(rules.rate, rules.burst) };
ctx.dispatch = dispatch;
ctx.conn = createConnection(wsUrl(location.href), {
  open: () => dispatch({ type: '@open' }),
  event: (ev) => dispatch(ev),
  close: () => dispatch({ type: '@close' }),
  tick: () => ctx.status.tick(),
});
ctx.log = createLog($('log'), $('jump'), {
  t: i18n.t,
  time: (ms) => ({ text: timeFormat.format(new Date(ms)), title: new Date(ms).toLocaleString(i18n.lang) }),
  maxLines: MAX_LOG,
  groupMs: GROUP_MS,
});
ctx.status = createStatus(ctx);
ctx.unread = () => ctx.notify.unread();
ctx.notify = createNotify(ctx);
ctx.users = createUsers(ctx);
ctx.forms = createForms(ctx);
ctx.scrollback = createScrollback(ctx);
ctx.composer = createComposer(ctx);
const RENDER = {
  state: ctx.status.renderState, title: ctx.status.renderTitle, online: ctx.status.renderOnline,
  users: ctx.users.render, account: ctx.users.renderAccount, more: ctx.scrollback.renderMore,
};
ctx.render = (name) => RENDER[name]();
const effects = createEffects(ctx);

/** What the screen shows of a history or older message: the reducer's `seen` (protocol.js). */
function seen(ev) {
  if ((ev.type !== 'history' && ev.type !== 'older') || typeof ev.ts !== 'number' || typeof ev.text !== 'string') return null;
  return { same: ctx.log.hasMessage(ev.ts, ev.from, ev.text), own: ctx.log.hasOwn(ev.text, ev.ts, OWN_SLACK_MS) };
}

function dispatch(event) {
  const facts = seen(event);
  const out = reduce(state, facts ? { ...event, seen: facts } : event);
  state = out.state;
  for (const effect of out.effects) effects.apply(effect);
}

function applyLang() {
  applyStatic(document, i18n);
  timeFormat = new Intl.DateTimeFormat(i18n.lang, { hour: 'numeric', minute: '2-digit' });
  for (const name of ['title', 'state', 'users', 'online']) ctx.render(name);
  ctx.notify.render();
}

for (const b of document.querySelectorAll('[data-set-lang]')) {
  b.addEventListener('click', () => {
    i18n.lang = b.dataset.setLang;
    local.save('hanchat.lang', i18n.lang);
    applyLang();
  });
}

// A resume replays only what was missed, so a reload would otherwise lose the conversation on screen:
// the page keeps it in this tab's sessionStorage and shows it again when it comes back with a session.
window.addEventListener('pagehide', () => {
  const msgs = effects.keptMessages();
  session.save(KEYS.log, msgs.length && state.wantId ? JSON.stringify(msgs) : null);
  session.save(KEYS.position, state.wantId && state.position !== null ? String(state.position) : null);
});
window.addEventListener('online', () => ctx.conn.connectIfIdle());

applyLang();
ctx.forms.showJoin();
let restored;
try { restored = JSON.parse(session.load(KEYS.log) || '[]'); } catch (e) { restored = []; }
dispatch({ type: '@restore', msgs: restored, position: session.load(KEYS.position) });
ctx.conn.connect();
