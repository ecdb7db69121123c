// hanchat's page: one WebSocket to the gateway (JSON protocol in PROTOCOL.md).
// Every text reaches the DOM through textContent, never as HTML; every URL is relative,
// so the page works at / and under a proxy's path prefix alike.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const strings = JSON.parse($('page-strings').textContent);
  const body = document.body;

  const BACKOFF_BASE = 0.5; // seconds
  const BACKOFF_CAP = 10;
  const MAX_LOG = 500;

  // ---------------------------------------------------------------- language

  let lang = pickLang();

  function pickLang() {
    const params = new URLSearchParams(location.search);
    const asked = params.get('lang');
    if (asked && strings[asked]) return asked;
    try {
      const saved = localStorage.getItem('hanchat.lang');
      if (saved && strings[saved]) return saved;
    } catch (e) { /* storage may be off */ }
    return strings[body.dataset.lang] ? body.dataset.lang : 'en';
  }

  function t(key, fields) {
    const table = strings[lang] || strings.en;
    const template = key in table ? table[key] : key;
    return template.replace(/\{(\w+)\}/g, (m, name) => (fields && name in fields ? String(fields[name]) : m));
  }

  function applyLang() {
    document.documentElement.lang = lang;
    document.title = t('title');
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('[data-i18n-aria-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    }
    for (const b of document.querySelectorAll('[data-set-lang]')) {
      b.setAttribute('aria-pressed', String(b.dataset.setLang === lang));
    }
    renderState();
    renderUsers();
  }

  for (const b of document.querySelectorAll('[data-set-lang]')) {
    b.addEventListener('click', () => {
      lang = b.dataset.setLang;
      try { localStorage.setItem('hanchat.lang', lang); } catch (e) { /* ignore */ }
      applyLang();
    });
  }

  // ---------------------------------------------------------------- rate limit (the gateway's, mirrored)

  const bucket = {
    rate: Number(body.dataset.rate) || 0,
    burst: Number(body.dataset.burst) || 1,
    tokens: 0,
    stamp: 0,
    reset() { this.tokens = this.burst; this.stamp = performance.now(); },
    take() {
      if (this.rate <= 0) return true;
      const now = performance.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.stamp) / 1000) * this.rate);
      this.stamp = now;
      if (this.tokens >= 1) { this.tokens -= 1; return true; }
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
  let connState = 'connecting';
  let myId = null; // confirmed by the server (joined)
  let wantId = null; // the ID to (re)join with after a reconnect
  let wasJoined = false; // the next 'joined' is a rejoin
  let whoAsked = false;
  const users = [];

  const log = $('log');
  const joinForm = $('join-form');
  const joinInput = $('join-id');
  const joinError = $('join-error');
  const sendForm = $('send-form');
  const input = $('message');
  const notice = $('notice');
  let noticeTimer = null;

  // ---------------------------------------------------------------- rendering

  function setState(state) {
    connState = state;
    renderState();
  }

  function renderState() {
    const el = $('state');
    el.dataset.state = connState;
    let text;
    if (connState === 'disconnected') {
      const seconds = Math.max(0, Math.ceil((retryAt - performance.now()) / 1000));
      text = t('state_disconnected', { seconds });
    } else {
      text = t('state_' + connState);
    }
    $('state-text').textContent = text;
  }

  function addLine(kind, text) {
    const li = document.createElement('li');
    li.className = 'msg ' + kind;
    li.dataset.kind = kind;
    li.textContent = text;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.appendChild(li);
    while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; }, 5000);
  }

  function renderUsers() {
    const list = $('users');
    list.replaceChildren();
    for (const id of users) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'user' + (id === myId ? ' me' : '');
      b.textContent = id === myId ? `${id} (${t('me')})` : id;
      b.dataset.id = id;
      b.setAttribute('aria-label', t('whisper_to', { id }));
      b.addEventListener('click', () => whisperTo(id));
      li.appendChild(b);
      list.appendChild(li);
    }
  }

  function setUsers(ids) { users.splice(0, users.length, ...ids); renderUsers(); }
  function addUser(id) { if (!users.includes(id)) users.push(id); renderUsers(); }
  function removeUser(id) {
    const i = users.indexOf(id);
    if (i >= 0) users.splice(i, 1);
    renderUsers();
  }

  function whisperTo(id) {
    if (!myId) return;
    input.value = `/m ${id} `;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function showJoin(errorText) {
    sendForm.hidden = true;
    joinForm.hidden = false;
    if (errorText) {
      joinError.textContent = errorText;
      joinError.hidden = false;
      joinInput.setAttribute('aria-invalid', 'true');
    }
    joinInput.focus();
  }

  function showChat() {
    joinForm.hidden = true;
    joinError.hidden = true;
    joinInput.setAttribute('aria-invalid', 'false');
    sendForm.hidden = false;
    input.focus();
  }

  function errorText(ev) {
    const reason = t('reason:' + ev.reason);
    return t('error', { text: ev.text ? `${reason} (${ev.text})` : reason });
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
      if (wantId) {
        send({ type: 'join', id: wantId });
      } else {
        attempt = 0;
      }
    });
    sock.addEventListener('message', (e) => {
      if (ws !== sock) return;
      for (const line of String(e.data).split('\n')) {
        if (!line) continue;
        let ev;
        try { ev = JSON.parse(line); } catch (err) { continue; }
        handle(ev);
      }
    });
    sock.addEventListener('close', () => {
      if (ws !== sock) return;
      ws = null;
      if (myId) wasJoined = true;
      myId = null;
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
    setState('disconnected');
    retryTimer = setTimeout(connect, delay * 1000);
    clearInterval(countdownTimer);
    countdownTimer = setInterval(() => { if (connState === 'disconnected') renderState(); }, 1000);
  }

  window.addEventListener('online', () => { if (!ws) connect(); });

  function handle(ev) {
    switch (ev.type) {
      case 'status':
        if (ev.state === 'connected') {
          if (typeof ev.rate === 'number') { bucket.rate = ev.rate; bucket.burst = ev.burst || 1; bucket.reset(); }
        } else if (ev.state === 'disconnected') {
          setState('disconnected');
        } else if (ev.state === 'shutdown') {
          setState('shutdown');
          addLine('notice', t('state_shutdown'));
        }
        break;
      case 'joined':
        myId = ev.id;
        wantId = ev.id;
        attempt = 0;
        addLine('notice', wasJoined ? t('rejoined', { id: ev.id }) : t('joined'));
        wasJoined = false;
        showChat();
        break;
      case 'id_taken':
        attempt = 0;
        wantId = null;
        wasJoined = false;
        showJoin(t('id_taken'));
        break;
      case 'left':
        addLine('notice', t('left'));
        myId = null;
        wantId = null;
        setUsers([]);
        showJoin();
        break;
      case 'users':
        setUsers(ev.ids);
        if (whoAsked) {
          whoAsked = false;
          addLine('notice', [t('users_header'), ...ev.ids, '====================='].join('\n'));
        }
        break;
      case 'user_joined':
        addUser(ev.id);
        addLine('notice', t('user_joined', { id: ev.id }));
        break;
      case 'user_left':
        removeUser(ev.id);
        addLine('notice', t('user_left', { id: ev.id }));
        break;
      case 'message':
        addLine('all', t('message', { sender: ev.from, message: ev.text }));
        break;
      case 'whisper':
        addLine('whisper', t('whisper', { sender: ev.from, message: ev.text }));
        break;
      case 'no_such_user':
        addLine('error', `${t('no_such_user')} (${ev.to})`);
        break;
      case 'error':
        if (ev.reason === 'flood') {
          showNotice(t('rate_limited_short'));
          addLine('error', t('rate_limited_short'));
        } else if (!myId && ['bad-id', 'busy', 'not-joined', 'forbidden'].includes(ev.reason)) {
          attempt = 0;
          wantId = null;
          showJoin(ev.reason === 'bad-id' ? t('id_invalid') : errorText(ev));
        } else {
          addLine('error', errorText(ev));
        }
        break;
      default:
        break; // pong, and anything newer than this page
    }
  }

  // ---------------------------------------------------------------- input

  function validId(raw) {
    const id = raw.normalize('NFC');
    const length = [...id].length;
    return length >= 1 && length <= 32 && !/[#\s\p{C}\p{Z}]/u.test(id);
  }

  joinForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const id = joinInput.value.trim().normalize('NFC');
    if (!validId(id)) {
      showJoin(t('id_invalid'));
      return;
    }
    joinError.hidden = true;
    joinInput.setAttribute('aria-invalid', 'false');
    if (!bucket.take()) {
      showNotice(t('rate_limited_short'));
      return;
    }
    wantId = id;
    wasJoined = false;
    if (!send({ type: 'join', id }) && !ws) connect(); // joins once connected
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

  sendForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const line = input.value;
    if (!line.trim()) return;
    const msg = parseCommand(line);
    if (!msg) {
      addLine('error', t('bad_input'));
      return;
    }
    if (!bucket.take()) {
      showNotice(t('rate_limited', { message: line }));
      return; // kept in the input: nothing is lost
    }
    if (!send(msg)) return;
    input.value = '';
    if (msg.type === 'say') {
      addLine('own', t('message', { sender: myId, message: msg.text }));
    } else if (msg.type === 'whisper') {
      addLine('own whisper', t('you_whisper', { to: msg.to, message: msg.text }));
    } else if (msg.type === 'who') {
      whoAsked = true;
    }
  });

  $('leave').addEventListener('click', () => {
    if (bucket.take()) send({ type: 'leave' });
    else showNotice(t('rate_limited_short'));
  });

  applyLang();
  showJoin();
  connect();
})();
