// The composer's parser (static/commands.js): the terminal client's commands and meanings, as a table.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { COMMANDS, parseCommand, tooLong, validId } from '../../static/commands.js';

// The gateway's rules as the page gets them (web_gateway/i18n.py page_rules), cut to what parsing needs.
const RULES = {
  id_max: 32, id_forbidden: '[\\s#\\p{Cc}\\p{Cf}]', message_forbidden: '[\\p{Cc}]',
  max_message: 100, say_overhead: 6, whisper_overhead: 7,
};
const parse = (line) => parseCommand(line, RULES);
const bad = (problem, detail = '') => ({ type: 'invalid', problem, detail });

test('each input as the terminal client reads it', () => {
  const table = [
    ['hello', { type: 'say', text: 'hello' }],
    ['  spaced  # kept ', { type: 'say', text: '  spaced  # kept ' }],
    ['/b hi all', { type: 'say', text: 'hi all' }],
    ['/b   inner  spaces ', { type: 'say', text: '  inner  spaces ' }],
    ['/m bob hi there', { type: 'whisper', to: 'bob', text: 'hi there' }],
    ['/m   bob  two', { type: 'whisper', to: 'bob', text: ' two' }],
    ['/m 민수 안녕', { type: 'whisper', to: '민수', text: '안녕' }],
    ['/q', { type: 'leave' }],
    ['/q now', { type: 'leave' }],
    ['/who', { type: 'who' }],
    ['/more', { type: 'more' }],
    ['/search  two words ', { type: 'search', query: 'two words' }],
    ['/register', { type: 'register' }],
    ['/passwd', { type: 'passwd' }],
    ['/help', { type: 'help' }],
  ];
  for (const [line, want] of table) assert.deepEqual(parse(line), want, line);
});

test('malformed lines say what is wrong', () => {
  const table = [
    ['/m', bad('usage_m')],
    ['/m bob', bad('usage_m')],
    ['/m bob   ', bad('usage_m')],
    ['/m a#b hi', bad('bad_target', 'a#b')],
    ['/b', bad('usage_b')],
    ['/b    ', bad('usage_b')],
    ['/search a', bad('usage_search')],
    ['/search', bad('usage_search')],
    ['/search a\u0007b', bad('control_chars')],
    ['bell \u0007', bad('control_chars')],
    ['/m bob \u0000', bad('control_chars')],
    ['/nope x', bad('hint', '/nope')],
    ['/mbob hi', bad('hint', '/mbob')],
    ['/', bad('hint', '/')],
  ];
  for (const [line, want] of table) assert.deepEqual(parse(line), want, JSON.stringify(line));
});

test('a blank line is nothing to do', () => {
  for (const line of ['', '   ', '\t']) assert.equal(parse(line), null);
});

test('line breaks are folded by the gateway, so they are not refused', () => {
  assert.deepEqual(parse('one\ntwo'), { type: 'say', text: 'one\ntwo' });
});

test('the command list is the terminal client\'s, in its order', () => {
  assert.deepEqual(COMMANDS, ['/m', '/b', '/who', '/more', '/search', '/register', '/passwd', '/q', '/help']);
  for (const command of COMMANDS) assert.notEqual(parse(`${command} ab cd`).problem, 'hint', command);
});

test('the frame size is counted in UTF-8 bytes with the ID and the overhead', () => {
  assert.equal(tooLong({ type: 'say', text: 'a'.repeat(89) }, 'alice', RULES), null); // 89 + 5 + 6 = 100
  assert.deepEqual(tooLong({ type: 'say', text: 'a'.repeat(90) }, 'alice', RULES),
    { type: 'invalid', problem: 'too_long', detail: '', bytes: 101, limit: 100 });
  assert.equal(tooLong({ type: 'say', text: '가'.repeat(30) }, 'alice', RULES).bytes, 90 + 5 + 6);
  assert.equal(tooLong({ type: 'whisper', to: 'bob', text: 'x'.repeat(85) }, 'alice', RULES), null);
  assert.equal(tooLong({ type: 'who' }, 'alice', RULES), null);
});

test('the ID rule', () => {
  assert.ok(validId('alice', RULES));
  assert.ok(validId('민'.repeat(32), RULES));
  for (const id of ['', 'a b', 'a#b', 'x'.repeat(33), 'a\u200bb']) assert.ok(!validId(id, RULES), id);
});
