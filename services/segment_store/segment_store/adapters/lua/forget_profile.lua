-- identity.profiles tombstone: the profile no longer exists. Its identifiers leave the index and
-- it leaves "every profile"; its memberships are left to identity.merges (a merge or a
-- deletion), which may arrive later and must still find them.
-- ARGV: 2 now, 3 workspace, 4 user_id
local function apply()
  local user_id = ARGV[4]
  local n = user_number(user_id, false)
  if n then
    unindex(n, user_id)
    redis.call('SREM', key('all', bucket_of(n)), n)
  end
  if not gone_state(user_id) then redis.call('HSET', spread('gone', user_id), user_id, 't') end
  return {}
end
