-- Gives back what one shard took for a call that a later shard refused (Redis Cluster).
-- KEYS: GCRA states of one hash tag, then, when ARGV[1] is '1', the registration log.
-- ARGV[2..]: each state's interval µs. A slot given back moves the state one interval
-- back (to full when that passes now); a registration gives back the newest entry, which
-- keeps the count right even when another call's entry came in between.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
if ARGV[1] == '1' then
  redis.call('ZPOPMAX', KEYS[n])
  n = n - 1
end
for i = 1, n do
  local v = tonumber(redis.call('GET', KEYS[i]))
  if v then
    v = v - tonumber(ARGV[i + 1])
    if v <= now then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], string.format('%d', v), 'PX',
        string.format('%d', math.floor((v - now) / 1000) + 1))
    end
  end
end
return 0
