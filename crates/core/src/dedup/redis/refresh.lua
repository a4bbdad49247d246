-- Keeps a live leader's lease. KEYS[1] the flight; ARGV[1] the leader's id, ARGV[2] the lease ms
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
