// hanchat's page: the two screens (welcome, chat) and their forms: join as a guest, log in, and the
// account tools' password forms. Each form checks what the gateway would refuse (the ID rule, the rate),
// then hands the rest to the reducer (actions.js). The page never keeps a password once it is sent.
import { validId } from './commands.js';

const PASSWORD_FIELDS = ['login-password', 'register-password', 'register-again', 'passwd-password', 'passwd-again'];

export function createForms(ctx) {
  const { $, i18n, dispatch, bucket, rules } = ctx;
  const { t } = i18n;
  const body = document.body;
  const joinInput = $('join-id');
  const joinError = $('join-error');
  const loginId = $('login-id');
  const loginPassword = $('login-password');
  const loginError = $('login-error');
  const accountError = $('account-error');

  function showJoin(errorText) {
    body.dataset.screen = 'join';
    $('welcome').hidden = false;
    $('chat').hidden = true;
    $('composer').hidden = true;
    $('leave').hidden = true;
    const { wantId } = ctx.state();
    if (wantId && !joinInput.value) joinInput.value = wantId;
    if (errorText) {
      joinError.textContent = errorText;
      joinError.hidden = false;
      joinInput.setAttribute('aria-invalid', 'true');
    }
    joinInput.focus();
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
    ctx.render('account');
    ctx.log.toBottom();
    $('message').focus();
  }

  function showLoginError(text) {
    loginError.textContent = text;
    loginError.hidden = false;
    loginPassword.setAttribute('aria-invalid', 'true');
    loginPassword.focus();
  }

  function setAccountError(text) {
    accountError.textContent = text || '';
    accountError.hidden = !text;
  }

  function clearPasswords() { for (const id of PASSWORD_FIELDS) $(id).value = ''; }

  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = joinInput.value.trim().normalize('NFC');
    if (!validId(id, rules)) { showJoin(t('id_invalid')); return; }
    joinError.hidden = true;
    joinInput.setAttribute('aria-invalid', 'false');
    if (!bucket.take(1)) { showJoin(t('rate_limited')); return; }
    dispatch({ type: 'ui:join', id });
  });

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = loginId.value.trim().normalize('NFC');
    const password = loginPassword.value;
    loginPassword.value = ''; // sent once, never kept
    if (!validId(id, rules)) { showLoginError(t('id_invalid')); return; }
    if (!password) { showLoginError(t('password_empty')); return; }
    loginError.hidden = true;
    loginPassword.setAttribute('aria-invalid', 'false');
    if (!bucket.take(1)) { showLoginError(t('rate_limited')); return; }
    dispatch({ type: 'ui:login', id, password });
  });

  function passwordForm(form, first, second, kind) {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const password = $(first).value;
      const again = $(second).value;
      clearPasswords();
      setAccountError(null);
      if (!password) { setAccountError(t('password_empty')); return; }
      if (password !== again) { setAccountError(t('password_mismatch')); return; }
      dispatch({ type: 'ui:password', kind, password });
    });
  }
  passwordForm($('register-form'), 'register-password', 'register-again', 'register');
  passwordForm($('passwd-form'), 'passwd-password', 'passwd-again', 'passwd');

  /** /register and /passwd typed in the composer: to the form that asks the password twice. */
  function focusPassword(kind) {
    const form = $(kind === 'register' ? 'register-form' : 'passwd-form');
    if (form.hidden) return false;
    $(kind === 'register' ? 'register-password' : 'passwd-password').focus();
    return true;
  }

  return {
    showJoin, showChat, showLoginError, setAccountError, focusPassword,
    clearJoinInput() { joinInput.value = ''; },
    setLoginId(id) { if (id) loginId.value = id; },
  };
}
