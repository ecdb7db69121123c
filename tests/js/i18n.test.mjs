// The page's texts (static/i18n.js): the reducers' descriptors in the reader's language.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createI18n, pickLang } from '../../static/i18n.js';

const STRINGS = {
  en: {
    not_sent: 'Not sent: {reason}', no_such_user: 'No such user', 'reason:kicked': 'Removed',
    'id_rule:hash': 'No #', id_invalid: 'Bad ID', too_many_attempts: 'Wait {seconds} s',
    'password_rule:length': 'Too short', 'reason:weak-password': 'Weak',
  },
  ko: { no_such_user: '없는 사용자' },
};

test('descriptors become text, nested ones too', () => {
  const i18n = createI18n(STRINGS, 'en');
  assert.equal(i18n.say({ key: 'not_sent', fields: { reason: { key: 'no_such_user' } } }), 'Not sent: No such user');
  assert.equal(i18n.say({ reason: 'kicked', detail: 'spam' }), 'Removed (spam)');
  assert.equal(i18n.say({ idRule: { rule: 'hash', char: 'U+0023' } }), 'No # (U+0023)');
  assert.equal(i18n.say({ idRule: { rule: 'hash', char: '<b>' } }), 'No #');
  assert.equal(i18n.say({ idRule: { rule: 'unknown' } }), 'Bad ID');
  assert.equal(i18n.say({ password: { reason: 'too-many-attempts', text: '30' } }), 'Wait 30 s');
  assert.equal(i18n.say({ password: { reason: 'weak-password', text: 'length:8' } }), 'Too short');
  assert.equal(i18n.say({ password: { reason: 'weak-password', text: 'other' } }), 'Weak');
  i18n.lang = 'ko';
  assert.equal(i18n.say({ key: 'no_such_user' }), '없는 사용자');
});

test('the language: asked, else saved, else the page\'s, else English', () => {
  assert.equal(pickLang(STRINGS, 'ko', 'en', 'en'), 'ko');
  assert.equal(pickLang(STRINGS, 'xx', 'ko', 'en'), 'ko');
  assert.equal(pickLang(STRINGS, null, null, 'ko'), 'ko');
  assert.equal(pickLang(STRINGS, null, 'fr', 'de'), 'en');
});
