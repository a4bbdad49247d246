-- What the store holds under one hash tag, read without changing anything.
-- KEYS: keys to read; when ARGV[2] is '1', the last is a registration log, counted over
-- the window ARGV[1] µs. Answers this Redis's clock (µs), then each key's value ('' when
-- absent) or the log's count.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {string.format('%d', now)}
local n = #KEYS
if ARGV[2] == '1' then n = n - 1 end
for i = 1, n do out[#out + 1] = redis.call('GET', KEYS[i]) or '' end
if ARGV[2] == '1' then
  out[#out + 1] = tostring(redis.call('ZCOUNT', KEYS[#KEYS],
    '(' .. string.format('%d', now - tonumber(ARGV[1])), '+inf'))
end
return out
