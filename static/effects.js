// hanchat's page: the reducers' effects (protocol.js, actions.js), applied to the socket, the storage and
// the views. Each effect is [name, ...args]; the names are the reducers' whole vocabulary.
import { mentionPattern } from './richtext.js';

const KEEP = 200; // messages kept for a reload (keptLog)

export function createEffects(ctx) {
  const { i18n, conn, session, bucket, rules } = ctx;
  const say = (desc) => i18n.say(desc);
  const pending = new Map(); // ack token → {li, line} of your message awaiting its pong
  const kept = []; // {msg, li} of each message shown, newest last

  function addMessage(msg) {
    const { myId, wantId } = ctx.state();
    const shown = ctx.log.addMessage({ ...msg, mention: msg.own ? null : mentionPattern(myId || wantId) });
    kept.push({ msg: { ...msg, ts: Number(shown.li.dataset.ts), state: undefined }, li: shown.li });
    if (kept.length > KEEP) kept.splice(0, kept.length - KEEP);
    return shown;
  }

  function failed(token, why) {
    const p = pending.get(token);
    if (!p) return;
    pending.delete(token);
    ctx.log.setSendState(p.li, 'failed', say(why));
    if (!ctx.composer.input.value) ctx.composer.input.value = p.line; // the text is never lost
  }

  const APPLY = {
    send(msg) { conn.send(msg); },
    save(key, value) { session.save(key, value); },
    render(...names) { for (const name of names) ctx.render(name); },
    notice(desc) { ctx.log.addNotice(say(desc)); },
    message(msg, notify) {
      const shown = addMessage(msg);
      if (notify) ctx.notify.arrived(msg.from, msg.text, notify === 'always' || shown.mentioned);
    },
    own(msg, token, line) {
      const { li } = addMessage(msg);
      pending.set(token, { li, line });
      ctx.log.toBottom();
    },
    sent(tokens) {
      for (const token of tokens) {
        const p = pending.get(token);
        if (p) ctx.log.setSendState(p.li, 'sent');
        pending.delete(token);
      }
    },
    failed,
    older(msgs, atStart) { ctx.log.addOlder(msgs, atStart); },
    results(list, query) { ctx.scrollback.showResults(list, query); },
    search_form() { ctx.scrollback.showForm(); },
    new_join() { ctx.log.newJoin(); },
    clear_join_input() { ctx.forms.clearJoinInput(); },
    clear_input() { ctx.status.hideNotice(); ctx.composer.input.value = ''; },
    chat() { ctx.forms.showChat(); },
    join(desc) { ctx.forms.showJoin(desc ? say(desc) : undefined); },
    login_id(id) { ctx.forms.setLoginId(id); },
    login_error(desc) { ctx.forms.showLoginError(say(desc)); },
    account_error(desc) { ctx.forms.setAccountError(desc ? say(desc) : null); },
    toast(desc, kind, about) { ctx.status.showNotice(say(desc), kind, about); },
    link_back() { ctx.status.linkBack(); },
    who(ids) { ctx.log.addNotice([i18n.t('users_header'), ...ids, '====================='].join('\n')); },
    later(ms, event) { setTimeout(() => ctx.dispatch(event), ms); },
    reconnect(attempt) { conn.retry(attempt); },
    connect() { conn.connectIfIdle(); },
    bucket_reset() { bucket.reset(); },
    limits(limits) {
      if ('rate' in limits) { bucket.rate = limits.rate; bucket.burst = limits.burst; bucket.reset(); }
      if ('max_message' in limits) rules.max_message = limits.max_message;
    },
  };

  function apply([name, ...args]) {
    if (!Object.hasOwn(APPLY, name)) throw new Error(`no such effect: ${name}`);
    APPLY[name](...args);
  }

  /** The messages shown (your own once the server took them), for a reload that resumes to show them again. */
  function keptMessages() {
    return kept.filter((k) => k.li.isConnected && (!k.li.dataset.state || k.li.dataset.state === 'sent')).map((k) => k.msg);
  }

  return { apply, keptMessages, EFFECTS: Object.keys(APPLY) };
}
