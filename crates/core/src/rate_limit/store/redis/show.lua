-- What the store holds for one number, read without changing anything.
-- KEYS[1..4] its cooldowns by class, KEYS[5..8] their records, KEYS[9..12] the app's
-- cooldowns, KEYS[13] its wrong-code counter, KEYS[14] its registration log.
-- ARGV[1] the registration window µs.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {string.format('%d', now)}
for i = 1, 13 do out[#out + 1] = redis.call('GET', KEYS[i]) or '' end
out[#out + 1] = tostring(redis.call('ZCOUNT', KEYS[14],
  '(' .. string.format('%d', now - tonumber(ARGV[1])), '+inf'))
return out
