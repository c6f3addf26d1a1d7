-- identity.merges ProfileDeleted: the profile leaves every cohort ('removed', cause delete).
-- ARGV: 2 now, 3 workspace, 4 user_id, 5/6 external_id, 7 source_id
local function apply()
  local now, ws, user_id, source = ARGV[2], ARGV[3], ARGV[4], ARGV[7]
  local gone = gone_state(user_id)
  if gone and gone ~= 't' then return {} end
  local n = user_number(user_id, false)
  local outputs = {}
  if n then
    local external_id = optional(ARGV[5], ARGV[6])
    if not external_id then
      local _, recorded = read_record(n)
      external_id = recorded
    end
    for _, k in ipairs(cohorts_of(n)) do
      remove_member(k, n, now)
      outputs[#outputs + 1] = change_event(ws, k, user_id, external_id, 'removed', 'delete', source, now)
    end
    redis.call('SREM', key('all', bucket_of(n)), n)
  end
  redis.call('HSET', spread('gone', user_id), user_id, 'd')
  return outputs
end
