// hanchat's page: sessionStorage (this tab: its ID, resume token, kept log) and localStorage (this browser:
// language, notifications). Either may be off (private modes, policies): the page then just forgets.

export function load(store, key) {
  try { return window[store].getItem(key); } catch (e) { return null; }
}

export function save(store, key, value) {
  try {
    if (value === null) window[store].removeItem(key); else window[store].setItem(key, value);
  } catch (e) { /* storage off: the page still works, it just forgets */ }
}

export const session = {
  load: (key) => load('sessionStorage', key),
  save: (key, value) => save('sessionStorage', key, value),
};

export const local = {
  load: (key) => load('localStorage', key),
  save: (key, value) => save('localStorage', key, value),
};
