-- KEYS: the wrong-code counter. ARGV: window ms. The window starts at the first one.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
