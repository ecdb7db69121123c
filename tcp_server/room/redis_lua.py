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
``P room`` carries JSON arrays: ``["m", exclude, sender, text]``, ``["w", key,
sender, text]``, ``["j", key, name]``, ``["l", key, name]``, or an array of
such arrays (the events one node queued in one turn, in order).
"""

from __future__ import annotations

CLAIM = """
-- KEYS: names owner order seq users:NODE; ARGV: key name node channel payload
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[2])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return redis.call('ZRANGE', KEYS[3], 0, -1)
"""

RELEASE = """
-- KEYS: names owner order users:NODE; ARGV: key node channel
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local name = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], name)
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({'l', ARGV[1], name}))
return 1
"""

HEARTBEAT = """
-- KEYS: alive:NODE nodes epoch; ARGV: node ttl_ms epoch_if_none.
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
return {alive, member, epoch}
"""

REAP = """
-- KEYS: names owner order nodes; ARGV: prefix me channel. Remove every dead node's users, announcing each once.
local gone = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if node ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. node) == 0 then
    local held = ARGV[1] .. 'users:' .. node
    for _, key in ipairs(redis.call('SMEMBERS', held)) do
      if redis.call('HGET', KEYS[2], key) == node then
        local name = redis.call('HGET', KEYS[1], key)
        redis.call('HDEL', KEYS[1], key)
        redis.call('HDEL', KEYS[2], key)
        redis.call('ZREM', KEYS[3], name)
        redis.call('PUBLISH', ARGV[3], cjson.encode({'l', key, name}))
        gone = gone + 1
      end
    end
    redis.call('DEL', held)
    redis.call('SREM', KEYS[4], node)
  end
end
return gone
"""

RECONCILE = """
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
      redis.call('PUBLISH', channel, cjson.encode({'l', key, name}))
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
      redis.call('PUBLISH', channel, cjson.encode({'j', key, name}))
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
