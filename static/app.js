// hanchat's page: one WebSocket to the gateway (JSON protocol in PROTOCOL.md, "Browser JSON").
// Every text reaches the DOM through textContent or DOM APIs, never as HTML; every URL is relative,
// so the page works at / and under a proxy's path prefix alike. The strings (Korean and English)
// and the rules (ID rule, frame limit, forbidden characters) come from the gateway in #page-strings.
'use strict';

(() => {
  const { hanchat } = window; // static/richtext.js and static/log.js, loaded first
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($('page-strings').textContent);
  const strings = data.strings;
  const rules = data.rules;
  const body = document.body;

  const BACKOFF_BASE = 0.5; // seconds
  const BACKOFF_CAP = 10;
  const MAX_LOG = 500;
  const GROUP_MS = 5 * 60 * 1000; // consecutive messages from one author within this share a header
  const NOTICE_MS = 8000;
  const AUTO_JOIN_TRIES = 5; // an automatic rejoin may race the old connection's leave
  const SESSION_KEY = 'hanchat.session'; // resume token, per tab (sessionStorage, never a cookie or URL)
  const ID_KEY = 'hanchat.id';
  const LOG_KEY = 'hanchat.log'; // the messages shown, for a reload that resumes to show them again
  const POSITION_KEY = 'hanchat.position'; // how many counted events the kept log goes with (see keepLog)
  const PAGED_KEY = 'hanchat.paged'; // the server keeps a store: a resumed tab pages and searches too
  const KEEP = 200;
  const ROOM = 'lobby'; // the only room until rooms exist (PROTOCOL: ROOM)
  const PAGE_SIZE = 50; // messages one scroll to the top asks for (016's LIMIT)
  const MIN_QUERY = 2; // characters a search needs (017)
  const OWN_SLACK_MS = 10000; // your own line and the server's time for it differ by the clocks and the trip

  const idForbidden = new RegExp(rules.id_forbidden, 'u');
  const messageForbidden = new RegExp(rules.message_forbidden, 'u');
  const counted = new Set(rules.counted); // the events a resume position counts (PROTOCOL.md, 008)
  const utf8 = new TextEncoder();

  // ---------------------------------------------------------------- storage (may be off)

  function load(store, key) { try { return window[store].getItem(key); } catch (e) { return null; } }
  function save(store, key, value) {
    try {
      if (value === null) window[store].removeItem(key); else window[store].setItem(key, value);
    } catch (e) { /* storage off: the page still works, it just forgets */ }
  }

  // ---------------------------------------------------------------- language

  let lang = pickLang();

  function pickLang() {
    const asked = new URLSearchParams(location.search).get('lang');
    if (asked && strings[asked]) return asked;
    const saved = load('localStorage', 'hanchat.lang');
    if (saved && strings[saved]) return saved;
    return strings[body.dataset.lang] ? body.dataset.lang : 'en';
  }

  function t(key, fields) {
    const table = strings[lang] || strings.en;
    const template = key in table ? table[key] : key;
    return template.replace(/\{(\w+)\}/g, (m, name) => (fields && name in fields ? String(fields[name]) : m));
  }

  function applyLang() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-aria-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    }
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
      el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder));
    }
    for (const b of document.querySelectorAll('[data-set-lang]')) {
      b.setAttribute('aria-pressed', String(b.dataset.setLang === lang));
    }
    timeFormat = new Intl.DateTimeFormat(lang, { hour: 'numeric', minute: '2-digit' });
    renderTitle();
    renderState();
    renderUsers();
    renderOnline();
    renderNotify();
  }

  for (const b of document.querySelectorAll('[data-set-lang]')) {
    b.addEventListener('click', () => {
      lang = b.dataset.setLang;
      save('localStorage', 'hanchat.lang', lang);
      applyLang();
    });
  }

  // ---------------------------------------------------------------- rate limit (the gateway's, mirrored)

  const bucket = {
    rate: Number(rules.rate) || 0,
    burst: Number(rules.burst) || 1,
    tokens: 0,
    stamp: 0,
    reset() { this.tokens = this.burst; this.stamp = performance.now(); },
    take(n) {
      if (this.rate <= 0) return true;
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.stamp) / 1000) * this.rate);
      this.stamp = now;
      if (this.tokens >= n) { this.tokens -= n; return true; }
      return false;
    },
  };
  bucket.reset();

  // ---------------------------------------------------------------- state

  let ws = null;
  let attempt = 0;
  let retryAt = 0;
  let retryTimer = null;
  let countdownTimer = null;
  let connState = 'connecting'; // connecting | connected | disconnected | unavailable | shutdown
  let reconnectedAs = null; // shown in the status area after an automatic rejoin or a resume
  let myId = null; // confirmed by the server (joined)
  let wantId = load('sessionStorage', ID_KEY); // the ID to (re)join with after a reconnect or a reload
  let wantIdConfirmed = wantId !== null; // the server accepted it before: joining again is automatic
  let autoJoin = false; // the pending join was the page's own, not the user's
  let autoTries = 0;
  let whoAsked = false;
  let online = null; // users online, when the gateway says
  let unread = 0;
  let lastServerTs = 0; // the newest server time shown
  let historyCutoff = 0; // lastServerTs when the current join began: its history is new after that
  let notifyOn = load('localStorage', 'hanchat.notify') === 'on';
  // The session's position: how many counted events this page has handled since the join. A resume
  // names it and the server replays exactly what follows, so nothing written into a dying socket
  // (or sent while the tab was reloading) is lost, and nothing shown is shown twice.
  // null: not known (a log kept by an older page): the resume then replays what the server noticed missing.
  let position = 0;
  let resuming = false; // the pending join is a resume: its `joined` does not start a new session
  const users = [];
  const accountIds = new Set(); // online IDs that are accounts (the `accounts` event, an account's `user_joined`)
  // How this tab came into the room: 'guest' may keep its ID (register), 'login' may change the password;
  // a resume may do neither (the server says so too). Kept per tab so that a reload still knows.
  const JOINED_BY_KEY = 'hanchat.joinedBy';
  let joinedBy = load('sessionStorage', JOINED_BY_KEY);
  let loggingIn = false; // a login was sent: its `joined` is an account's

  const log = $('log');
  const joinForm = $('join-form');
  const joinInput = $('join-id');
  const joinError = $('join-error');
  const loginForm = $('login-form');
  const loginId = $('login-id');
  const loginPassword = $('login-password');
  const loginError = $('login-error');
  const accountError = $('account-error');
  const sendForm = $('send-form');
  const input = $('message');
  const notice = $('notice');
  const jump = $('jump');
  let noticeTimer = null;
  let timeFormat = null;

  // ---------------------------------------------------------------- status area and title

  function setState(state) {
    connState = state;
    if (state !== 'connected') reconnectedAs = null;
    renderState();
  }

  function renderState() {
    const el = $('state');
    el.dataset.state = connState === 'unavailable' ? 'disconnected' : connState;
    const seconds = Math.max(0, Math.ceil((retryAt - performance.now()) / 1000));
    let text;
    if (connState === 'disconnected' || connState === 'unavailable') {
      text = t('state_' + connState, { seconds });
    } else if (connState === 'connected' && reconnectedAs) {
      text = t('state_reconnected', { id: reconnectedAs });
    } else {
      text = t('state_' + connState);
    }
    $('state-text').textContent = text;
  }

  function renderTitle() {
    document.title = (unread > 0 ? `(${unread}) ` : '') + t('title') + ' · hanchat';
  }

  function renderOnline() {
    const el = $('online');
    el.hidden = online === null;
    if (online !== null) el.textContent = t('online_count', { count: online });
  }

  // ---------------------------------------------------------------- composer notices (transient)

  // `about`: the connection state a notice speaks of ('link'): it goes as soon as that state ends
  // (a rejoin or a resume), not 8 s later, so it never contradicts the status area.
  function showNotice(text, kind, about) {
    notice.textContent = text;
    notice.dataset.kind = kind || 'error';
    notice.dataset.about = about || '';
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(hideNotice, NOTICE_MS);
  }

  function hideNotice() {
    clearTimeout(noticeTimer);
    notice.hidden = true;
  }

  function linkBack() { if (!notice.hidden && notice.dataset.about === 'link') hideNotice(); }

  // ---------------------------------------------------------------- the log (static/log.js)

  const view = hanchat.createLog(log, jump, {
    t,
    time: (ms) => ({ text: timeFormat.format(new Date(ms)), title: new Date(ms).toLocaleString(lang) }),
    maxLines: MAX_LOG,
    groupMs: GROUP_MS,
  });
  const { addNotice, setSendState, toBottom } = view;

  // ---------------------------------------------------------------- scrollback and search (016, 017)
  // A join's `page` event says how to page further back (its cursor; "" when nothing is older). Reaching
  // the top of the log, or the button there, asks for the page before the oldest message shown: its
  // `older` events come first, then a `page` with the next cursor. A search's `found` events come
  // newest first, then `searched`; they are listed beside the users, apart from the log.
  const moreButton = $('more');
  const searchForm = $('search-form');
  const searchInput = $('search');
  const results = $('results');
  const resultsList = $('results-list');
  let cursor = null; // null: the server keeps no scrollback (no `page` came); "": nothing older
  let older = null; // the `older` events of the page asked for, until its `page` comes
  let found = null; // the `found` events of the search asked for, until `searched` comes
  let searched = '';
  let rounds = 0; // pages in a row whose messages were all shown already (a resumed tab finding its place)
  const MAX_ROUNDS = 8;

  function renderMore() {
    moreButton.hidden = !cursor || older !== null || log.childElementCount >= MAX_LOG;
  }

  function askOlder() {
    if (!cursor || older !== null || !myId || log.childElementCount >= MAX_LOG) return;
    if (send({ type: 'older', room: ROOM, cursor, limit: PAGE_SIZE })) {
      older = [];
      renderMore();
    }
  }

  function shown(m) { // a page may hold lines this tab shows already (a resumed tab's restored log)
    return view.hasMessage(m.ts, m.from, m.text) || (m.own && view.hasOwn(m.text, m.ts, OWN_SLACK_MS));
  }

  function gotPage(ev) {
    const next = isText(ev.cursor) ? ev.cursor : '';
    save('sessionStorage', PAGED_KEY, '1');
    if (older !== null) {
      const fresh = older.filter((m) => !shown(m));
      cursor = next;
      if (!fresh.length && next && rounds < MAX_ROUNDS && send({ type: 'older', room: ROOM, cursor, limit: PAGE_SIZE })) {
        rounds += 1; // all of it is on screen already: the page before, at once
        older = [];
        return;
      }
      rounds = 0;
      view.addOlder(fresh, !next);
      older = null;
    }
    cursor = next;
    renderMore();
  }

  /** A resumed tab (no `page` comes with a resume) finds its place: pages from the newest, skipping what it shows. */
  function resumePaging() {
    if (load('sessionStorage', PAGED_KEY) !== '1') return;
    searchForm.hidden = false;
    if (cursor === null && older === null && send({ type: 'older', room: ROOM, cursor: '', limit: PAGE_SIZE })) {
      older = [];
      rounds = 0;
      renderMore();
    }
  }

  function showResults() {
    const list = found || [];
    resultsList.replaceChildren(...list.map((m) => {
      const { li } = view.messageItem({ kind: 'all', from: m.from, text: m.text, ts: m.ts, own: m.from === myId });
      return li;
    }));
    $('results-title').textContent = t('search_results', { count: list.length, query: searched });
    results.hidden = false;
    found = null;
  }

  function resetHistoryPaging() { // a join or a resume: what was asked on the old connection will not come
    older = null;
    found = null;
    renderMore();
  }

  moreButton.addEventListener('click', askOlder);
  log.addEventListener('scroll', () => { if (log.scrollTop < 48) askOlder(); });
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const query = searchInput.value.trim();
    if ([...query.normalize('NFC')].length < MIN_QUERY) { showNotice(t('search_short')); return; }
    if (found !== null || !myId) return;
    if (send({ type: 'search', room: ROOM, text: query })) { found = []; searched = query; }
  });
  $('results-close').addEventListener('click', () => { results.hidden = true; searchInput.focus(); });
  const kept = []; // {msg, li} of each message shown, newest last (see keepLog)
  function addMessage(msg) {
    if (!msg.own && typeof msg.ts === 'number' && Number.isFinite(msg.ts)) lastServerTs = Math.max(lastServerTs, msg.ts);
    const shown = view.addMessage({ ...msg, mention: msg.own ? null : hanchat.mentionPattern(myId || wantId) });
    kept.push({ msg: { ...msg, ts: Number(shown.li.dataset.ts), state: undefined }, li: shown.li });
    if (kept.length > KEEP) kept.splice(0, kept.length - KEEP);
    return shown;
  }

  // A resume replays only what was missed, so a reload would otherwise lose the conversation on
  // screen: the page keeps it in this tab's sessionStorage as it goes and shows it again when it
  // comes back with a session to resume. Your own lines are kept once the server took them.
  function keepLog() {
    const msgs = kept.filter((k) => k.li.isConnected && (!k.li.dataset.state || k.li.dataset.state === 'sent'))
      .map((k) => k.msg);
    save('sessionStorage', LOG_KEY, msgs.length && wantId ? JSON.stringify(msgs) : null);
    save('sessionStorage', POSITION_KEY, wantId && position !== null ? String(position) : null);
  }

  function restoreLog() {
    let msgs;
    try { msgs = JSON.parse(load('sessionStorage', LOG_KEY) || '[]'); } catch (e) { msgs = []; }
    if (!wantId || !load('sessionStorage', SESSION_KEY)) return;
    const kept = load('sessionStorage', POSITION_KEY);
    position = kept !== null && /^\d{1,15}$/.test(kept) ? Number(kept) : null;
    if (!Array.isArray(msgs)) return;
    for (const m of msgs) {
      if (m && isText(m.from) && isText(m.text) && (m.kind === 'all' || m.kind === 'whisper')) addMessage(m);
    }
  }

  window.addEventListener('pagehide', keepLog);

  // ---------------------------------------------------------------- users

  function renderUsers() {
    const list = $('users');
    const sorted = [...users].sort((a, b) => (a === myId ? -1 : b === myId ? 1 : a.localeCompare(b, lang)));
    list.replaceChildren();
    for (const id of sorted) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'user' + (id === myId ? ' me' : '');
      b.dataset.id = id;
      b.title = id;
      b.append(hanchat.span('dot ' + (id === myId ? 'me' : hanchat.colourOf(id)), ''));
      const name = hanchat.span('name', id);
      name.dir = 'auto';
      b.append(name);
      if (id === myId) b.append(hanchat.span('tag', t('me')));
      const isAccount = accountIds.has(id);
      if (isAccount) b.append(hanchat.span('tag account', t('account_badge')));
      const who = isAccount ? `${id}, ${t('account_badge_label')}` : id;
      b.setAttribute('aria-label', id === myId ? `${who} (${t('me')})` : `${t('whisper_to', { id })}${isAccount ? `, ${t('account_badge_label')}` : ''}`);
      b.addEventListener('click', () => whisperTo(id));
      li.appendChild(b);
      list.appendChild(li);
    }
    $('users-title').textContent = t('users_count', { count: users.length });
  }

  // While joined the page knows the room (a parked user is still in it): the welcome screen's count
  // follows every join and leave, not only the list it got when it joined.
  function roomChanged() {
    renderUsers();
    if (myId) { online = users.length; renderOnline(); }
  }
  function setUsers(ids) { users.splice(0, users.length, ...ids); accountIds.clear(); roomChanged(); }
  function addUser(id) { if (!users.includes(id)) users.push(id); roomChanged(); }
  function removeUser(id) {
    accountIds.delete(id);
    const i = users.indexOf(id);
    if (i >= 0) users.splice(i, 1);
    roomChanged();
  }

  function whisperTo(id) {
    if (!myId) return;
    input.value = id === myId ? '' : `/m ${id} `;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  // ---------------------------------------------------------------- screens

  function showJoin(errorText) {
    body.dataset.screen = 'join';
    $('welcome').hidden = false;
    $('chat').hidden = true;
    $('composer').hidden = true;
    $('leave').hidden = true;
    if (wantId && !joinInput.value) joinInput.value = wantId;
    if (errorText) {
      joinError.textContent = errorText;
      joinError.hidden = false;
      joinInput.setAttribute('aria-invalid', 'true');
    }
    joinInput.focus();
  }

  // The account tools: "keep this ID" for a guest who joined here, "change password" after a login here.
  function renderAccount() {
    const mine = myId !== null;
    $('register-form').hidden = !(mine && joinedBy === 'guest' && !accountIds.has(myId));
    $('passwd-form').hidden = !(mine && joinedBy === 'login');
    $('account').hidden = $('register-form').hidden && $('passwd-form').hidden;
    $('register-id').value = myId || '';
    $('passwd-id').value = myId || '';
  }

  function accountFail(text) {
    accountError.textContent = text;
    accountError.hidden = false;
  }

  function clearPasswords() { // the page never keeps a password once it is sent (nor after a mistake)
    for (const id of ['login-password', 'register-password', 'register-again', 'passwd-password', 'passwd-again']) {
      $(id).value = '';
    }
  }

  function showLoginError(text) {
    loginError.textContent = text;
    loginError.hidden = false;
    loginPassword.setAttribute('aria-invalid', 'true');
    loginPassword.focus();
  }

  function showChat() {
    body.dataset.screen = 'chat';
    $('welcome').hidden = true;
    joinError.hidden = true;
    joinInput.setAttribute('aria-invalid', 'false');
    $('chat').hidden = false;
    $('composer').hidden = false;
    $('leave').hidden = false;
    loginError.hidden = true;
    renderAccount();
    toBottom();
    input.focus();
  }

  function reasonText(reason) { return t('reason:' + reason); } // the gateway's `text` is English: not shown

  // ---------------------------------------------------------------- unread count and notifications

  function isHidden() { return document.visibilityState === 'hidden'; }

  document.addEventListener('visibilitychange', () => {
    if (!isHidden()) { unread = 0; renderTitle(); }
  });

  function renderNotify() {
    const b = $('notify');
    b.hidden = !('Notification' in window);
    const on = notifyOn && 'Notification' in window && Notification.permission === 'granted';
    b.setAttribute('aria-pressed', String(on));
    b.textContent = t(on ? 'notify_on' : 'notify');
  }

  $('notify').addEventListener('click', async () => {
    if (notifyOn && Notification.permission === 'granted') {
      notifyOn = false;
    } else {
      const answer = await Notification.requestPermission(); // asked on this click, never unprompted
      notifyOn = answer === 'granted';
    }
    save('localStorage', 'hanchat.notify', notifyOn ? 'on' : null);
    renderNotify();
  });

  // A message while the tab is hidden counts in the title; whispers and mentions always raise a
  // desktop notification (when allowed) unless you are looking at the tab, other messages only while hidden.
  function arrived(from, text, important) {
    if (from === myId) return; // a whisper to oneself (the seed allows it) is one's own message
    if (isHidden()) { unread += 1; renderTitle(); }
    const looking = !isHidden() && document.hasFocus();
    if (!notifyOn || looking || !('Notification' in window) || Notification.permission !== 'granted') return;
    if (!important && !isHidden()) return;
    try {
      const note = new Notification(t('notify_title', { id: from }), {
        body: text, tag: important ? `hanchat-${from}` : 'hanchat', lang,
      });
      note.addEventListener('click', () => { window.focus(); note.close(); });
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  // ---------------------------------------------------------------- the connection

  function wsUrl() {
    const url = new URL('ws', location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = '';
    url.hash = '';
    return url.href;
  }

  function send(msg) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  // History and resume (the gateway's `session`, `history`, `resumed` events; `handle` below): with a
  // token from this tab's last `session` event the page resumes instead of joining; `bad-token` drops
  // the token and joins afresh with the remembered ID (handleError).
  function sendJoin(id, auto) {
    autoJoin = auto;
    const token = load('sessionStorage', SESSION_KEY);
    resuming = Boolean(token);
    const resume = position === null ? { type: 'resume', token } : { type: 'resume', token, position };
    return send(token ? resume : { type: 'join', id });
  }

  let pendingLogin = null; // a login typed while the socket was not open: sent at `open`, then dropped
  function sendLogin(login) {
    loggingIn = true;
    autoJoin = false;
    return send({ type: 'login', id: login.id, password: login.password });
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    retryTimer = null;
    setState('connecting');
    const sock = new WebSocket(wsUrl());
    ws = sock;
    sock.addEventListener('open', () => {
      if (ws !== sock) return;
      bucket.reset();
      setState('connected');
      if (pendingLogin) { sendLogin(pendingLogin); pendingLogin = null; }
      else if (wantId) sendJoin(wantId, wantIdConfirmed);
      else attempt = 0;
    });
    sock.addEventListener('message', (e) => {
      if (ws !== sock) return;
      for (const line of String(e.data).split('\n')) {
        if (!line) continue;
        let ev;
        try { ev = JSON.parse(line); } catch (err) { continue; }
        if (ev && typeof ev === 'object') handle(ev);
      }
    });
    sock.addEventListener('close', () => {
      if (ws !== sock) return;
      ws = null;
      myId = null;
      failAllPending(t('reason:backend-unavailable'));
      setUsers([]);
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    // Capped exponential backoff with jitter: a restarted server is not stormed by every page at once.
    const ceiling = Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
    retryAt = performance.now() + delay * 1000;
    setState(connState === 'unavailable' ? 'unavailable' : 'disconnected');
    retryTimer = setTimeout(connect, delay * 1000);
    clearInterval(countdownTimer);
    countdownTimer = setInterval(() => {
      if (connState === 'disconnected' || connState === 'unavailable') renderState();
    }, 1000);
  }

  window.addEventListener('online', () => { if (!ws) connect(); });

  // ---------------------------------------------------------------- sent, pending, failed

  // Each message is followed by a ping; its pong means the gateway and the server took the message.
  // An error (or no_such_user) before that pong is the oldest pending message's.
  const pending = [];
  let ackSeq = 0;

  function ackPong(token) {
    const i = pending.findIndex((p) => p.token === token);
    if (i < 0) return false;
    for (const p of pending.splice(0, i + 1)) if (!p.failed) setSendState(p.li, 'sent');
    return true;
  }

  function failPending(reason) {
    const p = pending.find((q) => !q.failed);
    if (!p) return false;
    p.failed = true;
    setSendState(p.li, 'failed', reason);
    if (!input.value) input.value = p.line; // the text is never lost
    showNotice(t('not_sent', { reason }));
    return true;
  }

  function failAllPending(reason) {
    for (const p of pending.splice(0)) {
      if (p.failed) continue;
      setSendState(p.li, 'failed', reason);
      if (!input.value) input.value = p.line;
    }
  }

  // ---------------------------------------------------------------- events

  const isText = (v) => typeof v === 'string';

  function handle(ev) {
    if (counted.has(ev.type) && myId && position !== null) position += 1; // before anything can return
    switch (ev.type) {
      case 'status':
        if (ev.state === 'connected') {
          if (typeof ev.rate === 'number') { bucket.rate = ev.rate; bucket.burst = ev.burst || 1; bucket.reset(); }
          if (typeof ev.max_message === 'number') rules.max_message = ev.max_message;
          if (typeof ev.online === 'number') { online = ev.online; renderOnline(); }
        } else if (ev.state === 'disconnected') {
          setState(ev.reason === 'backend-unavailable' ? 'unavailable' : 'disconnected');
        } else if (ev.state === 'shutdown') {
          setState('shutdown');
        }
        break;
      case 'joined': {
        const again = autoJoin;
        myId = ev.id;
        wantId = ev.id;
        wantIdConfirmed = true;
        save('sessionStorage', ID_KEY, ev.id);
        if (!resuming) {
          joinedBy = loggingIn ? 'login' : 'guest';
          save('sessionStorage', JOINED_BY_KEY, joinedBy);
        } else if (joinedBy !== null) {
          joinedBy = 'resume'; // a resumed session may neither register nor change the password
          save('sessionStorage', JOINED_BY_KEY, joinedBy);
        }
        loggingIn = false;
        if (!resuming) position = 0; // a new session counts from its join
        resuming = false;
        attempt = 0;
        autoTries = 0;
        linkBack();
        view.newJoin();
        resetHistoryPaging(); // a fresh join's `page` then says how far back the server goes
        historyCutoff = lastServerTs;
        joinInput.value = '';
        if (again) { reconnectedAs = ev.id; renderState(); } else addNotice(t('joined'));
        autoJoin = false;
        showChat();
        break;
      }
      case 'session':
        if (isText(ev.token)) save('sessionStorage', SESSION_KEY, ev.token);
        break;
      case 'page': // after a join's history, and ending each page of older messages
        gotPage(ev);
        searchForm.hidden = false; // a server that pages also searches
        break;
      case 'older':
        if (older !== null && isText(ev.from) && isText(ev.text)) older.push({ from: ev.from, text: ev.text, ts: ev.ts, own: ev.from === myId });
        break;
      case 'found':
        if (found !== null && isText(ev.from) && isText(ev.text)) found.push({ from: ev.from, text: ev.text, ts: ev.ts });
        break;
      case 'searched':
        if (found !== null) showResults();
        break;
      case 'history': // on a fresh join: earlier messages, oldest first; on a rejoin only those not shown yet
        if (isText(ev.from) && isText(ev.text) && !shownBefore(ev)) {
          addMessage({ kind: 'all', from: ev.from, text: ev.text, ts: ev.ts, own: ev.from === myId, history: true,
            account: ev.account === true });
        }
        break;
      case 'resumed': // the missed events have been replayed: no join/leave noise, just the status
        if (!myId && wantId) { myId = wantId; autoJoin = false; showChat(); }
        reconnectedAs = myId;
        linkBack();
        renderState();
        resumePaging();
        break;
      case 'id_taken':
        if (autoJoin && autoTries < AUTO_JOIN_TRIES) {
          autoTries += 1; // our own old connection may not have left yet
          setTimeout(() => { if (!myId && wantId) sendJoin(wantId, true); }, 1000);
          break;
        }
        forgetId();
        showJoin(t('id_taken'));
        break;
      case 'left':
        addNotice(t('left'));
        online = Math.max(0, users.length - 1); // the room without us, as we last knew it
        myId = null;
        forgetId();
        setUsers([]);
        renderOnline();
        showJoin();
        break;
      case 'users':
        if (!Array.isArray(ev.ids)) break;
        setUsers(ev.ids);
        online = ev.ids.length;
        renderOnline();
        if (whoAsked) {
          whoAsked = false;
          addNotice([t('users_header'), ...ev.ids, '====================='].join('\n'));
        }
        break;
      case 'user_joined':
        if (!isText(ev.id)) break;
        if (ev.account === true) accountIds.add(ev.id);
        addUser(ev.id);
        addNotice(t('user_joined', { id: ev.id }));
        break;
      case 'user_left':
        if (!isText(ev.id)) break;
        removeUser(ev.id);
        addNotice(t('user_left', { id: ev.id }));
        break;
      case 'accounts': // which online IDs are accounts (after `users`, and after an account's join)
        if (!Array.isArray(ev.ids)) break;
        for (const id of ev.ids) if (isText(id)) accountIds.add(id);
        renderUsers();
        renderAccount();
        break;
      case 'registered':
        if (!isText(ev.id)) break;
        accountIds.add(ev.id);
        joinedBy = 'login';
        save('sessionStorage', JOINED_BY_KEY, joinedBy);
        accountError.hidden = true;
        addNotice(t('registered_notice', { id: ev.id }));
        renderUsers();
        renderAccount();
        break;
      case 'password_changed':
        accountError.hidden = true;
        addNotice(t('password_changed'));
        break;
      case 'message': {
        if (!isText(ev.from) || !isText(ev.text)) break;
        const m = addMessage({ kind: 'all', from: ev.from, text: ev.text, ts: ev.ts, account: ev.account === true });
        arrived(ev.from, ev.text, m.mentioned);
        break;
      }
      case 'whisper':
        if (!isText(ev.from) || !isText(ev.text)) break;
        addMessage({ kind: 'whisper', from: ev.from, text: ev.text, ts: ev.ts });
        arrived(ev.from, ev.text, true);
        break;
      case 'pong':
        ackPong(ev.token);
        break;
      case 'no_such_user':
        if (!failPending(t('no_such_user'))) showNotice(t('no_such_user'));
        break;
      case 'error':
        handleError(ev.reason, isText(ev.text) ? ev.text : '', ev);
        break;
      case 'notice': // from the server's operators, to everyone
        if (isText(ev.text)) addNotice(t('server_notice', { text: ev.text }));
        break;
      default:
        break; // anything newer than this page is ignored (PROTOCOL: unknown codes are ignored)
    }
  }

  // A rejoin's history repeats what this page already shows up to historyCutoff. Several messages
  // may share a millisecond, so at the cutoff itself the log is asked instead of the clock; your own
  // lines (shown with this browser's time) are looked up by text near the server's time.
  function shownBefore(ev) {
    if (typeof ev.ts !== 'number') return false;
    if (ev.from === myId && view.hasOwn(ev.text, ev.ts, OWN_SLACK_MS)) return true;
    if (ev.ts > historyCutoff) return false;
    if (ev.ts < historyCutoff) return true;
    return view.hasMessage(ev.ts, ev.from, ev.text);
  }

  function forgetId() {
    wantId = null;
    wantIdConfirmed = false;
    autoJoin = false;
    autoTries = 0;
    attempt = 0;
    save('sessionStorage', ID_KEY, null);
    save('sessionStorage', SESSION_KEY, null);
    save('sessionStorage', LOG_KEY, null);
    save('sessionStorage', POSITION_KEY, null);
    save('sessionStorage', PAGED_KEY, null);
    save('sessionStorage', JOINED_BY_KEY, null);
    joinedBy = null;
  }

  // Which rule an ID broke, in the page's language: the gateway names it (`rule`, and `char` when one
  // character is at fault); without it, the general rule.
  function idRuleText(ev) {
    const key = 'id_rule:' + ev.rule;
    if (!isText(ev.rule) || !(key in (strings[lang] || strings.en))) return t('id_invalid');
    return isText(ev.char) && /^U\+[0-9A-F]{4,6}$/.test(ev.char) ? `${t(key)} (${ev.char})` : t(key);
  }

  const LINK_REASONS = ['shutdown', 'unavailable', 'replaced', 'busy']; // about the connection, not a message

  const LOGIN_REASONS = ['bad-login', 'too-many-attempts', 'needs-tls', 'account-locked', 'login-busy', 'registered',
    'needs-login'];
  const ACCOUNT_REASONS = ['weak-password', 'already-registered', 'registration-closed', 'needs-login', 'login-busy',
    'needs-tls', 'unavailable'];

  // A refusal of a password, in the page's language (a weak password's RULE, a lockout's seconds).
  function passwordText(reason, text) {
    if (reason === 'too-many-attempts' && /^\d{1,9}$/.test(text)) return t('too_many_attempts', { seconds: text });
    if (reason === 'weak-password') {
      const key = 'password_rule:' + text.split(':')[0];
      if (key in (strings[lang] || strings.en)) return t(key);
    }
    return reasonText(reason);
  }

  function handleError(reason, text, ev) {
    if (!myId && (loggingIn || reason === 'registered') && LOGIN_REASONS.concat(['unavailable', 'bad-id', 'banned']).includes(reason)) {
      // A refused login (or a guest join of a registered ID): the welcome screen says why, by the login form.
      loggingIn = false;
      const why = reason === 'bad-id' ? idRuleText(ev) : passwordText(reason, text);
      if (reason === 'registered') {
        if (wantId) loginId.value = wantId; // e.g. a resume that expired: log in again
        forgetId();
        showJoin();
        showLoginError(reason === 'registered' && wantIdConfirmed ? t('relogin') : why);
        return;
      }
      showJoin();
      showLoginError(why);
      return;
    }
    if (myId && ACCOUNT_REASONS.includes(reason) && !$('account').hidden && accountPending) {
      accountPending = false;
      accountFail(passwordText(reason, text));
      return;
    }
    if (older !== null || found !== null) { // a page or a search the server refused: none comes
      if (reason === 'bad-cursor') cursor = '';
      older = null;
      found = null;
      renderMore();
    }
    if (reason === 'kicked' || reason === 'banned') {
      // An operator's decision: no automatic rejoin; their reason is their own words, so it is shown.
      forgetId();
      myId = null;
      setUsers([]);
      showJoin(text ? `${reasonText(reason)} (${text})` : reasonText(reason));
    } else if (reason === 'bad-token' || reason === 'gap') {
      // The session expired, passed its bound while away, or the position is older than the server keeps:
      // join afresh with the remembered ID, and say that what was said meanwhile may be missing.
      save('sessionStorage', SESSION_KEY, null);
      addNotice(t('resume_gap'));
      if (wantId) sendJoin(wantId, autoJoin);
    } else if (reason === 'backend-unavailable') {
      setState('unavailable'); // the status area says it, once; the log stays the conversation
    } else if (!myId && ['bad-id', 'busy', 'address-limit', 'not-joined', 'forbidden', 'flood'].includes(reason)) {
      forgetId();
      showJoin(reason === 'bad-id' ? idRuleText(ev) : reasonText(reason));
    } else {
      const why = reason === 'bad-id' ? idRuleText(ev) : reasonText(reason); // e.g. a whisper's target
      if (!failPending(why)) showNotice(why, 'error', LINK_REASONS.includes(reason) ? 'link' : '');
    }
  }

  // ---------------------------------------------------------------- input

  function validId(id) {
    const length = [...id].length;
    return length >= 1 && length <= rules.id_max && !idForbidden.test(id);
  }

  let accountPending = false; // a register or passwd was sent: its refusal goes under the account form

  loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = loginId.value.trim().normalize('NFC');
    const password = loginPassword.value;
    loginPassword.value = ''; // sent once, never kept
    if (!validId(id)) { showLoginError(t('id_invalid')); return; }
    if (!password) { showLoginError(t('password_empty')); return; }
    loginError.hidden = true;
    loginPassword.setAttribute('aria-invalid', 'false');
    if (!bucket.take(1)) { showLoginError(t('rate_limited')); return; }
    wantId = id;
    wantIdConfirmed = false;
    save('sessionStorage', SESSION_KEY, null);
    if (!sendLogin({ id, password }) && !ws) { pendingLogin = { id, password }; connect(); }
  });

  function passwordForm(form, first, second, type) {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const password = $(first).value;
      const again = $(second).value;
      clearPasswords();
      accountError.hidden = true;
      if (!password) { accountFail(t('password_empty')); return; }
      if (password !== again) { accountFail(t('password_mismatch')); return; }
      if (send({ type, password })) accountPending = true;
      else accountFail(t('not_connected'));
    });
  }
  passwordForm($('register-form'), 'register-password', 'register-again', 'register');
  passwordForm($('passwd-form'), 'passwd-password', 'passwd-again', 'passwd');

  joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = joinInput.value.trim().normalize('NFC');
    if (!validId(id)) {
      showJoin(t('id_invalid'));
      return;
    }
    joinError.hidden = true;
    joinInput.setAttribute('aria-invalid', 'false');
    if (!bucket.take(1)) {
      showJoin(t('rate_limited'));
      return;
    }
    wantId = id;
    wantIdConfirmed = false;
    save('sessionStorage', SESSION_KEY, null);
    if (!sendJoin(id, false) && !ws) connect(); // joins once connected
  });

  // The seed's commands: /m ID text, /b text, /q, /who; plain text goes to everyone.
  function parseCommand(line) {
    const m = /^\/m\s+(\S+)\s+([\s\S]*\S[\s\S]*)$/.exec(line);
    if (m) return { type: 'whisper', to: m[1], text: m[2] };
    if (/^\/m(\s|$)/.test(line)) return null;
    const b = /^\/b\s+([\s\S]*\S[\s\S]*)$/.exec(line);
    if (b) return { type: 'say', text: b[1] };
    if (/^\/b(\s|$)/.test(line)) return null;
    if (/^\/q\s*$/.test(line)) return { type: 'leave' };
    if (/^\/who\s*$/.test(line)) return { type: 'who' };
    if (line.startsWith('/')) return null;
    return { type: 'say', text: line };
  }

  // What the gateway would refuse, said before sending: the frame's size in UTF-8 bytes, control characters.
  function refusal(msg) {
    if (msg.type !== 'say' && msg.type !== 'whisper') return null;
    const text = msg.text.replace(/\r\n|\r|\n/g, ' '); // folded by the gateway
    if (messageForbidden.test(text)) return t('control_chars');
    const size = utf8.encode(text).length + utf8.encode(myId || '').length
      + (msg.type === 'say' ? rules.say_overhead : rules.whisper_overhead + utf8.encode(msg.to).length);
    if (size > rules.max_message) return t('too_long', { bytes: size, limit: rules.max_message });
    return null;
  }

  input.addEventListener('input', () => { if (!notice.hidden) hideNotice(); });

  sendForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const line = input.value;
    if (!line.trim()) return;
    if (!myId || !ws) {
      showNotice(t('not_connected'), 'error', 'link');
      return; // kept in the field
    }
    const msg = parseCommand(line);
    if (!msg) {
      showNotice(t('bad_input'));
      return;
    }
    const why = refusal(msg);
    if (why) {
      showNotice(why);
      return;
    }
    if (msg.type === 'leave') { leave(); input.value = ''; return; }
    const chat = msg.type === 'say' || msg.type === 'whisper';
    if (!bucket.take(1)) { // the ack ping below is the control budget's, not a message (PROTOCOL.md)
      showNotice(t('rate_limited'));
      return; // kept in the input: nothing is lost
    }
    if (!send(msg)) { showNotice(t('not_connected'), 'error', 'link'); return; }
    hideNotice();
    input.value = '';
    if (chat) {
      ackSeq += 1;
      const token = `ack-${ackSeq}`;
      send({ type: 'ping', token });
      const { li } = addMessage({
        kind: msg.type === 'say' ? 'all' : 'whisper', from: myId, text: msg.text.replace(/\r\n|\r|\n/g, ' '),
        own: true, to: msg.to, state: 'pending',
      });
      pending.push({ token, li, line, failed: false });
      toBottom();
    } else if (msg.type === 'who') {
      whoAsked = true;
    }
  });

  function leave() {
    if (bucket.take(1)) send({ type: 'leave' });
    else showNotice(t('rate_limited'));
  }

  // Leave sits apart from Send and asks first.
  const dialog = $('leave-dialog');
  $('leave').addEventListener('click', () => dialog.showModal());
  $('leave-cancel').addEventListener('click', () => dialog.close());
  $('leave-ok').addEventListener('click', () => { dialog.close(); leave(); });

  applyLang();
  showJoin();
  restoreLog();
  connect();
})();
