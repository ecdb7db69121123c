"""The Lua scripts of the shared room: each is one atomic step in Redis.

Why scripts: a claim must take the ID, record its join order and its node, and
announce the ``103`` in one step, so that every node's roster (kept from the
one room channel) has the same order as the directory's ``107``; a dead node's
users must be removed and announced exactly once, whichever node notices.

Keys (``P`` is the prefix): ``P names`` (hash ID key -> ID), ``P owner`` (hash
ID key -> node), ``P order`` (sorted set of IDs by join number), ``P seq`` (the
join counter), ``P nodes`` (set of node IDs), ``P epoch`` (made by the first
node to meet this Redis's state), ``P alive:NODE`` (heartbeat, with a TTL),
``P users:NODE`` (set of the ID keys a node holds). The room channel
``P room`` carries ``IDS TS JSON``: IDS are the logged events' entries in the room
log stream, comma-separated, in order (``-`` when none is logged: whispers, or no
log), TS the publish time (Redis's
clock, epoch seconds with microseconds: the bus-lag metric), JSON is
``["m", exclude, sender, text, ts]`` (``, 1]`` after ts: an account's message), ``["w", key, sender, text, ts]``,
``["n", text]`` (an operator's notice), ``["x", key, node, ref]`` (a session resumed
on ``node``; ``ref``: the taker's, see ``Subscriber.entered``), ``["b"]`` (the bans
changed: reload ``P bans``), ``["u"]`` (the mutes changed: reload ``P mutes``),
``["k", key, reason]`` (an operator kicked ``key``: its node removes it), ``["a", key, name]`` (an account
registered as ``name``, or deleted: null; ``P accounts``, hash ID key -> ID, changed; ``P accounts:gone``,
hash ID key -> when it was deleted, ms: see ``SYNC_ACCOUNTS``),
``["j", key, name, node]`` (``node``: who claimed it; ``, 1]`` after it: an account's join), ``["l", key, name]``, or an
array of such arrays (the events one node queued in one turn, in order). These are the
entries of the event table, :mod:`.redis_events` (``tests/test_redis_events.py`` checks
that the events built here keep its field order).

History and sessions (:mod:`.redis_recall`): ``P room:log`` (a stream of every
room event and whisper, capped at ``P room:logcap`` entries: the cursor a
parked session resumes from, and the window a resume from a position replays),
``P room:history`` (a stream of messages only, capped at the history length),
``P sess:KEY`` (hash: name token node parked cursor count bytes over adj pos),
``P tok:TOKEN`` (the session key), ``P missed:KEY`` (a parked session's whispers
and unsent frames, ``ID JSON`` each), ``P room:n`` (the room frames ever logged:
a session's position is this plus its ``adj``), ``P parked`` (sorted set of
parked session keys by the end of their grace, in ms), ``P seen``
(hash node -> the last log entry it received, written with each heartbeat).
"""

from __future__ import annotations

ANNOUNCE = """
local function stamp()
  local t = redis.call('TIME')
  return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
end
local function adjust(channel, key, by)
  -- A session's position is the room's count (channel:n) plus its adj, moved only by its own events
  -- (a room frame it is not sent: -1, a whisper to it: +1): nothing per member per message.
  local sess = string.sub(channel, 1, -5) .. 'sess:' .. key
  if redis.call('EXISTS', sess) == 1 then redis.call('HINCRBY', sess, 'adj', by) end
end
local function announce(channel, payload, logged, exclude)
  -- logged: a room frame for everyone but exclude, in the log and counted
  local id = '-'
  if logged then
    local cap = tonumber(redis.call('GET', channel .. ':logcap') or '0')
    if cap and cap > 0 then
      id = redis.call('XADD', channel .. ':log', 'MAXLEN', '~', cap, '*', 'e', payload)
    end
    redis.call('INCR', channel .. ':n')
    if exclude then adjust(channel, exclude, -1) end
  end
  redis.call('PUBLISH', channel, id .. ' ' .. stamp() .. ' ' .. payload)
  return id
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
"""Prepended to every script that publishes: each room event is logged (for resumes) and announced with
its log entry's ID, in one step."""

CLAIM = ANNOUNCE + """
-- KEYS: names owner order seq users:NODE sess:KEY accounts; ARGV: key name node channel payload resumable account
-- A guest's claim of an account's key is refused here, atomically with the registrations of every node.
if ARGV[7] ~= '1' and redis.call('HEXISTS', KEYS[7], ARGV[1]) == 1 then return 'registered' end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[2])
redis.call('SADD', KEYS[5], ARGV[1])
announce(ARGV[4], ARGV[5], true, ARGV[1])
if ARGV[6] == '1' then  -- its position is 0 here: it is sent what follows its own join
  redis.call('DEL', KEYS[6])
  redis.call('HSET', KEYS[6], 'adj', -tonumber(redis.call('GET', ARGV[4] .. ':n')))
end
return redis.call('ZRANGE', KEYS[3], 0, -1)
"""

RELEASE = ANNOUNCE + """
-- KEYS: names owner order users:NODE; ARGV: key node channel
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local name = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], name)
redis.call('SREM', KEYS[4], ARGV[1])
announce(ARGV[3], cjson.encode({'l', ARGV[1], name}), true, ARGV[1])
return 1
"""

HEARTBEAT = """
-- KEYS: alive:NODE nodes epoch seen; ARGV: node ttl_ms epoch_if_none last_log_id.
-- Returns {alive before this beat (0/1), in the node list before it (0/1), the epoch}. The epoch is made by
-- the first node to meet this Redis: a new one means Redis lost the room (a restart without persistence).
local alive = redis.call('EXISTS', KEYS[1])
local member = redis.call('SISMEMBER', KEYS[2], ARGV[1])
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[3], epoch)
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[4]) end
return {alive, member, epoch}
"""

REAP = ANNOUNCE + """
-- KEYS: names owner order nodes parked seen; ARGV: prefix me channel grace_ms.
-- Remove every dead node's users, announcing each once; a user with a resumable session (and a grace) is
-- parked instead, adopted by this node (which keeps its whispers), its cursor where its node last was.
-- Returns {removed, live nodes, adopted key...}.
local gone = 0
local adopted = {}
local grace = tonumber(ARGV[4])
for _, node in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if node ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. node) == 0 then
    local held = ARGV[1] .. 'users:' .. node
    local cursor = redis.call('HGET', KEYS[6], node)
    if not cursor then
      local last = redis.call('XREVRANGE', ARGV[3] .. ':log', '+', '-', 'COUNT', 1)
      cursor = (last[1] and last[1][1]) or '0-0'
    end
    for _, key in ipairs(redis.call('SMEMBERS', held)) do
      if redis.call('HGET', KEYS[2], key) == node then
        local sess = ARGV[1] .. 'sess:' .. key
        local token = redis.call('HGET', sess, 'token')
        if grace > 0 and token and token ~= '' then
          redis.call('HSET', sess, 'parked', '1', 'node', ARGV[2], 'cursor', cursor, 'count', 0, 'bytes', 0)
          redis.call('ZADD', KEYS[5], now_ms() + grace, key)
          table.insert(adopted, key)
        else
          local name = redis.call('HGET', KEYS[1], key)
          redis.call('HDEL', KEYS[1], key)
          redis.call('HDEL', KEYS[2], key)
          redis.call('ZREM', KEYS[3], name)
          redis.call('DEL', sess)
          if token then redis.call('DEL', ARGV[1] .. 'tok:' .. token) end
          announce(ARGV[3], cjson.encode({'l', key, name}), true, key)
          gone = gone + 1
        end
      end
    end
    redis.call('DEL', held)
    redis.call('SREM', KEYS[4], node)
    redis.call('HDEL', KEYS[6], node)
  end
end
table.insert(adopted, 1, redis.call('SCARD', KEYS[4]))
table.insert(adopted, 1, gone)
return adopted
"""

RECONCILE = ANNOUNCE + """
-- KEYS: names owner order seq users:NODE; ARGV: node channel key1 name1 key2 name2 ...
-- After an outage or a pause: the node's live users are registered again (in their order); what Redis
-- holds for the node but it no longer has is removed; an ID someone else holds now is returned (a conflict).
local node, channel = ARGV[1], ARGV[2]
local live = {}
for i = 3, #ARGV, 2 do live[ARGV[i]] = true end
for _, key in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if not live[key] then
    redis.call('SREM', KEYS[5], key)
    if redis.call('HGET', KEYS[2], key) == node then
      local name = redis.call('HGET', KEYS[1], key)
      redis.call('HDEL', KEYS[1], key)
      redis.call('HDEL', KEYS[2], key)
      redis.call('ZREM', KEYS[3], name)
      announce(channel, cjson.encode({'l', key, name}), true, key)
    end
  end
end
local conflicts = {}
for i = 3, #ARGV, 2 do
  local key, name = ARGV[i], ARGV[i + 1]
  local owner = redis.call('HGET', KEYS[2], key)
  if owner == false then
    if redis.call('HSETNX', KEYS[1], key, name) == 1 then
      redis.call('HSET', KEYS[2], key, node)
      redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), name)
      redis.call('SADD', KEYS[5], key)
      announce(channel, cjson.encode({'j', key, name}), true, key)
    else
      table.insert(conflicts, key)
    end
  elseif owner == node then
    redis.call('SADD', KEYS[5], key)
  else
    table.insert(conflicts, key)
  end
end
return conflicts
"""

PUBLISH = ANNOUNCE + """
-- KEYS: history; ARGV: channel history_cap combined (kind payload)...: the events one node queued in one turn.
-- kind: 'm' or 'm EXCLUDE' (a message), 'n' (a notice), 'w KEY' (a whisper to KEY). All go to the log (a
-- resume from a position replays them); messages to the history too; one PUBLISH of all of them.
local ids = {}
local cap = tonumber(ARGV[2])
local cap_log = tonumber(redis.call('GET', ARGV[1] .. ':logcap') or '0')
for i = 4, #ARGV, 2 do
  local kind, who = string.sub(ARGV[i], 1, 1), string.sub(ARGV[i], 3)
  if cap_log and cap_log > 0 then
    table.insert(ids, redis.call('XADD', ARGV[1] .. ':log', 'MAXLEN', '~', cap_log, '*', 'e', ARGV[i + 1]))
  end
  if kind == 'w' then
    adjust(ARGV[1], who, 1)
  else
    redis.call('INCR', ARGV[1] .. ':n')
    if who ~= '' then adjust(ARGV[1], who, -1) end
    if kind == 'm' and cap > 0 then redis.call('XADD', KEYS[1], 'MAXLEN', '~', cap, '*', 'e', ARGV[i + 1]) end
  end
end
local header = (#ids > 0) and table.concat(ids, ',') or '-'
redis.call('PUBLISH', ARGV[1], header .. ' ' .. stamp() .. ' ' .. ARGV[3])
return header
"""

ISSUE = """
-- KEYS: sess:KEY tok:TOKEN; ARGV: prefix key name token node address. A fresh token (the old one dies), live
-- on node, connected from address (an address ban matches it while parked; '' keeps the one it had).
local old = redis.call('HGET', KEYS[1], 'token')
if old and old ~= '' then redis.call('DEL', ARGV[1] .. 'tok:' .. old) end
redis.call('DEL', ARGV[1] .. 'missed:' .. ARGV[2])
redis.call('HSET', KEYS[1], 'name', ARGV[3], 'token', ARGV[4], 'node', ARGV[5], 'parked', '0',
           'cursor', '', 'count', 0, 'bytes', 0, 'over', '0')
if ARGV[6] and ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'addr', ARGV[6]) end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

PARK = ANNOUNCE + """
-- KEYS: sess:KEY missed:KEY parked; ARGV: key node cursor grace_ms max_frames max_bytes (entry size)...
-- The session's connection dropped on node: parked from cursor, its unsent frames kept first.
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'parked') ~= '0' then return 0 end
local count, bytes = 0, 0
for i = 7, #ARGV, 2 do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  count = count + 1
  bytes = bytes + tonumber(ARGV[i + 1])
end
local over = (count > tonumber(ARGV[5]) or bytes > tonumber(ARGV[6])) and '1' or '0'
redis.call('HSET', KEYS[1], 'parked', '1', 'cursor', ARGV[3], 'count', count, 'bytes', bytes, 'over', over)
if over == '1' then redis.call('DEL', KEYS[2]) end
redis.call('ZADD', KEYS[3], over == '1' and 0 or (now_ms() + tonumber(ARGV[4])), ARGV[1])
return 1
"""

KEEP = ANNOUNCE + """
-- KEYS: sess:KEY missed:KEY parked; ARGV: key node entry size max_frames max_bytes channel.
-- A whisper to a session parked on (or adopted by) node; past the bounds it ends at the next sweep.
local holder, parked = redis.call('HGET', KEYS[1], 'node'), redis.call('HGET', KEYS[1], 'parked')
if holder and parked == '0' then
  -- Taken meanwhile (a resume's TAKE ran before this): not kept, but sent on to the holder, live. It
  -- comes after the take's announcement, where the taker's member takes the room. A take from a
  -- position ('pos') replayed it from the log already.
  local payload = string.match(ARGV[3], '^%S+ (.*)$')
  if payload and redis.call('HGET', KEYS[1], 'pos') ~= '1' then announce(ARGV[7], payload, false) end
  return 0
end
if holder ~= ARGV[2] or parked ~= '1' or redis.call('HGET', KEYS[1], 'over') == '1' then return 0 end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
local bytes = redis.call('HINCRBY', KEYS[1], 'bytes', tonumber(ARGV[4]))
if count > tonumber(ARGV[5]) or bytes > tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], 'over', '1')
  redis.call('DEL', KEYS[2])
  redis.call('ZADD', KEYS[3], 0, ARGV[1])
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
"""

END_SESSION = """
local function end_session(prefix, key)
  local sess = prefix .. 'sess:' .. key
  local token = redis.call('HGET', sess, 'token')
  if token and token ~= '' then redis.call('DEL', prefix .. 'tok:' .. token) end
  redis.call('DEL', sess, prefix .. 'missed:' .. key)
  redis.call('ZREM', prefix .. 'parked', key)
end
local function leave_room(prefix, channel, key)
  local name = redis.call('HGET', prefix .. 'names', key)
  if not name then return 0 end
  local owner = redis.call('HGET', prefix .. 'owner', key)
  redis.call('HDEL', prefix .. 'names', key)
  redis.call('HDEL', prefix .. 'owner', key)
  redis.call('ZREM', prefix .. 'order', name)
  if owner then redis.call('SREM', prefix .. 'users:' .. owner, key) end
  announce(channel, cjson.encode({'l', key, name}), true, key)
  return 1
end
"""

END = END_SESSION + """
-- ARGV: prefix key. The session is over (004): nothing is kept.
end_session(ARGV[1], ARGV[2])
return 1
"""

EXPIRE = ANNOUNCE + END_SESSION + """
-- ARGV: prefix channel. Every parked session whose grace is over (or past its bounds) ends: its 104, once.
local due = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'parked', '-inf', now_ms())
local gone = 0
for _, key in ipairs(due) do
  end_session(ARGV[1], key)
  gone = gone + leave_room(ARGV[1], ARGV[2], key)
end
return gone
"""

END_BANNED = ANNOUNCE + END_SESSION + """
-- ARGV: prefix channel key... A ban matched these parked sessions: each still parked ends now, as when
-- its grace ends (its 104, once; its token dies). One a resume took meanwhile is the taker's to check.
local gone = 0
for i = 3, #ARGV do
  local key = ARGV[i]
  if redis.call('HGET', ARGV[1] .. 'sess:' .. key, 'parked') == '1' then
    end_session(ARGV[1], key)
    gone = gone + leave_room(ARGV[1], ARGV[2], key)
  end
end
return gone
"""

TAKE = ANNOUNCE + END_SESSION + """
-- ARGV: prefix token node channel max_frames max_bytes ref position. Use the token up; the session moves to
-- node. Always announced ({'x', key, node, ref}, after the events it returns): the other holder lets go, and
-- the taker lets its member in at exactly that point of the channel.
-- Returns false (unknown, used, expired, or past its bounds: then it ends now), {'gap', name, key} (the
-- position is past the window: it ends now), {'live', name, key, 0, events...}, or
-- {'parked', name, key, #missed, missed..., events...}. With a position, events are the log's frames for
-- this session after it; without, the log after its cursor (if parked), but its own.
local function since(channel, key, need, max_frames, max_bytes)
  -- The session's last need frames, walking the log back from its end; nil if it does not hold them all.
  if need < 0 or need > max_frames then return nil end
  local out, bytes, from = {}, 0, '+'
  while #out < need do
    local batch = redis.call('XREVRANGE', channel .. ':log', from, '-', 'COUNT', 256)
    if #batch == 0 then return nil end
    for _, entry in ipairs(batch) do
      local text = entry[2][2]
      local e = cjson.decode(text)
      local kind, who = e[1], e[2]
      local mine
      if kind == 'w' then mine = (who == key) else mine = (kind == 'n') or (who ~= key) end
      if mine then
        bytes = bytes + string.len(text)
        if bytes > max_bytes then return nil end
        table.insert(out, entry[1] .. ' ' .. text)
        if #out == need then break end
      end
      from = '(' .. entry[1]
    end
  end
  local n = #out
  for i = 1, math.floor(n / 2) do out[i], out[n - i + 1] = out[n - i + 1], out[i] end
  return out
end
local prefix, node, channel = ARGV[1], ARGV[3], ARGV[4]
local tok = prefix .. 'tok:' .. ARGV[2]
local key = redis.call('GET', tok)
if not key then return false end
redis.call('DEL', tok)
local sess = prefix .. 'sess:' .. key
local h = redis.call('HMGET', sess, 'name', 'token', 'node', 'parked', 'cursor', 'count', 'bytes', 'over', 'adj')
if not h[1] or h[2] ~= ARGV[2] then return false end
if not redis.call('HGET', prefix .. 'names', key) then
  end_session(prefix, key)
  return false
end
local result = {'live', h[1], key, 0}
local position = ARGV[8] or ''
if position ~= '' then
  local now = tonumber(redis.call('GET', channel .. ':n') or '0') + tonumber(h[9] or '0')
  local events = nil
  if h[8] ~= '1' then events = since(channel, key, now - tonumber(position), tonumber(ARGV[5]), tonumber(ARGV[6])) end
  if not events then  -- refused plainly: the session ends now (a live holder lets go), its 104 once
    end_session(prefix, key)
    announce(channel, cjson.encode({'x', key, node, ''}), false)
    leave_room(prefix, channel, key)
    return {'gap', h[1], key}
  end
  if h[4] == '1' then result[1] = 'parked' end
  for _, e in ipairs(events) do table.insert(result, e) end
  redis.call('DEL', prefix .. 'missed:' .. key)
  redis.call('ZREM', prefix .. 'parked', key)
elseif h[4] == '1' then
  local missed = redis.call('LRANGE', prefix .. 'missed:' .. key, 0, -1)
  local max_frames, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
  local count, bytes = tonumber(h[6]), tonumber(h[7])
  local events = {}
  if h[5] ~= '' then
    events = redis.call('XRANGE', channel .. ':log', '(' .. h[5], '+', 'COUNT', max_frames + 1)
  end
  for _, entry in ipairs(events) do bytes = bytes + string.len(entry[2][2]) end
  if h[8] == '1' or count + #events > max_frames or bytes > max_bytes then
    end_session(prefix, key)
    leave_room(prefix, channel, key)
    return false
  end
  result = {'parked', h[1], key, #missed}
  for _, m in ipairs(missed) do table.insert(result, m) end
  for _, entry in ipairs(events) do table.insert(result, entry[1] .. ' ' .. entry[2][2]) end
  redis.call('DEL', prefix .. 'missed:' .. key)
  redis.call('ZREM', prefix .. 'parked', key)
end
local old = redis.call('HGET', prefix .. 'owner', key)
-- the node that held it (live: it closes that connection) or kept it (parked) lets go
announce(channel, cjson.encode({'x', key, node, ARGV[7] or ''}), false)
if old then redis.call('SREM', prefix .. 'users:' .. old, key) end
redis.call('HSET', prefix .. 'owner', key, node)
redis.call('SADD', prefix .. 'users:' .. node, key)
redis.call('HSET', sess, 'token', '', 'parked', '0', 'node', node, 'count', 0, 'bytes', 0,
           'pos', position ~= '' and '1' or '0')
return result
"""

ACCOUNT_GONE = """
-- KEYS: accounts accounts:gone; ARGV: key. A deletion leaves a tombstone stamped with Redis's clock (ms),
-- so that a node's periodic sync, from a database read made before the deletion, cannot add it back.
local t = redis.call('TIME')
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return 1
"""

SYNC_ACCOUNTS = """
-- KEYS: accounts accounts:gone; ARGV: window_ms key1 name1 key2 name2 ...
-- A node's reload of the table into the hash, adds only: a key deleted within window_ms (a tombstone that
-- young) is skipped (the database read may predate the deletion); older tombstones are dropped (no read is
-- that old: a reload is written seconds after it). A registration removes its key's tombstone itself.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local gone = redis.call('HGETALL', KEYS[2])
local young = {}
for i = 1, #gone, 2 do
  if now - tonumber(gone[i + 1]) < window then young[gone[i]] = true else redis.call('HDEL', KEYS[2], gone[i]) end
end
local added = 0
for i = 2, #ARGV, 2 do
  if not young[ARGV[i]] then added = added + redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return added
"""
