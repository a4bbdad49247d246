-- Records a throttle.
-- KEYS[1] the cooldown (its end, µs on this clock), KEYS[2] its record ("length µs|end
-- µs|code"), kept one length past the end: a throttle that comes again in that time gets
-- twice the previous length (asking early restarts Meta's blocks).
-- ARGV[1] the wait µs (Meta's hint, else the cooldown its code calls for), ARGV[2] the cap
-- µs, ARGV[3] '1' for a number's cooldown (the app's is never doubled), ARGV[4] the Graph
-- code ('' for none).
-- Keeps the later of the two ends, and answers how long is left of it (µs).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] == '1' then
  local rec = redis.call('GET', KEYS[2])
  local len, ended = nil, nil
  if rec then len, ended = string.match(rec, '^(%d+)|(%d+)|') end
  if len and tonumber(ended) <= now then wait = math.max(wait, 2 * tonumber(len)) end
end
wait = math.min(wait, cap)
local until_ = now + wait
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > cur then
  redis.call('SET', KEYS[1], string.format('%d', until_), 'PX', string.format('%d', math.floor(wait / 1000) + 1))
  if ARGV[3] == '1' then
    redis.call('SET', KEYS[2], string.format('%d|%d|', wait, until_) .. ARGV[4], 'PX',
      string.format('%d', math.floor(2 * wait / 1000) + 1))
  end
end
return string.format('%d', math.max(until_, cur) - now)
