-- identity.profiles ProfileUpdated: the profile's current identifiers, for listings and user_refs.
-- ARGV: 2 now, 3 workspace, 4 user_id, 5/6 external_id, 7 JSON list of its alias and device index fields
local function apply()
  local user_id, external_id, fields = ARGV[4], optional(ARGV[5], ARGV[6]), ARGV[7]
  local gone = gone_state(user_id)
  if gone and gone ~= 't' then return {} end  -- merged or deleted: a late update must not revive it
  if gone then redis.call('HDEL', spread('gone', user_id), user_id) end
  local n = user_number(user_id, true)
  unindex(n, user_id)
  local indexed = cjson.decode(fields)
  if external_id then indexed[#indexed + 1] = 'x' .. SEP .. external_id end
  for _, field in ipairs(indexed) do redis.call('HSET', index_key(field), field, user_id) end
  if fields ~= '[]' then redis.call('HSET', key('ids', bucket_of(n)), n, fields) end
  write_record(n, user_id, external_id, true)
  redis.call('SADD', key('all', bucket_of(n)), n)
  return {}
end
