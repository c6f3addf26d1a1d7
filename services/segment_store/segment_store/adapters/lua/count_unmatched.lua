-- membership.unmatched: one identifier no profile matched, counted by reason.
-- ARGV: 2 now, 3 workspace, 4 partner, 5 cohort_id, 6 reason
local function apply()
  local k = cohort_number(ARGV[4], ARGV[5], ARGV[2])
  redis.call('HINCRBY', key('cm', k), 'u:' .. ARGV[6], 1)
  return {}
end
