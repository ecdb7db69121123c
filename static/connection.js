// hanchat's page: its one WebSocket to the gateway (same origin, relative URL: works at / and under a
// proxy's prefix). It opens, parses each line of each message as one JSON event, and after a close waits
// a capped exponential backoff with jitter before the next try. What an event means is protocol.js's.

export const BACKOFF_BASE = 0.5; // seconds
export const BACKOFF_CAP = 10;

/** Seconds before try number `attempt` (0, 1, …): half the ceiling, plus up to half again at random. */
export function backoffDelay(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}

/** The events in one WebSocket message: one JSON object a line; anything else is skipped. */
export function parseEvents(data) {
  const events = [];
  for (const line of String(data).split('\n')) {
    if (!line) continue;
    let ev;
    try { ev = JSON.parse(line); } catch (err) { continue; }
    if (ev && typeof ev === 'object' && !Array.isArray(ev)) events.push(ev);
  }
  return events;
}

/** The `ws` URL beside the page (wss: under https:). */
export function wsUrl(href) {
  const url = new URL('ws', href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}

/**
 * The connection. `on`: open(), event(ev), close(), tick() (each second while waiting to retry, for the
 * countdown). `retryAt` is when the next try starts (performance.now() ms).
 */
export function createConnection(url, on) {
  let ws = null;
  let retryTimer = null;
  let countdown = null;
  const conn = { retryAt: 0 };

  conn.connect = () => {
    clearTimeout(retryTimer);
    clearInterval(countdown);
    retryTimer = null;
    const sock = new WebSocket(url);
    ws = sock;
    sock.addEventListener('open', () => { if (ws === sock) on.open(); });
    sock.addEventListener('message', (e) => {
      if (ws !== sock) return;
      for (const ev of parseEvents(e.data)) on.event(ev);
    });
    sock.addEventListener('close', () => {
      if (ws !== sock) return;
      ws = null;
      on.close();
    });
  };

  /** Connects unless a socket is open or opening. */
  conn.connectIfIdle = () => { if (!ws) conn.connect(); };

  /** Sends one event; false when the socket is not open (nothing was sent). */
  conn.send = (msg) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  };

  /** After a close: the next try in backoffDelay(attempt) seconds, with a countdown each second. */
  conn.retry = (attempt) => {
    const delay = backoffDelay(attempt);
    conn.retryAt = performance.now() + delay * 1000;
    retryTimer = setTimeout(conn.connect, delay * 1000);
    clearInterval(countdown);
    countdown = setInterval(on.tick, 1000);
  };

  return conn;
}
