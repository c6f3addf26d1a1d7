-- Key layout and membership primitives shared by every segment-store script (see layout.py).
-- The including script sets BASE (the workspace's base key) and EVENT_NS (16 raw bytes).
local WIDTH = 512
local SEP = '\031'

local function key(...)
  return BASE .. ':' .. table.concat({...}, ':')
end

local function bucket_of(n)
  return math.floor(n / WIDTH)
end

-- Hashes keyed by a string (user IDs, identifiers) are split 4096 ways by sha1, so each
-- stays small enough for Redis's compact listpack encoding.
local function spread(kind, field)
  return key(kind, string.sub(redis.sha1hex(field), 1, 3))
end

local function index_key(field)
  return spread('ix', field)
end

local function nonempty(value)
  if value == false or value == nil then return nil end
  return value
end

-- ---------------------------------------------------------------- users

local function user_number(user_id, create)
  local hashed = spread('un', user_id)
  local n = redis.call('HGET', hashed, user_id)
  if n then return tonumber(n) end
  if not create then return nil end
  n = redis.call('HINCRBY', key('seq'), 'n', 1)
  redis.call('HSET', hashed, user_id, n)
  return n
end

-- user_id, external_id (or nil), whether it came from identity.profiles
local function read_record(n)
  local raw = nonempty(redis.call('HGET', key('rec', bucket_of(n)), n))
  if not raw then return nil, nil, false end
  local from_profile = string.sub(raw, 1, 1) == '1'
  local rest = string.sub(raw, 2)
  local at = string.find(rest, SEP, 1, true)
  if not at then return rest, nil, from_profile end
  return string.sub(rest, 1, at - 1), string.sub(rest, at + 1), from_profile
end

local function write_record(n, user_id, external_id, from_profile)
  local raw = (from_profile and '1' or '0') .. user_id
  if external_id then raw = raw .. SEP .. external_id end
  redis.call('HSET', key('rec', bucket_of(n)), n, raw)
end

local function gone_state(user_id)
  return nonempty(redis.call('HGET', spread('gone', user_id), user_id))
end

-- Where a change for user_id lands now: itself, the profile it was merged into, nil if deleted.
local function current_user(user_id)
  for _ = 1, 64 do
    local gone = gone_state(user_id)
    if not gone or gone == 't' then return user_id end
    if gone == 'd' then return nil end
    user_id = string.sub(gone, 3)
  end
  return user_id
end

local function external_id_of(user_id)
  local n = user_number(user_id, false)
  if not n then return nil end
  local _, external_id = read_record(n)
  return external_id
end

-- A user seen in a change or merge: numbered, remembered with its external ID unless the
-- profile index already knows better, and one of the workspace's profiles unless tombstoned.
local function remember_user(user_id, external_id)
  local n = user_number(user_id, true)
  local known_user, known_external_id, from_profile = read_record(n)
  if not from_profile and (not known_user or (external_id and external_id ~= known_external_id)) then
    write_record(n, user_id, external_id or known_external_id, false)
    if external_id then
      local field = 'x' .. SEP .. external_id
      redis.call('HSETNX', index_key(field), field, user_id)
    end
  end
  if gone_state(user_id) ~= 't' then
    redis.call('SADD', key('all', bucket_of(n)), n)
  end
  return n
end

-- Drop the profile index fields that point at user_id (and only those: another profile may
-- hold one of them by now): its external ID, from its record, and its aliases and devices.
local function unindex(n, user_id)
  local fields = nonempty(redis.call('HGET', key('ids', bucket_of(n)), n))
  local list = fields and cjson.decode(fields) or {}
  local _, external_id = read_record(n)
  if external_id then list[#list + 1] = 'x' .. SEP .. external_id end
  for _, field in ipairs(list) do
    if redis.call('HGET', index_key(field), field) == user_id then redis.call('HDEL', index_key(field), field) end
  end
  redis.call('HDEL', key('ids', bucket_of(n)), n)
end

-- ---------------------------------------------------------------- cohorts

local function cohort_number(partner, cohort_id, now)
  local field = partner .. SEP .. cohort_id
  local k = redis.call('HGET', key('c'), field)
  if k then return tonumber(k) end
  k = redis.call('HINCRBY', key('seq'), 'c', 1)
  redis.call('HSET', key('c'), field, k)
  local same_id = nonempty(redis.call('HGET', key('byid'), cohort_id))
  redis.call('HSET', key('byid'), cohort_id, same_id and (same_id .. ' ' .. k) or tostring(k))
  redis.call('HSET', key('cm', k), 'p', partner, 'c', cohort_id, 'nm', cohort_id, 'mc', 0, 'ua', now)
  return k
end

-- A user's cohorts: up to INLINE numbers in one hash field ("k1 k2 ..."), more in a set of
-- their own (the field then holds "*"), so no change ever re-reads or rewrites more than
-- INLINE numbers, however many cohorts the user is in.
local INLINE = 32

local function rev_set(n)
  return key('rv', n)
end

local function cohorts_of(n)
  local raw = nonempty(redis.call('HGET', key('rev', bucket_of(n)), n))
  local list = {}
  if raw == '*' then
    for _, k in ipairs(redis.call('SMEMBERS', rev_set(n))) do list[#list + 1] = tonumber(k) end
  elseif raw then
    for k in string.gmatch(raw, '%d+') do list[#list + 1] = tonumber(k) end
  end
  table.sort(list)
  return list
end

local function remember_cohort(n, k)
  local field_key = key('rev', bucket_of(n))
  local raw = nonempty(redis.call('HGET', field_key, n))
  if raw == '*' then
    redis.call('SADD', rev_set(n), k)
  elseif not raw then
    redis.call('HSET', field_key, n, tostring(k))
  else
    local count = select(2, string.gsub(raw, ' ', ' ')) + 1
    if count < INLINE then
      redis.call('HSET', field_key, n, raw .. ' ' .. k)
    else
      local numbers = {k}
      for other in string.gmatch(raw, '%d+') do numbers[#numbers + 1] = other end
      redis.call('SADD', rev_set(n), unpack(numbers))
      redis.call('HSET', field_key, n, '*')
    end
  end
end

local function forget_cohort(n, k)
  local field_key = key('rev', bucket_of(n))
  local raw = nonempty(redis.call('HGET', field_key, n))
  if raw == '*' then
    redis.call('SREM', rev_set(n), k)
    if redis.call('EXISTS', rev_set(n)) == 0 then redis.call('HDEL', field_key, n) end
  elseif raw then
    local kept, target = {}, tostring(k)
    for other in string.gmatch(raw, '%d+') do
      if other ~= target then kept[#kept + 1] = other end
    end
    if #kept == 0 then redis.call('HDEL', field_key, n) else redis.call('HSET', field_key, n, table.concat(kept, ' ')) end
  end
end

local function is_member(k, n)
  return redis.call('SISMEMBER', key('m', k, bucket_of(n)), n) == 1
end

local function add_member(k, n, now)
  redis.call('SADD', key('m', k, bucket_of(n)), n)
  redis.call('HINCRBY', key('cm', k), 'mc', 1)
  redis.call('HSET', key('cm', k), 'ua', now)
  remember_cohort(n, k)
end

local function remove_member(k, n, now)
  redis.call('SREM', key('m', k, bucket_of(n)), n)
  redis.call('HINCRBY', key('cm', k), 'mc', -1)
  redis.call('HSET', key('cm', k), 'ua', now)
  forget_cohort(n, k)
end

-- ---------------------------------------------------------------- events

-- uuid5(EVENT_NS, fields joined by \x1f): the same as domain/events.py.
local function event_id(...)
  local h = redis.sha1hex(EVENT_NS .. table.concat({...}, SEP))
  local variant = string.format('%x', (tonumber(string.sub(h, 17, 17), 16) % 4) + 8)
  return string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-5' .. string.sub(h, 14, 16) .. '-'
    .. variant .. string.sub(h, 18, 20) .. '-' .. string.sub(h, 21, 32)
end

local function change_event(ws, k, user_id, external_id, change, cause, source, now)
  local partner, cohort_id = unpack(redis.call('HMGET', key('cm', k), 'p', 'c'))
  local value = {
    event_id = event_id(ws, partner, cohort_id, user_id, change, cause, source),
    workspace_id = ws, partner = partner, cohort_id = cohort_id, user_id = user_id,
    external_id = external_id or cjson.null, change = change, cause = cause, occurred_at = now,
  }
  -- The value travels encoded, so Python publishes it as it is; change and cause are for metrics.
  return {topic = 'membership.changes', key = user_id, value = cjson.encode(value), change = change, cause = cause}
end

-- ARGV helper: an optional string travels as (value, '1'|'0').
local function optional(value, present)
  if present == '1' then return value end
  return nil
end
