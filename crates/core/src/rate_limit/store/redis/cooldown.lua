-- KEYS: the cooldown key. ARGV: wait µs. Keeps the later of the two ends.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > cur then
  redis.call('SET', KEYS[1], until_, 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1)
end
return until_
