// hanchat's page: scrollback and search (016, 017). A join's `page` event says how to page further back;
// reaching the top of the log, or the button there, asks for the page before the oldest message shown.
// A search's `found` events are listed beside the users, apart from the log. The asking and the
// counting are protocol.js's and actions.js's; this is the buttons, the form and the list.
import { MIN_QUERY } from './commands.js';

export const MAX_LOG = 500; // lines the log keeps: past that it asks for no older page

export function createScrollback(ctx) {
  const { $, i18n, dispatch } = ctx;
  const log = $('log');
  const more = $('more');
  const form = $('search-form');
  const input = $('search');
  const results = $('results');

  const full = () => log.childElementCount >= MAX_LOG;

  function renderMore() {
    const { cursor, older } = ctx.state();
    more.hidden = !cursor || older !== null || full();
  }

  function askOlder() { dispatch({ type: 'ui:older', full: full() }); }

  /** A search, from the form or /search: false when the query is too short to ask. */
  function search(query) {
    if ([...query.normalize('NFC')].length < MIN_QUERY) return false;
    dispatch({ type: 'ui:search', query });
    return true;
  }

  function showResults(list, query) {
    const { myId } = ctx.state();
    $('results-list').replaceChildren(...list.map((m) => {
      const { li } = ctx.log.messageItem({ kind: 'all', from: m.from, text: m.text, ts: m.ts, own: m.from === myId });
      return li;
    }));
    $('results-title').textContent = i18n.t('search_results', { count: list.length, query });
    results.hidden = false;
  }

  more.addEventListener('click', askOlder);
  log.addEventListener('scroll', () => { if (log.scrollTop < 48) askOlder(); });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!search(input.value.trim())) ctx.status.showNotice(i18n.t('search_short'));
  });
  $('results-close').addEventListener('click', () => { results.hidden = true; input.focus(); });

  return { renderMore, askOlder, search, showResults, showForm() { form.hidden = false; } };
}
