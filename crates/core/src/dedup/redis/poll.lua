-- A follower's look at its leader.
-- KEYS[1] the flight, KEYS[2] the leader's outcome, KEYS[3] the journal; ARGV[1] the leader's id
local o = redis.call('GET', KEYS[2])
if o then return {'done', o} end
if redis.call('GET', KEYS[1]) == ARGV[1] then return {'wait'} end
-- Gone without an outcome: the leader stopped (a crash) and its lease ran out.
return {'lost', tostring(redis.call('PTTL', KEYS[3]))}
