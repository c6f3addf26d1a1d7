-- cohort.meta CohortNamed: create or rename. ARGV: 2 now, 3 workspace, 4 partner, 5 cohort_id, 6 name
local function apply()
  local k = cohort_number(ARGV[4], ARGV[5], ARGV[2])
  redis.call('HSET', key('cm', k), 'nm', ARGV[6], 'ua', ARGV[2])
  return {}
end
