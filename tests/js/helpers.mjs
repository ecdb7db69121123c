// Shared by the page's unit tests: a state after some events, and the effects of one more.
import { reduce } from '../../static/actions.js';
import { initialState } from '../../static/protocol.js';

export const COUNTED = ['user_joined', 'user_left', 'message', 'whisper', 'notice'];
export const SENTENCES = { room_listed: 'room_listed', rooms_listed: 'rooms_listed', joined: 'joined' }; // as rules.sentences

/** The state after `events` from a fresh tab (`saved`: what sessionStorage kept). */
export function after(events, saved = {}) {
  let state = initialState(saved, COUNTED, SENTENCES);
  for (const ev of events) state = reduce(state, ev).state;
  return state;
}

/** A tab whose socket is open and which joined as `id` (a guest). */
export function joined(id = 'alice', more = []) {
  return after([{ type: '@open' }, { type: 'ui:join', id }, { type: 'joined', id }, ...more]);
}

/** The effects named `name` among `effects`. */
export const named = (effects, name) => effects.filter((fx) => fx[0] === name);

/** The messages sent (the `send` effects' payloads). */
export const sent = (effects) => named(effects, 'send').map((fx) => fx[1]);

export { reduce };
