// hanchat's page: the conversation log. Messages with their author set apart from the text, grouping,
// notices, the history divider, and scrolling: stay at the bottom when the reader is there, else count
// what arrived on a "N new ↓" button.
import { colourOf, richText, span } from './richtext.js';

/**
 * The log view over <ol id=log> and its jump button.
 * options: t (strings), time(ms) → {text, title}, maxLines, groupMs.
 */
export function createLog(log, jump, { t, time, maxLines, groupMs }) {
  let stick = true; // the reader is at the bottom: new lines keep them there
  let unseen = 0;
  let divider = null; // history goes above a divider made at the first history event after each join
  let joinNotice = null; // the notice that says you joined: history and its divider go above it
  let joining = false; // between a join and its first live message

  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 4; }

  function renderJump() {
    jump.hidden = unseen === 0;
    jump.textContent = t('new_messages', { count: unseen });
  }

  function toBottom() {
    log.scrollTop = log.scrollHeight;
    stick = true;
    unseen = 0;
    renderJump();
  }

  // A reader stops following only by moving up. A scroll event that comes while the log has just
  // shrunk (a notice, the phone's keyboard) finds it "not at the bottom" before the ResizeObserver
  // below puts it back there: that is no reason to stop following.
  let lastTop = 0;
  log.addEventListener('scroll', () => {
    stick = atBottom() || (stick && log.scrollTop >= lastTop);
    lastTop = log.scrollTop;
    if (stick && unseen) { unseen = 0; renderJump(); }
  });
  jump.addEventListener('click', () => { toBottom(); log.focus(); });
  // The log shrinks when a notice or the phone's keyboard appears: a reader at the bottom stays there.
  new ResizeObserver(() => { if (stick) log.scrollTop = log.scrollHeight; }).observe(log);

  function append(li, counts) {
    log.appendChild(li);
    while (log.childElementCount > maxLines) {
      log.firstElementChild.remove();
      if (log.firstElementChild) log.firstElementChild.classList.remove('cont');
    }
    if (stick) {
      log.scrollTop = log.scrollHeight;
    } else if (counts) {
      unseen += 1;
      renderJump();
    }
  }

  function timeEl(ms) {
    const el = document.createElement('time');
    const shown = time(ms);
    el.dateTime = new Date(ms).toISOString();
    el.title = shown.title;
    el.textContent = shown.text;
    return el;
  }

  function historyDivider() {
    if (!divider) {
      divider = document.createElement('li');
      divider.className = 'line divider';
      divider.dataset.kind = 'divider';
      divider.append(span('', t('earlier_messages')));
      if (joinNotice && joinNotice.isConnected) log.insertBefore(divider, joinNotice);
      else append(divider, false);
    }
    return divider;
  }

  /**
   * One message: a header (author, whisper badge, time) apart from the text. `ts` is the server's
   * time when the event carried one, else now; `mention` a pattern for your ID (null for your own).
   */
  function addMessage({ kind, from, text, ts, own, to, history, state, mention, account }) {
    const { li, rich, when } = messageItem({ kind, from, text, ts, own, to, state, mention, account });

    // Grouped under the previous header: same author, kind, direction and recipient, within groupMs.
    const prev = history ? historyDivider().previousElementSibling : log.lastElementChild;
    if (prev && prev.classList.contains('msg') && prev.dataset.from === from && prev.dataset.kind === kind
        && prev.dataset.own === li.dataset.own && prev.dataset.to === li.dataset.to
        && when - Number(prev.dataset.ts) < groupMs && !rich.mentioned) {
      li.classList.add('cont');
    }
    if (history) {
      log.insertBefore(li, historyDivider());
      if (stick) log.scrollTop = log.scrollHeight;
    } else {
      joining = false;
      append(li, true);
    }
    return { li, mentioned: rich.mentioned };
  }

  /** One message's <li> (a header apart from the text), not yet placed anywhere. */
  function messageItem({ kind, from, text, ts, own, to, state, mention, account }) {
    const li = document.createElement('li');
    li.className = 'msg';
    li.dataset.kind = kind;
    li.dataset.from = from;
    if (own) { li.classList.add('own'); li.dataset.own = 'true'; }
    if (state) li.dataset.state = state;
    if (to) li.dataset.to = to;
    const when = typeof ts === 'number' && Number.isFinite(ts) ? ts : Date.now();
    li.dataset.ts = String(when);

    const meta = document.createElement('div');
    meta.className = 'meta';
    const author = span('author ' + (own ? 'me' : colourOf(from)), from);
    author.dir = 'auto';
    author.title = from;
    meta.append(author);
    if (account) { // an account's message (the server says so; never the page's guess)
      const badge = span('badge account', t('account_badge'));
      badge.title = t('account_badge_label');
      meta.append(badge);
    }
    if (kind === 'whisper') {
      meta.append(span('badge', own ? t('whisper_to_label', { id: to }) : t('whisper_from', { id: from })));
    }
    meta.append(timeEl(when));
    li.append(meta);

    const body = document.createElement('div');
    body.className = 'text';
    body.dir = 'auto';
    const rich = richText(text, mention);
    body.append(rich.frag);
    li.append(body);
    if (own) li.append(span('send-state', state === 'pending' ? t('pending') : ''));
    if (rich.mentioned) li.classList.add('mention');
    return { li, rich, when };
  }

  /**
   * Older messages from the server's store (oldest first), above everything shown: the reader's place
   * does not move. `atStart`: nothing is older, which the top of the log then says.
   */
  function addOlder(msgs, atStart) {
    const before = log.scrollHeight;
    const frag = document.createDocumentFragment();
    for (const m of msgs) {
      const { li } = messageItem({ kind: 'all', ...m });
      li.dataset.older = 'true';
      frag.append(li);
    }
    if (atStart && !log.querySelector('li[data-kind="start"]')) {
      const start = document.createElement('li');
      start.className = 'line notice';
      start.dataset.kind = 'start';
      start.textContent = t('no_earlier');
      frag.prepend(start);
    }
    log.insertBefore(frag, log.firstElementChild);
    log.scrollTop += log.scrollHeight - before;
  }

  function addNotice(text) {
    const li = document.createElement('li');
    li.className = 'line notice';
    li.dataset.kind = 'notice';
    li.textContent = text;
    append(li, false);
    if (joining && !joinNotice) joinNotice = li;
  }

  function setSendState(li, state, reason) {
    li.dataset.state = state;
    li.querySelector('.send-state').textContent = state === 'failed' ? `${t('failed')}: ${reason}` : '';
  }

  /** A join begins: its history gets a divider of its own, above the notice that follows (if any). */
  function newJoin() {
    divider = null;
    joinNotice = null;
    joining = true;
  }

  /** Whether the log shows a message with this server time, author and text (a rejoin's history). */
  function hasMessage(ts, from, text) {
    for (const li of log.querySelectorAll(`li.msg[data-ts="${Number(ts)}"]`)) {
      if (li.dataset.from === from && li.querySelector('.text').textContent === text) return true;
    }
    return false;
  }

  /**
   * Whether the log shows your own line with this text, sent within `slackMs` of `ts`: your lines carry
   * this browser's time (the server does not echo them), so a history event is matched by text and time.
   */
  function hasOwn(text, ts, slackMs) {
    for (const li of log.querySelectorAll('li.msg.own')) {
      if (li.dataset.state === 'failed' || li.dataset.state === 'pending') continue;
      if (Math.abs(Number(li.dataset.ts) - ts) < slackMs && li.querySelector('.text').textContent === text) {
        return true;
      }
    }
    return false;
  }

  return { addMessage, addOlder, messageItem, addNotice, setSendState, toBottom, hasMessage, hasOwn, newJoin };
}
