-- cohort.meta CohortChangesReceived: the sync report's received and dropped counts.
-- ARGV: 2 now, 3 workspace, 4 partner, 5 cohort_id, 6 received, 7 dropped pre_2010
local function apply()
  local k = cohort_number(ARGV[4], ARGV[5], ARGV[2])
  redis.call('HINCRBY', key('cm', k), 'rc', tonumber(ARGV[6]))
  redis.call('HINCRBY', key('cm', k), 'pd', tonumber(ARGV[7]))
  return {}
end
