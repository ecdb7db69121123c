// hanchat's page: the list of users online (yours first, accounts badged; a click starts a whisper) and
// the account tools beside it: "keep this ID" for a guest who joined here, "change password" after a
// login here (a resumed session may do neither; the server says so too).
import { colourOf, span } from './richtext.js';

export function createUsers(ctx) {
  const { $, i18n } = ctx;
  const input = $('message');

  function render() {
    const { users, myId, accounts } = ctx.state();
    const { t } = i18n;
    const list = $('users');
    const sorted = [...users].sort((a, b) => (a === myId ? -1 : b === myId ? 1 : a.localeCompare(b, i18n.lang)));
    list.replaceChildren();
    for (const id of sorted) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'user' + (id === myId ? ' me' : '');
      b.dataset.id = id;
      b.title = id;
      b.append(span('dot ' + (id === myId ? 'me' : colourOf(id)), ''));
      const name = span('name', id);
      name.dir = 'auto';
      b.append(name);
      if (id === myId) b.append(span('tag', t('me')));
      const isAccount = accounts.includes(id);
      if (isAccount) b.append(span('tag account', t('account_badge')));
      const who = isAccount ? `${id}, ${t('account_badge_label')}` : id;
      b.setAttribute('aria-label', id === myId ? `${who} (${t('me')})`
        : `${t('whisper_to', { id })}${isAccount ? `, ${t('account_badge_label')}` : ''}`);
      b.addEventListener('click', () => whisperTo(id));
      li.appendChild(b);
      list.appendChild(li);
    }
    $('users-title').textContent = t('users_count', { count: users.length });
  }

  function whisperTo(id) {
    const { myId } = ctx.state();
    if (!myId) return;
    input.value = id === myId ? '' : `/m ${id} `;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function renderAccount() {
    const { myId, joinedBy, accounts } = ctx.state();
    const mine = myId !== null;
    $('register-form').hidden = !(mine && joinedBy === 'guest' && !accounts.includes(myId));
    $('passwd-form').hidden = !(mine && joinedBy === 'login');
    $('account').hidden = $('register-form').hidden && $('passwd-form').hidden;
    $('register-id').value = myId || '';
    $('passwd-id').value = myId || '';
  }

  return { render, renderAccount };
}
