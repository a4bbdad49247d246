-- Decides what a sending call does, in one round trip.
-- KEYS[1] the flight (its leader's id while a call is being sent, with a lease)
-- KEYS[2] the journal (request_code: "METHOD|sent ms|leader" of a code that may have gone out)
-- KEYS[3] the live-code window (request_code: "METHOD|sent ms|fbtrace_id" of a code Meta
-- confirmed)
-- KEYS[4] the idempotency record (optional)
-- ARGV[1] this call's id, ARGV[2] the lease in ms, ARGV[3] the method ('' for single
-- flight only), ARGV[4] '1' to send again whatever the window says, ARGV[5] the window ms
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if KEYS[4] then
  local v = redis.call('GET', KEYS[4])
  if v then return {'replay', v} end
end
local leader = redis.call('GET', KEYS[1])
if leader then return {'follow', leader} end
local method = ARGV[3]
if method ~= '' and ARGV[4] ~= '1' then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    return {'maybe', tostring(redis.call('PTTL', KEYS[2]))}
  end
  local w = redis.call('GET', KEYS[3])
  if w then
    local m, sent, trace = string.match(w, '^(%u+)|(%d+)|(.*)$')
    if m == method then
      return {'sent', sent, tostring(now + redis.call('PTTL', KEYS[3])), trace}
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if method ~= '' then
  -- The journal entry: a code may go out from now on.
  redis.call('SET', KEYS[2], method .. '|' .. tostring(now) .. '|' .. ARGV[1], 'PX', ARGV[5])
end
return {'lead', tostring(now)}
