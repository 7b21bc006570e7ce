#!lua name=presence_v1
--[[
The script engine of presence (SPEC §13): the contract of the PRESENCE.* commands for servers
that cannot load the module, as one Redis Functions library. The same file runs through
EVAL/EVALSHA once its first line is replaced (see README.md): it then dispatches on ARGV[1].

Every entry point takes the settings first, in ARGV (after the operation name in the EVAL
form):
  ttl staleAfter maxData format tag
format is `standalone` or `cluster` (hash-tagged keys, sharded per-room channels); tag is the
hash tag of the shard's own keys in cluster form (node leases, the sweep's schedule), which
the caller picks on the room's shard, `` in standalone form.

A room's index (same hash tag as the room in cluster form):
  room:presence-index:<room>              zset user -> the ms at which it stops being live
  room:presence-index:<room>:order        zset "user socket", all scored 0: user byte order
  room:presence-index:<room>:nodes        set of the nodes holding presences in the room
  room:presence-index:<room>:node:<node>  zset user -> live-until, the node's presences here
The shard's keys:
  presence:rooms                          zset room -> a time at or before its first death
  presence:nodes                          hash node -> "1" once its lease's end was announced
  presence:node-rooms:<node>              hash room -> presences held through node there
  presence:sweep-lease                    the sweeper's lease (SET NX PX)
]]

local DB_CHANNEL = '__presence@0__:'
local ID_PATTERN = '^[A-Za-z0-9_.@+=~%-]+$'
local MAX_ID_LEN = 128
local MAX_LEASE_MS = 86400000
-- Page of the user-order index read at once by LIST while it skips presences not live.
local LIST_CHUNK = 64

-- Settings and the clock --------------------------------------------------------------------

-- Refuses the call: the entry point's wrapper ([`entry`]) answers `message` as the error reply.
local function fail(message)
    return error({presence_error = message}, 0)
end

local function wrong_arity(command)
    fail("ERR wrong number of arguments for '" .. command .. "' command")
end

local function integer_setting(value, name)
    local n = tonumber(value)
    if n == nil or n < 0 or n ~= math.floor(n) then
        fail('ERR setting ' .. name .. ' must be a non-negative integer')
    end
    return n
end

-- The settings from args[1..5]; the operation's own arguments follow at args[6].
local function settings(args)
    if #args < 5 then
        fail('ERR expected the settings ttl staleAfter maxData format tag before the arguments')
    end
    local ttl = integer_setting(args[1], 'ttl')
    local stale = integer_setting(args[2], 'staleAfter')
    local format = args[4]
    if format ~= 'standalone' and format ~= 'cluster' then
        fail('ERR setting format must be standalone or cluster')
    end
    if ttl < 1 then
        fail('ERR setting ttl must be at least 1')
    end
    local time = redis.call('TIME')
    local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
    -- As the module's rule (core/src/liveness.rs): staleness applies while 0 < staleAfter < ttl.
    local stale_on = stale > 0 and stale < ttl
    return {
        ttl_ms = ttl * 1000,
        -- live-until = expiry - shift: a presence is live while live-until > now.
        shift = stale_on and (ttl - stale) * 1000 or 0,
        max_data = integer_setting(args[3], 'maxData'),
        cluster = format == 'cluster',
        tag = args[5],
        now = now,
    }
end

local function op_args(args)
    local out = {}
    for i = 6, #args do
        out[#out + 1] = args[i]
    end
    return out
end

-- Ids and data -------------------------------------------------------------------------------

local function valid_id(id)
    return id ~= nil and #id >= 1 and #id <= MAX_ID_LEN and string.find(id, ID_PATTERN) ~= nil
end

local function id_error(kind)
    local message = 'ERR invalid ' .. kind .. ' id: use 1 to ' .. MAX_ID_LEN .. ' bytes of A-Z a-z 0-9 - _ . @ + = ~'
    if kind == 'socket' then
        message = message .. ', or <node>/<socket>'
    end
    fail(message)
end

local function check_id(id, kind)
    if not valid_id(id) then
        id_error(kind)
    end
    return id
end

-- The node of a socket `<node>/<socket>`, or nil; refuses an invalid socket.
local function socket_node(socket)
    local slash = string.find(socket, '/', 1, true)
    if slash == nil then
        check_id(socket, 'socket')
        return nil
    end
    local node, id = string.sub(socket, 1, slash - 1), string.sub(socket, slash + 1)
    if not valid_id(node) or not valid_id(id) then
        id_error('socket')
    end
    return node
end

-- True when `n` is a number as JSON writes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
local function json_number(n)
    local i = string.sub(n, 1, 1) == '-' and 2 or 1
    local int = string.match(n, '^%d+', i)
    if not int or (#int > 1 and string.sub(int, 1, 1) == '0') then
        return false
    end
    i = i + #int
    if string.sub(n, i, i) == '.' then
        local fraction = string.match(n, '^%d+', i + 1)
        if not fraction then
            return false
        end
        i = i + 1 + #fraction
    end
    if string.find(string.sub(n, i, i), '^[eE]') then
        i = i + 1
        if string.find(string.sub(n, i, i), '^[+-]') then
            i = i + 1
        end
        local exponent = string.match(n, '^%d+', i)
        if not exponent then
            return false
        end
        i = i + #exponent
    end
    return i == #n + 1
end

-- What cjson lets through and JSON does not: raw control bytes in strings, and numbers such as
-- `1.` or `01`. True when `data` has neither (cjson checks the rest).
local function json_tokens(data)
    local i, in_string = 1, false
    while i <= #data do
        local c = string.sub(data, i, i)
        if in_string then
            if c == '\\' then
                i = i + 1
            elseif c == '"' then
                in_string = false
            elseif string.byte(c) < 32 then
                return false
            end
        elseif c == '"' then
            in_string = true
        elseif string.find(c, '^[%d%-]') then
            local number = string.match(data, '^[%d%-+.eE]+', i)
            if not json_number(number) then
                return false
            end
            i = i + #number - 1
        end
        i = i + 1
    end
    return true
end

-- True when `data` is one JSON value as the module reads JSON: cjson with NaN, Infinity and hex
-- numbers refused and at most 64 levels of nesting, plus [`json_tokens`]. cjson's settings are
-- shared by every script of the server, so they are put back as they were.
local function strict_json(data)
    local lenient, depth = cjson.decode_invalid_numbers(), cjson.decode_max_depth()
    cjson.decode_invalid_numbers(false)
    cjson.decode_max_depth(64)
    local ok = pcall(cjson.decode, data)
    cjson.decode_invalid_numbers(lenient)
    cjson.decode_max_depth(depth)
    return ok and json_tokens(data)
end

-- The module checks the size first, then that the data is one JSON value.
local function check_data(s, data)
    if s.max_data == 0 or #data > s.max_data then
        fail('ERR data too large: ' .. #data .. ' bytes, presence.max-data is ' .. s.max_data)
    end
    if not strict_json(data) then
        fail('ERR data must be one JSON value')
    end
end

-- Key names ----------------------------------------------------------------------------------

local function room_part(s, room)
    return s.cluster and ('{' .. room .. '}') or room
end

local function presence_key(s, room, user)
    return 'room:presence:' .. room_part(s, room) .. ':' .. user
end

local function data_key(s, room, user)
    return 'room:presence-data:' .. room_part(s, room) .. ':' .. user
end

local function index_key(s, room)
    return 'room:presence-index:' .. room_part(s, room)
end

-- The tag of a node's keys: the `tag` setting, always given in cluster form (a standalone
-- server may use one too, as PRESENCE.LEASE {tag}node does).
local function shard_part(s)
    return s.tag ~= '' and ('{' .. s.tag .. '}') or ''
end

local function shard_key(s, name)
    return s.cluster and ('presence:' .. name .. ':{' .. s.tag .. '}') or ('presence:' .. name)
end

local function lease_key(s, node)
    return 'presence:node:' .. shard_part(s) .. node
end

local function node_rooms_key(s, node)
    return 'presence:node-rooms:' .. shard_part(s) .. node
end

-- The keys of one room's index.
local function room_keys(s, room)
    local index = index_key(s, room)
    return {
        room = room,
        index = index,
        order = index .. ':order',
        nodes = index .. ':nodes',
    }
end

local function node_index_key(r, node)
    return r.index .. ':node:' .. node
end

-- Reads a shard key before anything is written: in a cluster, a tag whose slot is not on the
-- room's master makes Redis refuse this first access, not a later one after writes.
local function reach_shard(s)
    redis.call('EXISTS', shard_key(s, 'rooms'))
end

-- Refuses a call whose declared keys are not the ones it touches, so that a cluster routes it
-- to the right shard.
local function expect_keys(keys, expected)
    local same = #keys == #expected
    for i = 1, #expected do
        same = same and keys[i] == expected[i]
    end
    if not same then
        fail('ERR the keys of this call must be: ' .. table.concat(expected, ' '))
    end
end

-- Events -------------------------------------------------------------------------------------

-- Publishes on this server only: Redis replicates a script's PUBLISH (replicas would announce
-- every event again to their own subscribers, and AOF would keep them), while the module's
-- events come from the master alone.
local function publish_here(command, channel, payload)
    redis.set_repl(redis.REPL_NONE)
    redis.call(command, channel, payload)
    redis.set_repl(redis.REPL_ALL)
end

-- Standalone: PUBLISH on `__presence@0__:<event>`. Cluster: SPUBLISH on the room's own channel,
-- the payload carrying `"event":"<name>"` last (as the module's presence.events auto).
local function publish(s, name, room, body)
    if s.cluster then
        publish_here('SPUBLISH', DB_CHANNEL .. '{' .. room .. '}', '{' .. body .. ',"event":"' .. name .. '"}')
    else
        publish_here('PUBLISH', DB_CHANNEL .. name, '{' .. body .. '}')
    end
end

local function presence_body(room, user, socket, count)
    return '"room":"' .. room .. '","user":"' .. user .. '","socket":"' .. socket .. '","count":' .. count
end

local function ended_event(s, room, user, socket, count, reason)
    local name = (reason == 'leave' or reason == 'deleted') and 'leave' or 'force-leave'
    publish(s, name, room, presence_body(room, user, socket, count) .. ',"reason":"' .. reason .. '"')
end

local function join_event(s, room, user, socket, count, data)
    local body = presence_body(room, user, socket, count)
    if data then
        body = body .. ',"data":' .. data
    end
    publish(s, 'join', room, body)
end

local function update_event(s, room, user, socket, count, data)
    publish(s, 'update', room, presence_body(room, user, socket, count) .. ',"data":' .. (data or 'null'))
end

-- node-down goes to the global channel in both forms, as the module's.
local function node_down_event(node, presences)
    publish_here('PUBLISH', DB_CHANNEL .. 'node-down', '{"node":"' .. node .. '","presences":' .. presences .. '}')
end

-- Liveness -----------------------------------------------------------------------------------

-- True while the lease key of `node` is a string with a TTL (a script sees a logically expired
-- key as missing). Cached per call: a script's clock stands still.
local function lease_checker(s)
    local cache = {}
    return function(node)
        if node == nil then
            return true
        end
        if cache[node] == nil then
            local key = lease_key(s, node)
            cache[node] = redis.call('TYPE', key).ok == 'string' and redis.call('PTTL', key) > 0
        end
        return cache[node]
    end
end

-- Why a presence whose socket names `node` and whose key expires at `expire_at` (nil: no TTL)
-- is not live, or nil when it is: a down node first, as the module (core/src/db.rs).
local function dead_reason(s, node_up, node, expire_at)
    if not node_up(node) then
        return 'node-down'
    elseif expire_at == nil then
        return 'no-ttl'
    elseif expire_at <= s.now then
        return 'expired'
    elseif expire_at - s.shift <= s.now then
        return 'stale'
    end
    return nil
end

-- The room's live count: those live by the index's time, less those held through down nodes.
-- O(log n) per node holding presences in the room.
local function live_count(s, r, node_up)
    local count = redis.call('ZCOUNT', r.index, '(' .. s.now, '+inf')
    for _, node in ipairs(redis.call('SMEMBERS', r.nodes)) do
        if not node_up(node) then
            count = count - redis.call('ZCOUNT', node_index_key(r, node), '(' .. s.now, '+inf')
        end
    end
    return count
end

-- The index ----------------------------------------------------------------------------------

-- What the index holds for `user`: its socket and live-until, or nil.
local function indexed(r, user)
    local found = redis.call('ZRANGEBYLEX', r.order, '[' .. user .. ' ', '(' .. user .. '!', 'LIMIT', 0, 1)
    if #found == 0 then
        return nil
    end
    return string.sub(found[1], #user + 2), tonumber(redis.call('ZSCORE', r.index, user))
end

local function count_for_node(s, r, node, delta)
    local rooms = node_rooms_key(s, node)
    if redis.call('HINCRBY', rooms, r.room, delta) <= 0 then
        redis.call('HDEL', rooms, r.room)
    end
end

-- Takes `user` out of the presences the room holds through `node`.
local function drop_from_node(s, r, node, user)
    local node_index = node_index_key(r, node)
    redis.call('ZREM', node_index, user)
    if redis.call('EXISTS', node_index) == 0 then
        redis.call('SREM', r.nodes, node)
    end
    count_for_node(s, r, node, -1)
end

-- Writes (user, socket, live_until) into the room's index; `old` is the socket it held.
local function index_presence(s, r, user, socket, live_until, old)
    local node, old_node = socket_node(socket), old and socket_node(old)
    redis.call('ZADD', r.index, live_until, user)
    if old ~= socket then
        if old then
            redis.call('ZREM', r.order, user .. ' ' .. old)
        end
        redis.call('ZADD', r.order, 0, user .. ' ' .. socket)
    end
    if old_node and old_node ~= node then
        drop_from_node(s, r, old_node, user)
    end
    if node then
        redis.call('ZADD', node_index_key(r, node), live_until, user)
        redis.call('SADD', r.nodes, node)
        redis.call('HSETNX', shard_key(s, 'nodes'), node, '0')
        if old_node ~= node then
            count_for_node(s, r, node, 1)
        end
    end
    -- The schedule only moves earlier here (LT adds a new room too); the sweep moves it later
    -- when it finds nothing due.
    redis.call('ZADD', shard_key(s, 'rooms'), 'LT', live_until, r.room)
end

local function unindex_presence(s, r, user, socket)
    local node = socket_node(socket)
    redis.call('ZREM', r.index, user)
    redis.call('ZREM', r.order, user .. ' ' .. socket)
    if node then
        drop_from_node(s, r, node, user)
    end
end

-- Removes (user, socket) from the index, deletes its data key (the data ends with the
-- presence, however it ended: SPEC §12) and announces its end for `reason`.
local function end_presence(s, r, node_up, user, socket, reason)
    unindex_presence(s, r, user, socket)
    redis.call('DEL', data_key(s, r.room, user))
    ended_event(s, r.room, user, socket, live_count(s, r, node_up), reason)
end

-- Deletes the presence key and ends the presence (its data key with it).
local function remove_presence(s, r, node_up, user, socket, reason)
    redis.call('DEL', presence_key(s, r.room, user))
    end_presence(s, r, node_up, user, socket, reason)
end

-- Why an indexed presence whose key is gone ended: what the index says of it, or a delete.
local function gone_reason(s, node_up, socket, live_until)
    return dead_reason(s, node_up, socket_node(socket), live_until + s.shift) or 'deleted'
end

-- The type of the presence key of (room, user), and for a string its value and its expiry
-- (nil without a TTL).
local function presence_value(s, room, user)
    local key = presence_key(s, room, user)
    local kind = redis.call('TYPE', key).ok
    if kind ~= 'string' then
        return kind
    end
    local expire_at = redis.call('PEXPIRETIME', key)
    return kind, redis.call('GET', key), expire_at >= 0 and expire_at or nil
end

-- The presence key's value and expiry, or nil when there is none; WRONGTYPE for another type.
local function read_presence(s, room, user)
    local kind, value, expire_at = presence_value(s, room, user)
    if kind ~= 'none' and kind ~= 'string' then
        fail('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
    return value, expire_at
end

-- A key found gone while the index holds it: forget it, announced as the module would have.
local function forget_gone(s, r, node_up, user)
    local socket, live_until = indexed(r, user)
    if socket then
        end_presence(s, r, node_up, user, socket, gone_reason(s, node_up, socket, live_until))
    end
end

-- The data key's value, or nil.
local function read_data(s, room, user)
    local data = redis.call('GET', data_key(s, room, user))
    return data or nil
end

-- Entry points -------------------------------------------------------------------------------

-- The declared keys of a call on one presence.
local function presence_call(s, keys, args, command, min, max)
    if #args < min or #args > max then
        wrong_arity(command)
    end
    local room = check_id(args[1], 'room')
    local user = check_id(args[2], 'user')
    local socket = args[3]
    local node = socket_node(socket)
    local r = room_keys(s, room)
    expect_keys(keys, {presence_key(s, room, user), data_key(s, room, user), r.index, r.order, r.nodes})
    reach_shard(s)
    return r, user, socket, node
end

local function write_presence(s, room, user, socket, expire_at)
    redis.call('SET', presence_key(s, room, user), socket, 'PXAT', expire_at)
end

-- JOIN room user socket [DATA json] -> the room's live count.
local function join(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args < 3 then
        wrong_arity('presence.join')
    end
    if #args ~= 3 and not (#args == 5 and string.upper(args[4]) == 'DATA') then
        fail('ERR syntax error')
    end
    local r, user, socket, node = presence_call(s, keys, args, 'presence.join', 3, 5)
    local data = args[5]
    if data then
        check_data(s, data)
    end
    local current = read_presence(s, r.room, user)
    local node_up = lease_checker(s)
    if not node_up(node) then
        fail('NOLEASE node ' .. node .. ' holds no live lease')
    end
    if current == nil then
        -- The module announced the end of a presence whose key went away when it went.
        forget_gone(s, r, node_up, user)
    end
    local expire_at = s.now + s.ttl_ms
    local live_until = expire_at - s.shift
    local old, old_live_until = indexed(r, user)
    local was_live = old == socket and old_live_until > s.now and node_up(node)
    local old_data = old == socket and read_data(s, r.room, user) or nil
    write_presence(s, r.room, user, socket, expire_at)
    if data then
        redis.call('SET', data_key(s, r.room, user), data, 'PXAT', expire_at)
    else
        redis.call('DEL', data_key(s, r.room, user))
    end
    index_presence(s, r, user, socket, live_until, old)
    local count = live_count(s, r, node_up)
    if old and old ~= socket then
        ended_event(s, r.room, user, old, count, 'replaced')
    end
    if not was_live then
        join_event(s, r.room, user, socket, count, data)
    elseif old_data ~= data then
        update_event(s, r.room, user, socket, count, data)
    end
    return count
end

-- What the presence of (room, user) is to `socket`, for BEAT, LEAVE and UPDATE: 'gone' (no key;
-- announced), 'other' (not held by socket), 'dead' (held, not live: deleted and announced, as
-- the sweeper would) or 'live', with the key's expiry.
local function held_by(s, r, node_up, user, socket, node)
    local value, expire_at = read_presence(s, r.room, user)
    if value == nil then
        forget_gone(s, r, node_up, user)
        return 'gone'
    end
    local held, live_until = indexed(r, user)
    if held ~= socket then
        return 'other'
    end
    -- The index's time decides, as the module's; a key found without TTL is never live.
    local reason = dead_reason(s, node_up, node, expire_at and (live_until + s.shift))
    if reason then
        remove_presence(s, r, node_up, user, socket, reason)
        return 'dead'
    end
    return 'live', expire_at
end

-- BEAT room user socket -> 1 refreshed, 0 not in the room.
local function beat(keys, args)
    local s = settings(args)
    args = op_args(args)
    local r, user, socket, node = presence_call(s, keys, args, 'presence.beat', 3, 3)
    local node_up = lease_checker(s)
    if held_by(s, r, node_up, user, socket, node) ~= 'live' then
        return 0
    end
    local expire_at = s.now + s.ttl_ms
    redis.call('PEXPIREAT', presence_key(s, r.room, user), expire_at)
    redis.call('PEXPIREAT', data_key(s, r.room, user), expire_at)
    index_presence(s, r, user, socket, expire_at - s.shift, socket)
    return 1
end

-- LEAVE room user socket -> 1 removed, 0 nothing to remove. A presence held by the socket is
-- removed whether live or not, as the module's.
local function leave(keys, args)
    local s = settings(args)
    args = op_args(args)
    local r, user, socket = presence_call(s, keys, args, 'presence.leave', 3, 3)
    local node_up = lease_checker(s)
    local value = read_presence(s, r.room, user)
    if value == nil then
        forget_gone(s, r, node_up, user)
        return 0
    end
    if indexed(r, user) ~= socket then
        return 0
    end
    remove_presence(s, r, node_up, user, socket, 'leave')
    return 1
end

-- UPDATE room user socket json -> 1 updated (or the same data), 0 not in the room.
local function update(keys, args)
    local s = settings(args)
    args = op_args(args)
    local r, user, socket, node = presence_call(s, keys, args, 'presence.update', 4, 4)
    local data = args[4]
    check_data(s, data)
    local node_up = lease_checker(s)
    local state, expire_at = held_by(s, r, node_up, user, socket, node)
    if state ~= 'live' then
        return 0
    end
    if read_data(s, r.room, user) == data then
        return 1
    end
    redis.call('SET', data_key(s, r.room, user), data, 'PXAT', expire_at)
    update_event(s, r.room, user, socket, live_count(s, r, node_up), data)
    return 1
end

-- The declared keys of a call on a whole room.
local function room_call(s, keys, room)
    local r = room_keys(s, check_id(room, 'room'))
    expect_keys(keys, {r.index, r.order, r.nodes})
    return r
end

local function parse_list(args)
    local request = {with_sockets = false, with_data = false, limit = nil, after = nil}
    local i = 2
    while i <= #args do
        local option = string.upper(args[i])
        if option == 'WITHSOCKETS' and not request.with_sockets then
            request.with_sockets = true
        elseif option == 'WITHDATA' and not request.with_data then
            request.with_data = true
        elseif option == 'LIMIT' and request.limit == nil then
            i = i + 1
            local n = args[i] and string.find(args[i], '^%d+$') and tonumber(args[i])
            if not n then
                fail('ERR LIMIT must be followed by a non-negative integer')
            end
            request.limit = n
        elseif option == 'AFTER' and request.after == nil then
            i = i + 1
            if args[i] == nil then
                fail('ERR AFTER must be followed by a user id')
            end
            request.after = check_id(args[i], 'user')
        else
            fail('ERR syntax error')
        end
        i = i + 1
    end
    return request
end

-- True when `a` sorts before `b` byte by byte. Lua compares strings with strcoll, and Redis
-- sets the collation from the environment's locale, which may order ids otherwise.
local function byte_less(a, b)
    for i = 1, math.min(#a, #b) do
        local x, y = string.byte(a, i), string.byte(b, i)
        if x ~= y then
            return x < y
        end
    end
    return #a < #b
end

-- The live (user, socket) pairs of the room after `after`, in user order, read from the expiry
-- index: for a room where fewer are live than not (a crashed server's, before the sweep).
-- O(log n + live · log n).
local function live_by_expiry(s, r, node_up, after, limit)
    local live = {}
    for _, user in ipairs(redis.call('ZRANGEBYSCORE', r.index, '(' .. s.now, '+inf')) do
        local socket = indexed(r, user)
        if socket and node_up(socket_node(socket)) and (after == nil or byte_less(after, user)) then
            live[#live + 1] = {user, socket}
        end
    end
    table.sort(live, function(a, b)
        return byte_less(a[1], b[1])
    end)
    local page = {}
    for i = 1, math.min(#live, limit) do
        page[i] = live[i]
    end
    return page
end

-- The live (user, socket) pairs of the room after `after`, in user order, read from the order
-- index: while the room holds presences that are not live (`dead` of them), each member's
-- liveness is checked, LIST_CHUNK members at a time, until as many were passed over as the
-- room holds; from then on every member is live and the rest of the page is one range.
-- O(log n + page + dead).
local function live_by_order(s, r, node_up, after, limit, dead)
    local page = {}
    local from = after and ('(' .. after .. '!') or '-'
    while #page < limit do
        local batch = LIST_CHUNK
        if dead == 0 then
            batch = limit == math.huge and -1 or limit - #page
        end
        local members = redis.call('ZRANGEBYLEX', r.order, from, '+', 'LIMIT', 0, batch)
        for _, member in ipairs(members) do
            local space = string.find(member, ' ', 1, true)
            local user, socket = string.sub(member, 1, space - 1), string.sub(member, space + 1)
            local live = dead == 0
            if not live then
                local live_until = tonumber(redis.call('ZSCORE', r.index, user))
                live = live_until ~= nil and live_until > s.now and node_up(socket_node(socket))
                dead = live and dead or dead - 1
            end
            if live and #page < limit then
                page[#page + 1] = {user, socket}
            end
        end
        if batch == -1 or #members < batch then
            break
        end
        from = '(' .. members[#members]
    end
    return page
end

-- LIST room [WITHSOCKETS] [WITHDATA] [LIMIT n] [AFTER user] -> live users in byte order: from
-- the order index, or, in a room holding more presences not live than live, from the expiry
-- index. O(log n + page + min(dead, live · log n)); O(log n + page) in a swept room.
local function list(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args < 1 then
        wrong_arity('presence.list')
    end
    local r = room_call(s, keys, args[1])
    local request = parse_list(args)
    local node_up = lease_checker(s)
    local limit = request.limit or math.huge
    local live = live_count(s, r, node_up)
    local dead = redis.call('ZCARD', r.index) - live
    local page
    if dead > live then
        page = live_by_expiry(s, r, node_up, request.after, limit)
    else
        page = live_by_order(s, r, node_up, request.after, limit, dead)
    end
    local out = {}
    for _, entry in ipairs(page) do
        out[#out + 1] = entry[1]
        if request.with_sockets then
            out[#out + 1] = entry[2]
        end
        if request.with_data then
            out[#out + 1] = read_data(s, r.room, entry[1]) or false
        end
    end
    return out
end

-- COUNT room -> the room's live count, O(log n) (plus O(log n) per node holding presences in
-- the room).
local function count(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args ~= 1 then
        wrong_arity('presence.count')
    end
    local r = room_call(s, keys, args[1])
    return live_count(s, r, lease_checker(s))
end

-- LEASE [{tag}]node ms -> 1 the node held a live lease, 0 it did not.
local function lease(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args ~= 2 then
        wrong_arity('presence.lease')
    end
    local node, tag = args[1], nil
    if string.sub(node, 1, 1) == '{' then
        local close = string.find(node, '}', 2, true)
        if close == nil then
            id_error('node')
        end
        tag = check_id(string.sub(node, 2, close - 1), 'node')
        node = string.sub(node, close + 1)
    end
    check_id(node, 'node')
    local ms = string.find(args[2], '^%d+$') and tonumber(args[2])
    if not ms or ms > MAX_LEASE_MS then
        fail('ERR the lease must be an integer of milliseconds from 0 to ' .. MAX_LEASE_MS)
    end
    -- In cluster form the key is always under a tag: the node id when none is given.
    s.tag = tag or (s.cluster and node) or ''
    local key = lease_key(s, node)
    expect_keys(keys, {key, shard_key(s, 'nodes')})
    local kind = redis.call('TYPE', key).ok
    if kind ~= 'none' and kind ~= 'string' then
        fail('WRONGTYPE Operation against a key holding the wrong kind of value')
    end
    local held = kind == 'string' and redis.call('PTTL', key) > 0
    if ms == 0 then
        redis.call('DEL', key)
    elseif kind == 'string' then
        redis.call('PEXPIREAT', key, s.now + ms)
    else
        redis.call('SET', key, node, 'PXAT', s.now + ms)
    end
    if ms > 0 then
        -- The sweep announces the end of every lease written here, as the module does.
        redis.call('HSET', shard_key(s, 'nodes'), node, '0')
    end
    return held and 1 or 0
end

-- The sweep ----------------------------------------------------------------------------------

-- True when the room's keys are on this node. In a cluster the shard's keys may still name a
-- room whose slot moved to another master since (resharding): Redis refuses the access, which
-- pcall turns into a reply here, and the shard's keys forget the room (its new master finds it
-- at the room's next JOIN or RECONCILE).
local function room_here(r)
    return type(redis.pcall('EXISTS', r.index)) ~= 'table'
end

-- Puts the room on the shard's schedule at its earliest live-until, or takes it off once its
-- index is empty (or, in a cluster, its slot moved away); `earlier_only` leaves a room due
-- sooner as it is.
local function schedule_room(s, r, earlier_only)
    local schedule = shard_key(s, 'rooms')
    local first = room_here(r) and redis.call('ZRANGE', r.index, 0, 0, 'WITHSCORES') or {}
    if #first == 0 then
        redis.call('ZREM', schedule, r.room)
    elseif earlier_only then
        redis.call('ZADD', schedule, 'LT', first[2], r.room)
    else
        redis.call('ZADD', schedule, first[2], r.room)
    end
end

-- Brings the index of (room, user) in line with its key as found now, announcing what the
-- module would have announced when the key changed.
local function reconcile_key(s, r, node_up, user)
    local kind, value, expire_at = presence_value(s, r.room, user)
    local old, old_live_until = indexed(r, user)
    local node_ok, node = pcall(socket_node, value or '')
    if kind ~= 'string' or not node_ok then
        -- Gone, or no presence (another type, a value that is not a socket).
        if old then
            end_presence(s, r, node_up, user, old, gone_reason(s, node_up, old, old_live_until))
        end
        return old ~= nil
    end
    if expire_at == nil then
        -- A presence key never lives without a TTL (SPEC §2): removed, as the module's sweep.
        if old and old ~= value then
            end_presence(s, r, node_up, user, old, 'replaced')
        elseif old then
            unindex_presence(s, r, user, old)
        end
        redis.call('DEL', presence_key(s, r.room, user), data_key(s, r.room, user))
        ended_event(s, r.room, user, value, live_count(s, r, node_up), 'no-ttl')
        return true
    end
    local live_until = expire_at - s.shift
    if old == value and old_live_until == live_until then
        return false
    end
    local was_live = old == value and old_live_until > s.now and node_up(node)
    index_presence(s, r, user, value, live_until, old)
    local count = live_count(s, r, node_up)
    if old and old ~= value then
        ended_event(s, r.room, user, old, count, 'replaced')
    end
    if not was_live and live_until > s.now and node_up(node) then
        join_event(s, r.room, user, value, count, read_data(s, r.room, user))
    end
    return true
end

-- Removes one presence the index says is dead (or held through a down node), reading its key
-- first: a key that is live after all (a raw EXPIRE) is re-indexed silently. True when it was
-- removed.
local function sweep_one(s, r, node_up, user)
    local socket, live_until = indexed(r, user)
    if socket == nil then
        redis.call('ZREM', r.index, user)
        return false
    end
    local _, value, expire_at = presence_value(s, r.room, user)
    if value == nil then
        end_presence(s, r, node_up, user, socket, gone_reason(s, node_up, socket, live_until))
        return true
    end
    if value ~= socket then
        -- Another socket wrote the key without the engine: replaced, as the module announced.
        reconcile_key(s, r, node_up, user)
        return true
    end
    local reason = dead_reason(s, node_up, socket_node(socket), expire_at)
    if reason == nil then
        index_presence(s, r, user, socket, expire_at - s.shift, socket)
        return false
    end
    remove_presence(s, r, node_up, user, socket, reason)
    return true
end

-- Removes up to `budget` presences held through `node` (down), room after room.
local function sweep_node(s, node_up, node, budget)
    local rooms_key = node_rooms_key(s, node)
    local removed, cursor = 0, '0'
    -- One HSCAN pass at most: a scan from 0 again at each step could meet only empty buckets.
    repeat
        local scan = redis.call('HSCAN', rooms_key, cursor, 'COUNT', 16)
        cursor = scan[1]
        for i = 1, #scan[2], 2 do
            local r = room_keys(s, scan[2][i])
            local node_index = node_index_key(r, node)
            local users = room_here(r) and redis.call('ZRANGE', node_index, 0, budget - removed - 1) or {}
            if #users == 0 then
                redis.call('HDEL', rooms_key, r.room)
            end
            for _, user in ipairs(users) do
                if sweep_one(s, r, node_up, user) then
                    removed = removed + 1
                else
                    -- The index holds the user through another socket: this entry was stale.
                    redis.call('ZREM', node_index, user)
                end
            end
            if removed >= budget then
                return removed
            end
        end
    until cursor == '0'
    return removed
end

-- The nodes of the shard: a lease that ended is announced once (node-down, with the number of
-- presences held through the node then), then its presences are removed; a lease back before
-- that makes them live again, as in the module.
local function sweep_nodes(s, node_up, budget)
    local registry = shard_key(s, 'nodes')
    local states = redis.call('HGETALL', registry)
    local removed = 0
    for i = 1, #states, 2 do
        local node, announced = states[i], states[i + 1] == '1'
        local rooms_key = node_rooms_key(s, node)
        if node_up(node) then
            if announced then
                redis.call('HSET', registry, node, '0')
            end
        else
            if not announced then
                local presences = 0
                for _, n in ipairs(redis.call('HVALS', rooms_key)) do
                    presences = presences + tonumber(n)
                end
                node_down_event(node, presences)
                redis.call('HSET', registry, node, '1')
            end
            removed = removed + sweep_node(s, node_up, node, budget - removed)
            if redis.call('EXISTS', rooms_key) == 0 then
                redis.call('HDEL', registry, node)
            end
        end
        if removed >= budget then
            break
        end
    end
    return removed
end

-- The rooms due on the schedule, earliest first: their presences whose live-until passed, then
-- the room scheduled again at its earliest live-until (or dropped once empty).
local function sweep_rooms(s, node_up, budget)
    local schedule = shard_key(s, 'rooms')
    local removed, visits = 0, 0
    while removed < budget and visits < budget do
        local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', s.now, 'LIMIT', 0, 1)
        if #due == 0 then
            break
        end
        visits = visits + 1
        local r = room_keys(s, due[1])
        if room_here(r) then
            local users = redis.call('ZRANGEBYSCORE', r.index, '-inf', s.now, 'LIMIT', 0, budget - removed)
            for _, user in ipairs(users) do
                if sweep_one(s, r, node_up, user) then
                    removed = removed + 1
                end
            end
        end
        schedule_room(s, r, false)
    end
    return removed
end

-- Takes or renews the shard's sweep lease for `owner`; false while another sweeper holds it.
-- A lease of 0 ms sweeps without one (operators, tests).
local function take_sweep_lease(s, owner, lease_ms)
    if lease_ms == 0 then
        return true
    end
    local key = shard_key(s, 'sweep-lease')
    if redis.call('SET', key, owner, 'NX', 'PX', lease_ms) then
        return true
    end
    if redis.call('GET', key) ~= owner then
        return false
    end
    redis.call('PEXPIRE', key, lease_ms)
    return true
end

-- SWEEP owner leaseMs limit -> presences removed (at most limit; limit means more may be
-- left), or -1 while another sweeper holds the shard's sweep lease.
local function sweep(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args ~= 3 then
        wrong_arity('presence.sweep')
    end
    local owner = args[1]
    local lease_ms = integer_setting(args[2], 'leaseMs')
    local limit = integer_setting(args[3], 'limit')
    expect_keys(keys, {shard_key(s, 'rooms'), shard_key(s, 'nodes'), shard_key(s, 'sweep-lease')})
    if not take_sweep_lease(s, owner, lease_ms) then
        return -1
    end
    local node_up = lease_checker(s)
    local removed = sweep_nodes(s, node_up, limit)
    return removed + sweep_rooms(s, node_up, limit - removed)
end

-- Reconcile ----------------------------------------------------------------------------------

-- One bounded step over the room's keys (SCAN … MATCH room:presence:<room>:*), then over its
-- index (entries whose key is gone or changed). Returns the next cursor and the changes.
local function reconcile_step(s, r, node_up, cursor, step)
    local changed = 0
    if string.sub(cursor, 1, 2) == 'k:' then
        local prefix = 'room:presence:' .. room_part(s, r.room) .. ':'
        local scan = redis.call('SCAN', string.sub(cursor, 3), 'MATCH', prefix .. '*', 'COUNT', step)
        for _, key in ipairs(scan[2]) do
            local user = string.sub(key, #prefix + 1)
            if valid_id(user) and reconcile_key(s, r, node_up, user) then
                changed = changed + 1
            end
        end
        return scan[1] == '0' and 'i:' or ('k:' .. scan[1]), changed
    end
    local from = cursor == 'i:' and '-' or ('(' .. string.sub(cursor, 3))
    local members = redis.call('ZRANGEBYLEX', r.order, from, '+', 'LIMIT', 0, step)
    for _, member in ipairs(members) do
        local user = string.sub(member, 1, string.find(member, ' ', 1, true) - 1)
        if reconcile_key(s, r, node_up, user) then
            changed = changed + 1
        end
    end
    if #members < step then
        -- The end of a pass: the room is on this shard's schedule (a room whose slot moved here
        -- is not yet).
        schedule_room(s, r, true)
        return '0', changed
    end
    return 'i:' .. members[#members], changed
end

-- RECONCILE room cursor count -> {next cursor, presences changed}: start with cursor 0, call
-- again with the cursor returned until it is 0. Each call does COUNT of work.
local function reconcile(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args ~= 3 then
        wrong_arity('presence.reconcile')
    end
    local r = room_call(s, keys, args[1])
    reach_shard(s)
    local cursor = args[2] == '0' and 'k:0' or args[2]
    local step = integer_setting(args[3], 'count')
    if step < 1 or (string.sub(cursor, 1, 2) ~= 'k:' and string.sub(cursor, 1, 2) ~= 'i:') then
        fail('ERR invalid cursor or count')
    end
    local next_cursor, changed = reconcile_step(s, r, lease_checker(s), cursor, step)
    return {next_cursor, changed}
end

-- The room and user of a presence key in this form, or nil for any other key.
local function parse_presence_key(s, key)
    local room, user
    if s.cluster then
        room, user = string.match(key, '^room:presence:{([^}]*)}:(.*)$')
    else
        room, user = string.match(key, '^room:presence:([^:]*):(.*)$')
    end
    if valid_id(room) and valid_id(user) then
        return room, user
    end
    return nil
end

-- RECONCILE_ALL cursor count -> {next cursor, presences changed}: reconcile of every presence
-- key of the shard (an app server's start), COUNT keys of a SCAN a call; start with 0, call
-- again with the cursor until it is 0. Index entries whose key is gone are left to the sweep,
-- which meets them when they come due, or to RECONCILE of their room.
local function reconcile_all(keys, args)
    local s = settings(args)
    args = op_args(args)
    if #args ~= 2 then
        wrong_arity('presence.reconcile_all')
    end
    expect_keys(keys, {shard_key(s, 'rooms')})
    local step = integer_setting(args[2], 'count')
    if step < 1 or not string.find(args[1], '^%d+$') then
        fail('ERR invalid cursor or count')
    end
    local node_up = lease_checker(s)
    local scan = redis.call('SCAN', args[1], 'MATCH', 'room:presence:*', 'COUNT', step)
    local changed = 0
    for _, key in ipairs(scan[2]) do
        local room, user = parse_presence_key(s, key)
        if room and reconcile_key(s, room_keys(s, room), node_up, user) then
            changed = changed + 1
        end
    end
    return {scan[1], changed}
end

-- Entry points -------------------------------------------------------------------------------

-- An entry point: a refusal raised anywhere in `fn` is answered as the error reply alone (an
-- error raised out of a function would carry the script's name and line after its message).
local function entry(fn)
    return function(keys, args)
        local ok, result = pcall(fn, keys, args)
        if ok then
            return result
        elseif type(result) == 'table' and result.presence_error then
            return redis.error_reply(result.presence_error)
        end
        return error(result, 0)
    end
end

-- Every entry point may read the shard's keys (node leases, the sweep's schedule), which a
-- cluster keeps under the shard's tag, not the room's: see README.md.
local WRITES = {'allow-cross-slot-keys'}
local READS = {'no-writes', 'allow-cross-slot-keys'}
local ENTRY_POINTS = {
    {'join', entry(join), WRITES},
    {'beat', entry(beat), WRITES},
    {'leave', entry(leave), WRITES},
    {'update', entry(update), WRITES},
    {'list', entry(list), READS},
    {'count', entry(count), READS},
    {'lease', entry(lease), WRITES},
    {'sweep', entry(sweep), WRITES},
    {'reconcile', entry(reconcile), WRITES},
    {'reconcile_all', entry(reconcile_all), WRITES},
}

-- A library's loading sees only redis.register_function (not even pairs): plain loops here.
if redis.register_function then
    for i = 1, #ENTRY_POINTS do
        local entry = ENTRY_POINTS[i]
        redis.register_function{function_name = 'presence_v1_' .. entry[1], callback = entry[2], flags = entry[3]}
    end
else
    -- The EVAL form: ARGV[1] names the entry point.
    for i = 1, #ENTRY_POINTS do
        local entry = ENTRY_POINTS[i]
        if entry[1] == ARGV[1] then
            local args = {}
            for j = 2, #ARGV do
                args[#args + 1] = ARGV[j]
            end
            return entry[2](KEYS, args)
        end
    end
    return redis.error_reply('ERR unknown presence operation: ' .. tostring(ARGV[1]))
end
