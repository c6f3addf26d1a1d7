-- membership.resolved: one add or remove of one user in one cohort.
-- ARGV: 2 now, 3 workspace, 4 partner, 5 cohort_id, 6 user_id, 7/8 external_id, 9 add|remove, 10 source_id
local function apply()
  local now, ws, partner, cohort_id, user_id = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  local external_id, change, source = optional(ARGV[7], ARGV[8]), ARGV[9], ARGV[10]
  local k = cohort_number(partner, cohort_id, now)
  local target = current_user(user_id)
  if not target then
    redis.call('HINCRBY', key('cm', k), 'u:profile_deleted', 1)
    return {}
  end
  if target ~= user_id then external_id = external_id_of(target) end
  local n = remember_user(target, external_id)
  if is_member(k, n) == (change == 'add') then
    redis.call('HINCRBY', key('cm', k), 'al', 1)
    return {}
  end
  if change == 'add' then add_member(k, n, now) else remove_member(k, n, now) end
  redis.call('HINCRBY', key('cm', k), 'ap', 1)
  redis.call('INCR', key('usage'))
  local past = (change == 'add') and 'added' or 'removed'
  return {change_event(ws, k, target, external_id, past, 'cohort_import', source, now)}
end
