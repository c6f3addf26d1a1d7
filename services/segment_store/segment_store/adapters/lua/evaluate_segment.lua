-- Set algebra over bucketed sets, one bucket at a time: a segment's plan (domain/planning.py)
-- with its sources given as key prefixes (layout.py builds them), so this script knows no
-- key layout and no rule. Every step but the last stores into a temporary set; the last is
-- read directly. Temporary sets live only inside this call (a script runs atomically, so no
-- client sees them) and are deleted before it returns. All keys share one task's hash tag.
-- KEYS[1] any key of the task (routing); ARGV: 1 mode (size|page|contains), 2 plan JSON,
-- 3 temporary key prefix, 4 after (page) | the user's number (contains) | first bucket (size),
-- 5 limit (page), 6 most buckets to visit, 7 last bucket, 8 records prefix (page), 9 numbers per
-- bucket of a set, 10 numbers per bucket of the records' hashes
local steps = cjson.decode(ARGV[2])
local READ = {union = 'SUNION', inter = 'SINTER', diff = 'SDIFF'}
local STORE = {union = 'SUNIONSTORE', inter = 'SINTERSTORE', diff = 'SDIFFSTORE'}
local WIDTH, RECORDS_WIDTH = tonumber(ARGV[9]), tonumber(ARGV[10])
local last = tonumber(ARGV[7])

local function temporary(i) return ARGV[3] .. ':' .. i end

local function source_key(source, b)
  if source[1] == 'key' then return source[2] .. ':' .. b end
  if source[1] == 'step' then return temporary(source[2]) end
  return ARGV[3] .. ':none'
end

local function members_in(b)
  for i, step in ipairs(steps) do
    local keys = {}
    for _, source in ipairs(step[2]) do keys[#keys + 1] = source_key(source, b) end
    if i == #steps then return redis.call(READ[step[1]], unpack(keys)) end
    redis.call(STORE[step[1]], temporary(i), unpack(keys))
  end
  return {}
end

local function size()
  local b, budget, total = tonumber(ARGV[4]), tonumber(ARGV[6]), 0
  while b <= last and budget > 0 do
    total = total + #members_in(b)
    b = b + 1
    budget = budget - 1
  end
  if b > last then b = -1 end
  return {total, b}
end

local function page()
  local after, limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local out, found = {0, after}, 0
  local b = math.floor((after + 1) / WIDTH)
  while b <= last and budget > 0 do
    local numbers = {}
    for _, member in ipairs(members_in(b)) do
      local n = tonumber(member)
      if n > after then numbers[#numbers + 1] = n end
    end
    table.sort(numbers)
    for _, n in ipairs(numbers) do
      out[#out + 1] = n
      out[#out + 1] = redis.call('HGET', ARGV[8] .. ':' .. math.floor(n / RECORDS_WIDTH), n) or ''
      out[2] = n
      found = found + 1
      if found >= limit then return out end
    end
    out[2] = math.max(out[2], (b + 1) * WIDTH - 1)
    b = b + 1
    budget = budget - 1
  end
  if b > last then out[1] = 1 end
  return out
end

local function contains()
  local n = tonumber(ARGV[4])
  for _, member in ipairs(members_in(math.floor(n / WIDTH))) do
    if tonumber(member) == n then return 1 end
  end
  return 0
end

local result
if ARGV[1] == 'size' then result = size() elseif ARGV[1] == 'page' then result = page() else result = contains() end
if #steps > 1 then
  local temporaries = {}
  for i = 1, #steps - 1 do temporaries[i] = temporary(i) end
  redis.call('DEL', unpack(temporaries))
end
return result
