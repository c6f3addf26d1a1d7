-- Resolve a user_ref in the workspace: {user_id, n} (+ partner, cohort_id, name of each of its
-- cohorts when ARGV[3] is '1'), or {} when no current profile matches.
-- KEYS[1] base; ARGV: 1 'user_id' or 'index', 2 the user ID or the index field, 3 '1'|'0'
local function find()
  local user_id = ARGV[2]
  if ARGV[1] == 'index' then user_id = nonempty(redis.call('HGET', index_key(ARGV[2]), ARGV[2])) end
  if not user_id or gone_state(user_id) then return {} end
  local n = user_number(user_id, false)
  if not n then return {} end
  local out = {user_id, n}
  if ARGV[3] == '1' then
    for _, k in ipairs(cohorts_of(n)) do
      local fields = redis.call('HMGET', key('cm', k), 'p', 'c', 'nm')
      out[#out + 1] = fields[1]
      out[#out + 1] = fields[2]
      out[#out + 1] = fields[3]
    end
  end
  return out
end
return find()
