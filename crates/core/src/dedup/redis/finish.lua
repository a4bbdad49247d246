-- Records a sending call's outcome, in one round trip.
-- KEYS[1] the flight, KEYS[2] the journal, KEYS[3] the window, KEYS[4] this call's outcome
-- (read by followers), KEYS[5] the idempotency record (optional)
-- ARGV[1] this call's id, ARGV[2] 'sent' (Meta confirmed), 'maybe' (a code may have gone
-- out) or 'none', ARGV[3] the outcome, ARGV[4] the method ('' for single flight only),
-- ARGV[5] the window ms, ARGV[6] how long followers may read the outcome (ms),
-- ARGV[7] the idempotency record, ARGV[8] its life (ms), ARGV[9] the answer's fbtrace_id
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local method = ARGV[4]
if method ~= '' then
  local j = redis.call('GET', KEYS[2])
  local tail = '|' .. ARGV[1]
  local mine = j and string.sub(j, -#tail) == tail
  if ARGV[2] == 'sent' then
    redis.call('SET', KEYS[3], method .. '|' .. tostring(now) .. '|' .. ARGV[9], 'PX', ARGV[5])
    if mine then redis.call('DEL', KEYS[2]) end
  elseif ARGV[2] == 'maybe' then
    redis.call('SET', KEYS[2], method .. '|' .. tostring(now) .. tail, 'PX', ARGV[5])
  elseif mine then
    redis.call('DEL', KEYS[2])
  end
end
redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[6])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if KEYS[5] then redis.call('SET', KEYS[5], ARGV[7], 'PX', ARGV[8]) end
return tostring(now)
