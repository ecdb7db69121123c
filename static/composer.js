// hanchat's page: the composer. A typed line becomes a command (commands.js, the terminal client's
// commands and meanings); what the gateway would refuse (a usage, control characters, the frame's size,
// the rate) is said before anything is sent, and the text stays in the field. Leave asks first.
import { parseCommand, tooLong } from './commands.js';

const PROBLEM_TEXT = { // commands.js's problems, as the page's strings say them
  hint: 'bad_input', usage_m: 'bad_input', usage_b: 'bad_input', usage_search: 'search_short',
  bad_target: 'id_invalid', control_chars: 'control_chars', too_long: 'too_long',
};

export function createComposer(ctx) {
  const { $, i18n, dispatch, bucket, rules, status } = ctx;
  const { t } = i18n;
  const input = $('message');

  function leave() {
    if (bucket.take(1)) dispatch({ type: 'ui:send', cmd: { type: 'leave' } });
    else status.showNotice(t('rate_limited'));
  }

  /** A command that stays on the page: nothing to send (or sent by another part). */
  function local(cmd) {
    if (cmd.type === 'more') ctx.scrollback.askOlder();
    else if (cmd.type === 'search') ctx.scrollback.search(cmd.query);
    else if (cmd.type === 'help') ctx.log.addNotice(t('message_hint'));
    else if (!ctx.forms.focusPassword(cmd.type)) { status.showNotice(t('bad_input')); return; }
    input.value = '';
  }

  $('send-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const line = input.value;
    if (!line.trim()) return;
    const { myId, open } = ctx.state();
    if (!myId || !open) { status.showNotice(t('not_connected'), 'error', 'link'); return; } // kept in the field
    const cmd = parseCommand(line, rules);
    const why = cmd.type === 'invalid' ? cmd : tooLong(cmd, myId, rules);
    if (why) { status.showNotice(t(PROBLEM_TEXT[why.problem], { bytes: why.bytes, limit: why.limit })); return; }
    if (cmd.type === 'leave') { leave(); input.value = ''; return; }
    if (['more', 'search', 'help', 'register', 'passwd'].includes(cmd.type)) { local(cmd); return; }
    if (!bucket.take(1)) { status.showNotice(t('rate_limited')); return; } // the ack ping is the control budget's
    dispatch({ type: 'ui:send', cmd, line });
  });

  input.addEventListener('input', () => { if (status.noticeShown()) status.hideNotice(); });

  const dialog = $('leave-dialog');
  $('leave').addEventListener('click', () => dialog.showModal());
  $('leave-cancel').addEventListener('click', () => dialog.close());
  $('leave-ok').addEventListener('click', () => { dialog.close(); leave(); });

  return { input };
}
