-- identity.merges ProfilesMerged: the kept profile joins each cohort of the merged one it was
-- not in ('added', cause merge), then the merged one leaves every cohort ('removed').
-- ARGV: 2 now, 3 workspace, 4 merged user_id, 5/6 merged external_id, 7 kept user_id, 8/9 kept external_id, 10 source_id
local function apply()
  local now, ws, merged, kept, source = ARGV[2], ARGV[3], ARGV[4], ARGV[7], ARGV[10]
  local gone = gone_state(merged)
  if gone and gone ~= 't' then return {} end
  local target = current_user(kept)
  if target == merged then return {} end
  local merged_n = user_number(merged, false)
  local moving = {}
  local merged_external_id = optional(ARGV[5], ARGV[6])
  if merged_n then
    moving = cohorts_of(merged_n)
    if not merged_external_id then
      local _, recorded = read_record(merged_n)
      merged_external_id = recorded
    end
  end
  local outputs = {}
  if target then
    local kept_external_id = optional(ARGV[8], ARGV[9])
    if target ~= kept then kept_external_id = external_id_of(target) end
    local kept_n = remember_user(target, kept_external_id)
    for _, k in ipairs(moving) do
      if not is_member(k, kept_n) then
        add_member(k, kept_n, now)
        outputs[#outputs + 1] = change_event(ws, k, target, kept_external_id, 'added', 'merge', source, now)
      end
    end
  end
  for _, k in ipairs(moving) do
    remove_member(k, merged_n, now)
    outputs[#outputs + 1] = change_event(ws, k, merged, merged_external_id, 'removed', 'merge', source, now)
  end
  redis.call('HSET', spread('gone', merged), merged, target and ('m' .. SEP .. target) or 'd')
  if merged_n then redis.call('SREM', key('all', bucket_of(merged_n)), merged_n) end
  return outputs
end
