-- Identity resolution: one call applies one input record to one workspace's tables,
-- atomically. The rules mirror domain/matching.py and domain/identity_ops.py line for line;
-- tests run both against the same table. Wrapped by cohort_shared.eos.TrackedScript, so
-- KEYS[1], KEYS[2] and ARGV[1] belong to the tracking; ours start at KEYS[3] / ARGV[2].
--
-- KEYS[3]  the workspace's key base, '<prefix>identity-resolution:{<ws>}'; every key below
--          derives from it, so all share the workspace's hash tag (one cluster slot)
-- ARGV[2]  default topic name of the input     ARGV[3]  the input message, JSON, nulls left out
-- ARGV[4]  now, ISO-8601                        ARGV[5]  now, epoch ms
-- ARGV[6]  parked until, ISO-8601               ARGV[7]  parked until, epoch ms
-- ARGV[8]  park window, seconds (TTL of a park key)
-- ARGV[9]  most changes the workspace may have parked
--
-- Keys: <base>:ext / :alias / :dev   hashes external ID / alias key / device ID -> user ID
--       <base>:p:<user>              hash {ext, created_as}
--       <base>:p:<user>:aliases      set of alias keys;  <base>:p:<user>:devices  set of devices
--       <base>:park:<e|a|d>:<ident>  hash '<partner>:<cohort>' -> parked change (JSON)
--       <base>:parkcount             hash expiry bucket (10 min) -> parked changes
--       <base>:req:<request_id>      string, the report of an identity request (JSON; 7 days)
--       <base>:skipped               hash reason -> identity entries skipped, ever

local base = KEYS[3]
local input_topic, msg = ARGV[2], cjson.decode(ARGV[3])
local now_iso, now_ms = ARGV[4], tonumber(ARGV[5])
local until_iso, until_ms, window = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
local max_parked = tonumber(ARGV[9])
local PARK_BUCKET_MS = 600000
local now_bucket = math.floor(now_ms / PARK_BUCKET_MS)
local ws = msg.workspace_id
local EXT, ALIAS, DEV = base .. ':ext', base .. ':alias', base .. ':dev'

local outputs = {}
local tally = {resolved = 0, drained = 0, parked = 0, parked_now = -1, unmatched = {}, skipped = {},
  skipped_entries = {}}
local current_entry = 0
local REPORT_TTL_SECONDS = 7 * 24 * 3600

local BOGUS = {[''] = true, ['null'] = true, ['none'] = true, ['undefined'] = true, ['anonymous'] = true,
  ['0'] = true, ['-1'] = true, ['[object object]'] = true, ['nan'] = true}
local UNKNOWN = {external_id = 'unknown_external_id', alias = 'unknown_alias', device_id = 'unknown_device_id'}
local PARKABLE = {unknown_external_id = true, unknown_alias = true, unknown_device_id = true}

-- ---------------------------------------------------------------- identifiers

local function is_bogus(value)
  return BOGUS[string.lower(string.match(value, '^%s*(.-)%s*$'))] == true
end

local function bogus_identifier(id)
  return is_bogus(id.value) or (id.label ~= nil and is_bogus(id.label))
end

local function alias_key(label, name)
  return #label .. ':' .. label .. name
end

local function alias_from_key(key)
  local n, rest = string.match(key, '^(%d+):(.*)$')
  n = tonumber(n)
  return {alias_label = string.sub(rest, 1, n), alias_name = string.sub(rest, n + 1)}
end

-- Byte order, as Python sorts: Lua's own '<' on strings follows the server's LC_COLLATE.
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function derive_user_id(index)
  return 'u' .. string.sub(redis.sha1hex(ws .. '|' .. msg.request_id .. '|' .. index), 1, 23)
end

local function lookup(id)
  if id.kind == 'external_id' then return redis.call('HGET', EXT, id.value) end
  if id.kind == 'alias' then return redis.call('HGET', ALIAS, alias_key(id.label, id.value)) end
  return redis.call('HGET', DEV, id.value)
end

local function park_key(id)
  if id.kind == 'alias' then return base .. ':park:a:' .. alias_key(id.label, id.value) end
  if id.kind == 'external_id' then return base .. ':park:e:' .. id.value end
  return base .. ':park:d:' .. id.value
end

-- Parked changes counted by 10 minutes of expiry (domain/book.py): past buckets stop counting.
local PARKCOUNT = base .. ':parkcount'

local function live_parked()
  local flat, total = redis.call('HGETALL', PARKCOUNT), 0
  for i = 1, #flat, 2 do
    if tonumber(flat[i]) < now_bucket then
      redis.call('HDEL', PARKCOUNT, flat[i])
    else
      total = total + tonumber(flat[i + 1])
    end
  end
  return total
end

local function count_parked(expires_ms, delta)
  local bucket = math.floor(expires_ms / PARK_BUCKET_MS)
  if bucket >= now_bucket then redis.call('HINCRBY', PARKCOUNT, string.format('%d', bucket), delta) end
end

-- ---------------------------------------------------------------- profiles

local function pkey(user) return base .. ':p:' .. user end

local function external_id_of(user) return redis.call('HGET', pkey(user), 'ext') end

local function create(user, created_as) redis.call('HSET', pkey(user), 'created_as', created_as) end

local function set_external_id(user, ext)
  redis.call('HSET', pkey(user), 'ext', ext)
  redis.call('HSET', EXT, ext, user)
end

local function add_alias(user, key)
  redis.call('SADD', pkey(user) .. ':aliases', key)
  redis.call('HSET', ALIAS, key, user)
end

local function add_device(user, device)
  redis.call('SADD', pkey(user) .. ':devices', device)
  redis.call('HSET', DEV, device, user)
end

local function drop_profile(user)
  local p = pkey(user)
  redis.call('DEL', p, p .. ':aliases', p .. ':devices')
end

-- ---------------------------------------------------------------- outputs

local function emit(topic, key, value) outputs[#outputs + 1] = {topic = topic, key = key, value = value} end
local function tombstone(user) outputs[#outputs + 1] = {topic = 'identity.profiles', key = user, tombstone = true} end
local function count(counts, reason) counts[reason] = (counts[reason] or 0) + 1 end
local function skip(reason)
  count(tally.skipped, reason)
  tally.skipped_entries[#tally.skipped_entries + 1] = {index = current_entry, reason = reason}
end

local function publish(user)
  local ext = external_id_of(user)
  local keys = redis.call('SMEMBERS', pkey(user) .. ':aliases')
  table.sort(keys, bytes_less)
  local aliases, devices = nil, redis.call('SMEMBERS', pkey(user) .. ':devices')
  for _, key in ipairs(keys) do
    aliases = aliases or {}
    aliases[#aliases + 1] = alias_from_key(key)
  end
  table.sort(devices, bytes_less)
  if #devices == 0 then devices = nil end -- cjson encodes {} as an object; absent means []
  emit('identity.profiles', user, {type = 'profile_updated', workspace_id = ws, user_id = user,
    external_id = ext or nil, identified = ext and true or false, aliases = aliases, device_ids = devices,
    updated_at = now_iso})
end

local function emit_resolved(change, user, ext, was_parked)
  emit('membership.resolved', user, {type = 'membership_resolved', workspace_id = ws,
    partner = change.partner, cohort_id = change.cohort_id, user_id = user, external_id = ext or nil,
    change = change.change, identifier = change.identifier, source_id = change.source_id,
    accepted_at = change.accepted_at, resolved_at = now_iso, was_parked = was_parked})
end

-- ---------------------------------------------------------------- matching

local function match(id)
  if bogus_identifier(id) then return nil, nil, 'invalid_identifier' end
  local user = lookup(id)
  if not user then return nil, nil, UNKNOWN[id.kind] end
  if id.kind == 'external_id' then return user, id.value end
  local ext = external_id_of(user)
  if id.kind == 'device_id' and ext then return nil, nil, 'device_id_of_identified_user' end
  return user, ext
end

local function resolve_cohort_changes()
  local field = msg.partner .. ':' .. msg.cohort_id
  local unmatched_key = ws .. '\31' .. msg.partner .. '\31' .. msg.cohort_id
  local live = live_parked()
  for i, change in ipairs(msg.changes) do
    local parked = {partner = msg.partner, cohort_id = msg.cohort_id,
      change = change.should_remove and 'remove' or 'add', identifier = change.identifier,
      source_id = msg.request_id .. ':' .. (i - 1), accepted_at = msg.accepted_at, until_ms = until_ms}
    local user, ext, reason = match(change.identifier)
    if user then
      emit_resolved(parked, user, ext, false)
      tally.resolved = tally.resolved + 1
    else
      local parked_until = nil
      if PARKABLE[reason] then
        local key = park_key(change.identifier)
        local earlier = redis.call('HGET', key, field)
        if not earlier and live >= max_parked then
          reason = 'parking_full'
        else
          if earlier then count_parked(cjson.decode(earlier).until_ms, -1) else live = live + 1 end
          redis.call('HSET', key, field, cjson.encode(parked)) -- a later change replaces it
          redis.call('EXPIRE', key, window)
          count_parked(until_ms, 1)
          parked_until = until_iso
          tally.parked = tally.parked + 1
        end
      end
      count(tally.unmatched, reason)
      emit('membership.unmatched', unmatched_key, {type = 'membership_unmatched', workspace_id = ws,
        partner = msg.partner, cohort_id = msg.cohort_id, change = parked.change,
        identifier = change.identifier, reason = reason, source_id = parked.source_id,
        accepted_at = msg.accepted_at, parked_until = parked_until})
    end
  end
  tally.parked_now = live_parked()
end

-- `id` now names `user`: apply what was parked for it, except what outlived its window.
local function drain(id, user, ext)
  local key = park_key(id)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return end
  redis.call('DEL', key)
  local fields, waiting = {}, {}
  for j = 1, #flat, 2 do
    fields[#fields + 1] = flat[j]
    waiting[flat[j]] = flat[j + 1]
  end
  table.sort(fields, bytes_less)
  for _, field in ipairs(fields) do
    local parked = cjson.decode(waiting[field])
    count_parked(parked.until_ms, -1)
    if parked.until_ms >= now_ms then
      emit_resolved(parked, user, ext, true)
      tally.drained = tally.drained + 1
    end
  end
end

-- ---------------------------------------------------------------- identity requests

local function track_one(index, attrs)
  local id = {kind = 'device_id', value = attrs.device_id}
  if attrs.external_id then id = {kind = 'external_id', value = attrs.external_id} end
  if bogus_identifier(id) then return skip('invalid_identifier') end
  if lookup(id) then return end -- a touch
  local user = derive_user_id(index)
  if attrs.external_id then
    create(user, 'identified')
    set_external_id(user, id.value)
  else
    create(user, 'anonymous')
    add_device(user, id.value)
  end
  publish(user)
  drain(id, user, attrs.external_id)
end

local function alias_one(index, entry)
  local id = {kind = 'alias', value = entry.alias_name, label = entry.alias_label}
  if bogus_identifier(id) or (entry.external_id and is_bogus(entry.external_id)) then
    return skip('invalid_identifier')
  end
  local key = alias_key(entry.alias_label, entry.alias_name)
  local holder = redis.call('HGET', ALIAS, key)
  local user
  if not entry.external_id then
    if holder then return end -- a touch
    user = derive_user_id(index)
    create(user, 'alias')
  else
    user = redis.call('HGET', EXT, entry.external_id)
    if not user then return skip('unknown_external_id') end
    if holder == user then return end -- a touch
    if holder then return skip('alias_of_other_user') end
  end
  add_alias(user, key)
  publish(user)
  drain(id, user, external_id_of(user))
end

-- `kept` receives `merged`'s aliases and devices; `merged` and its external ID disappear.
local function merge(merged, kept, source_id)
  local p = pkey(merged)
  local aliases = redis.call('SMEMBERS', p .. ':aliases')
  local devices = redis.call('SMEMBERS', p .. ':devices')
  for _, key in ipairs(aliases) do add_alias(kept, key) end
  for _, device in ipairs(devices) do add_device(kept, device) end
  local merged_ext = external_id_of(merged)
  if merged_ext then redis.call('HDEL', EXT, merged_ext) end
  drop_profile(merged)
  emit('identity.merges', merged, {type = 'profiles_merged', workspace_id = ws, merged_user_id = merged,
    merged_external_id = merged_ext or nil, kept_user_id = kept, kept_external_id = external_id_of(kept) or nil,
    source_id = source_id, merged_at = now_iso})
  if #aliases + #devices > 0 then publish(kept) end
  tombstone(merged)
end

local function identify_one(index, named, ext)
  if bogus_identifier(named) or is_bogus(ext) then return skip('invalid_identifier') end
  local user = lookup(named)
  if not user then return skip(UNKNOWN[named.kind]) end
  local current = external_id_of(user)
  if current == ext then return end -- a touch
  if current then return skip('already_identified') end
  local owner = redis.call('HGET', EXT, ext)
  if owner then return merge(user, owner, msg.request_id .. ':' .. index) end
  set_external_id(user, ext)
  publish(user)
  drain({kind = 'external_id', value = ext}, user, ext)
end

local function as_identifier(named)
  if named.external_id then return {kind = 'external_id', value = named.external_id} end
  if named.user_alias then
    return {kind = 'alias', value = named.user_alias.alias_name, label = named.user_alias.alias_label}
  end
  return {kind = 'device_id', value = named.device_id}
end

local function merge_one(index, update)
  local to_merge, to_keep = as_identifier(update.identifier_to_merge), as_identifier(update.identifier_to_keep)
  if bogus_identifier(to_merge) or bogus_identifier(to_keep) then return skip('invalid_identifier') end
  local merged, kept = lookup(to_merge), lookup(to_keep)
  if not merged then return skip(UNKNOWN[to_merge.kind]) end
  if not kept then return skip(UNKNOWN[to_keep.kind]) end
  if merged == kept then return skip('same_profile') end
  merge(merged, kept, msg.request_id .. ':' .. index)
end

local function delete_one(index, id)
  if bogus_identifier(id) then return skip('invalid_identifier') end
  local user = lookup(id)
  if not user then return skip(UNKNOWN[id.kind]) end
  local p = pkey(user)
  local ext = external_id_of(user)
  if ext then redis.call('HDEL', EXT, ext) end
  for _, key in ipairs(redis.call('SMEMBERS', p .. ':aliases')) do redis.call('HDEL', ALIAS, key) end
  for _, device in ipairs(redis.call('SMEMBERS', p .. ':devices')) do redis.call('HDEL', DEV, device) end
  drop_profile(user)
  emit('identity.merges', user, {type = 'profile_deleted', workspace_id = ws, user_id = user,
    external_id = ext or nil, source_id = msg.request_id .. ':' .. index, deleted_at = now_iso})
  tombstone(user)
end

-- What the operator who sent a request can read back (GET …/identity-requests/<id>).
local function store_report(entries)
  local skipped = 0
  for _, n in pairs(tally.skipped) do skipped = skipped + n end
  local report = {request_id = msg.request_id, type = msg.type, entries = entries, skipped = skipped,
    skipped_by_reason = tally.skipped, skipped_entries = tally.skipped_entries, applied_at = now_iso}
  if skipped == 0 then report.skipped_by_reason = nil; report.skipped_entries = nil end
  local key = base .. ':req:' .. msg.request_id
  redis.call('SET', key, cjson.encode(report), 'EX', REPORT_TTL_SECONDS)
  for reason, n in pairs(tally.skipped) do redis.call('HINCRBY', base .. ':skipped', reason, n) end
end

local function apply_identity_request()
  local kind, index = msg.type, 0
  local function each(list, fn)
    for _, item in ipairs(list or {}) do
      current_entry = index
      fn(index, item)
      index = index + 1
    end
  end
  if kind == 'track_requested' then
    each(msg.attributes, track_one)
  elseif kind == 'alias_requested' then
    each(msg.user_aliases, alias_one)
  elseif kind == 'identify_requested' then
    each(msg.aliases_to_identify, function(i, e)
      identify_one(i, {kind = 'alias', value = e.user_alias.alias_name, label = e.user_alias.alias_label}, e.external_id)
    end)
    each(msg.devices_to_identify, function(i, e)
      identify_one(i, {kind = 'device_id', value = e.device_id}, e.external_id)
    end)
  elseif kind == 'merge_requested' then
    each(msg.merge_updates, merge_one)
  elseif kind == 'delete_requested' then
    each(msg.external_ids, function(i, v) delete_one(i, {kind = 'external_id', value = v}) end)
    each(msg.user_aliases, function(i, a) delete_one(i, {kind = 'alias', value = a.alias_name, label = a.alias_label}) end)
    each(msg.device_ids, function(i, v) delete_one(i, {kind = 'device_id', value = v}) end)
  end
  store_report(index)
end

local function apply()
  if input_topic == 'cohort.changes' then
    resolve_cohort_changes()
  else
    apply_identity_request()
  end
  -- Values leave encoded, so Python publishes them as they are instead of re-encoding each.
  for _, output in ipairs(outputs) do
    if output.value ~= nil then output.value = cjson.encode(output.value) end
  end
  outputs[#outputs + 1] = {topic = '_tally', value = tally}
  return outputs
end
