// hanchat's page: a message while the tab is hidden counts in the title; whispers and mentions raise a
// desktop notification (when allowed, asked only on the button's click) unless you are looking at the
// tab, other messages only while it is hidden.

export function createNotify(ctx) {
  const { $, i18n, local } = ctx;
  let on = local.load('hanchat.notify') === 'on';
  let unread = 0;
  const button = $('notify');
  const isHidden = () => document.visibilityState === 'hidden';
  const allowed = () => 'Notification' in window && Notification.permission === 'granted';

  document.addEventListener('visibilitychange', () => {
    if (!isHidden()) { unread = 0; ctx.status.renderTitle(); }
  });

  function render() {
    button.hidden = !('Notification' in window);
    const shown = on && allowed();
    button.setAttribute('aria-pressed', String(shown));
    button.textContent = i18n.t(shown ? 'notify_on' : 'notify');
  }

  button.addEventListener('click', async () => {
    if (on && Notification.permission === 'granted') {
      on = false;
    } else {
      on = (await Notification.requestPermission()) === 'granted'; // asked on this click, never unprompted
    }
    local.save('hanchat.notify', on ? 'on' : null);
    render();
  });

  function arrived(from, text, important) {
    if (from === ctx.state().myId) return; // a whisper to oneself (the seed allows it) is one's own message
    if (isHidden()) { unread += 1; ctx.status.renderTitle(); }
    const looking = !isHidden() && document.hasFocus();
    if (!on || looking || !allowed()) return;
    if (!important && !isHidden()) return;
    try {
      const note = new Notification(i18n.t('notify_title', { id: from }), {
        body: text, tag: important ? `hanchat-${from}` : 'hanchat', lang: i18n.lang,
      });
      note.addEventListener('click', () => { window.focus(); note.close(); });
    } catch (e) { /* some browsers only notify from a service worker */ }
  }

  return { render, arrived, unread: () => unread };
}
