// hanchat's page: what the user typed in the composer, as a command. Pure (no DOM, no socket), and the
// same commands with the same meanings as the terminal client's chat_client/commands.py: a test
// (tests/test_page_tables.py) fails naming a command one has and the other lacks.

/** In the order the terminal client's /help lists them; /m, /b and /search take arguments. */
export const COMMANDS = ['/m', '/b', '/who', '/more', '/search', '/register', '/passwd', '/q', '/help'];

export const MIN_QUERY = 2; // characters a search needs (017)

/** Why a line cannot be sent: the terminal client's Problem names. */
export const PROBLEMS = ['hint', 'usage_m', 'usage_b', 'usage_search', 'bad_target', 'control_chars', 'too_long'];

const invalid = (problem, detail = '') => ({ type: 'invalid', problem, detail });
const blank = (text) => !text.trim();

/**
 * One typed line as a command: {type: 'say', text} | {type: 'whisper', to, text} | {type: 'leave'} |
 * {type: 'who'} | {type: 'more'} | {type: 'search', query} | {type: 'register'} | {type: 'passwd'} |
 * {type: 'help'} | {type: 'invalid', problem, detail}; null for a blank line (nothing to do).
 * `rules`: the gateway's (#page-strings): the ID rule and the forbidden characters. Messages are kept as
 * typed (inner and trailing spaces, `#`); the gateway folds line breaks.
 */
export function parseCommand(line, rules) {
  if (blank(line)) return null;
  if (!line.startsWith('/')) return checked({ type: 'say', text: line }, rules);
  const space = line.indexOf(' ');
  const word = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? '' : line.slice(space + 1);
  switch (word) {
    case '/m': {
      const args = rest.replace(/^ +/, '');
      const cut = args.indexOf(' ');
      const to = cut < 0 ? args : args.slice(0, cut);
      const text = cut < 0 ? '' : args.slice(cut + 1);
      if (!to || blank(text)) return invalid('usage_m');
      if (!validId(to, rules)) return invalid('bad_target', to);
      return checked({ type: 'whisper', to, text }, rules);
    }
    case '/b':
      return blank(rest) ? invalid('usage_b') : checked({ type: 'say', text: rest }, rules);
    case '/q': return { type: 'leave' };
    case '/who': return { type: 'who' };
    case '/more': return { type: 'more' };
    case '/search': {
      const query = rest.replace(/^ +| +$/g, '');
      if ([...query.normalize('NFC')].length < MIN_QUERY) return invalid('usage_search');
      if (forbidden(query, rules)) return invalid('control_chars');
      return { type: 'search', query };
    }
    case '/register': return { type: 'register' };
    case '/passwd': return { type: 'passwd' };
    case '/help': return { type: 'help' };
    default: return invalid('hint', word);
  }
}

function forbidden(text, rules) { return new RegExp(rules.message_forbidden, 'u').test(text); }

function checked(cmd, rules) { // the server would answer 109#malformed: say why before anything is sent
  return forbidden(cmd.text.replace(/\r\n|\r|\n/g, ' '), rules) ? invalid('control_chars') : cmd;
}

/** Whether `id` keeps the ID rule (the gateway's: length in code points, forbidden characters). */
export function validId(id, rules) {
  const length = [...id].length;
  return length >= 1 && length <= rules.id_max && !new RegExp(rules.id_forbidden, 'u').test(id);
}

const utf8 = new TextEncoder();

/**
 * A say or whisper the server would refuse for its length, as {type: 'invalid', problem: 'too_long', bytes, limit}; else
 * null. The frame's size in UTF-8 bytes, as the gateway will build it for `myId` (line breaks folded).
 */
export function tooLong(cmd, myId, rules) {
  if (cmd.type !== 'say' && cmd.type !== 'whisper') return null;
  const text = cmd.text.replace(/\r\n|\r|\n/g, ' ');
  const size = utf8.encode(text).length + utf8.encode(myId || '').length
    + (cmd.type === 'say' ? rules.say_overhead : rules.whisper_overhead + utf8.encode(cmd.to).length);
  return size > rules.max_message ? { ...invalid('too_long'), bytes: size, limit: rules.max_message } : null;
}
