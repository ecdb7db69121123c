// hanchat's page: its texts in the reader's language. The strings (Korean and English) come from the
// gateway (web_gateway/i18n.py) in #page-strings, never copies; the reducers (protocol.js, actions.js)
// speak in descriptors that `say` turns into text: {key, fields} (fields may hold descriptors),
// {reason, detail} (a refusal's reason), {idRule: {rule, char}} (which ID rule), {password: {reason, text}}.

export function createI18n(strings, lang) {
  const i18n = {
    lang: strings[lang] ? lang : 'en',
    has(key) { return key in (strings[i18n.lang] || strings.en); },
    t(key, fields) {
      const table = strings[i18n.lang] || strings.en;
      const template = key in table ? table[key] : key;
      return template.replace(/\{(\w+)\}/g, (m, name) => (fields && name in fields ? String(fields[name]) : m));
    },
    say(desc) {
      if (typeof desc === 'string') return desc;
      if (!desc) return '';
      if (desc.idRule) return idRuleText(desc.idRule);
      if (desc.password) return passwordText(desc.password.reason, desc.password.text);
      if (desc.reason) { // the gateway's `text` is English: not shown; an operator's reason is their own words
        const why = i18n.t('reason:' + desc.reason);
        return desc.detail ? `${why} (${desc.detail})` : why;
      }
      const fields = {};
      for (const [name, value] of Object.entries(desc.fields || {})) {
        fields[name] = value && typeof value === 'object' ? i18n.say(value) : value;
      }
      return i18n.t(desc.key, fields);
    },
  };

  // Which rule an ID broke: the gateway names it (`rule`, and `char` when one character is at fault).
  function idRuleText({ rule, char }) {
    const key = 'id_rule:' + rule;
    if (typeof rule !== 'string' || !i18n.has(key)) return i18n.t('id_invalid');
    return typeof char === 'string' && /^U\+[0-9A-F]{4,6}$/.test(char) ? `${i18n.t(key)} (${char})` : i18n.t(key);
  }

  // A refusal of a password (a weak password's RULE, a lockout's seconds).
  function passwordText(reason, text) {
    if (reason === 'too-many-attempts' && /^\d{1,9}$/.test(text)) return i18n.t('too_many_attempts', { seconds: text });
    if (reason === 'weak-password') {
      const key = 'password_rule:' + text.split(':')[0];
      if (i18n.has(key)) return i18n.t(key);
    }
    return i18n.t('reason:' + reason);
  }

  return i18n;
}

/** The language: ?lang=, else the one chosen before, else the page's (Accept-Language), else English. */
export function pickLang(strings, asked, saved, pageLang) {
  if (asked && strings[asked]) return asked;
  if (saved && strings[saved]) return saved;
  return strings[pageLang] ? pageLang : 'en';
}

/** Every element marked data-i18n, data-i18n-aria-label, data-i18n-placeholder, and the language buttons. */
export function applyStatic(doc, i18n) {
  doc.documentElement.lang = i18n.lang;
  for (const el of doc.querySelectorAll('[data-i18n]')) el.textContent = i18n.t(el.dataset.i18n);
  for (const el of doc.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', i18n.t(el.dataset.i18nAriaLabel));
  for (const el of doc.querySelectorAll('[data-i18n-placeholder]')) {
    el.setAttribute('placeholder', i18n.t(el.dataset.i18nPlaceholder));
  }
  for (const b of doc.querySelectorAll('[data-set-lang]')) b.setAttribute('aria-pressed', String(b.dataset.setLang === i18n.lang));
}
