// hanchat's page: the status area (the connection's state, a retry's countdown), the window title (unread
// count), the welcome screen's online count, and the composer's transient notices.

const NOTICE_MS = 8000;

export function createStatus(ctx) {
  const { $, i18n } = ctx;
  const notice = $('notice');
  let noticeTimer = null;

  function renderState() {
    const { conn, reconnectedAs } = ctx.state();
    $('state').dataset.state = conn === 'unavailable' ? 'disconnected' : conn;
    const seconds = Math.max(0, Math.ceil((ctx.conn.retryAt - performance.now()) / 1000));
    let text;
    if (conn === 'disconnected' || conn === 'unavailable') text = i18n.t('state_' + conn, { seconds });
    else if (conn === 'connected' && reconnectedAs) text = i18n.t('state_reconnected', { id: reconnectedAs });
    else text = i18n.t('state_' + conn);
    $('state-text').textContent = text;
  }

  function tick() { // each second while waiting to retry: the countdown
    const { conn } = ctx.state();
    if (conn === 'disconnected' || conn === 'unavailable') renderState();
  }

  function renderTitle() {
    const unread = ctx.unread();
    document.title = (unread > 0 ? `(${unread}) ` : '') + i18n.t('title') + ' · hanchat';
  }

  function renderOnline() {
    const { online } = ctx.state();
    const el = $('online');
    el.hidden = online === null;
    if (online !== null) el.textContent = i18n.t('online_count', { count: online });
  }

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

  return { renderState, tick, renderTitle, renderOnline, showNotice, hideNotice, linkBack, noticeShown: () => !notice.hidden };
}
