// hanchat's page: message text as DOM nodes — links as <a>, mentions as <mark> — and a colour per user.
// Pure helpers with no state; everything is built with DOM APIs, never from HTML strings. (An ES module.)
/** A stable colour class (c0…c7) per ID: FNV-1a over its code points. */
export function colourOf(id) {
  let h = 2166136261;
  for (const ch of id) h = Math.imul(h ^ ch.codePointAt(0), 16777619) >>> 0;
  return 'c' + (h % 8);
}

/** A <span class=…> holding text. */
export function span(className, text) {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  return el;
}

const LINK = /https?:\/\/[^\s]+/giu;
const CLOSERS = { ')': '(', ']': '[', '}': '{' };

/** The URL in a candidate, without the sentence's trailing punctuation; null unless http(s). */
function linkTarget(raw) {
  let url = raw;
  while (/[.,;:!?'"\])}>]$/u.test(url)) {
    const last = url.slice(-1);
    const open = CLOSERS[last];
    if (open && url.split(open).length >= url.split(last).length) break; // balanced: the URL's own
    url = url.slice(0, -1);
  }
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? url : null;
  } catch (e) {
    return null;
  }
}

/** A pattern for `id` as a word (Hangul particles may follow it: "민수님"); null without an ID. */
export function mentionPattern(id) {
  if (!id) return null;
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{Script=Latin}\\p{N}_])`, 'iu');
}

/** `text` as a fragment with links and mentions; `mentioned` says whether `mention` matched. */
export function richText(text, mention) {
  const frag = document.createDocumentFragment();
  let mentioned = false;
  const addPlain = (s) => {
    const m = mention && mention.exec(s);
    if (!m) { frag.append(s); return; }
    mentioned = true;
    frag.append(s.slice(0, m.index));
    const mark = document.createElement('mark');
    mark.textContent = m[0];
    frag.append(mark);
    addPlain(s.slice(m.index + m[0].length));
  };
  let last = 0;
  for (const m of text.matchAll(LINK)) {
    const url = linkTarget(m[0]);
    if (!url) continue;
    addPlain(text.slice(last, m.index));
    const a = document.createElement('a');
    a.href = url;
    a.textContent = url;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    frag.append(a);
    last = m.index + url.length;
  }
  addPlain(text.slice(last));
  return { frag, mentioned };
}
