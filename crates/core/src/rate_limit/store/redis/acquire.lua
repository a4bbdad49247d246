-- The acquire script: see `ACQUIRE` in batch.rs for its arguments.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- Lua numbers are doubles: every integer must stay below 2^53 to stay exact. Config keeps
-- states within ten years, so this guard only stops a corrupted key from failing open.
local EXACT = 9007199254740992
-- One MGET for every key (the registration log is a set and reads as nil here).
local v = redis.call('MGET', unpack(KEYS))
local val = {}
for i = 1, #KEYS do
  local k = KEYS[i]
  if val[k] == nil then val[k] = tonumber(v[i]) or 0 end
end
local nq = tonumber(ARGV[1])
local interval, tolerance, qscope = {}, {}, {}
for j = 1, nq do
  interval[j] = tonumber(ARGV[3 * j - 1])
  tolerance[j] = tonumber(ARGV[3 * j])
  qscope[j] = tonumber(ARGV[3 * j + 1])
end
local p = 3 * nq + 2
local shapes = {}
for s = 1, tonumber(ARGV[p]) do
  local sh = {app = KEYS[tonumber(ARGV[p + 1])], wc_max = tonumber(ARGV[p + 2]),
    reg_max = tonumber(ARGV[p + 3]), reg_window = tonumber(ARGV[p + 4]), lq = {}, gk = {}, gq = {}}
  p = p + 5
  for j = 1, tonumber(ARGV[p]) do sh.lq[j] = tonumber(ARGV[p + j]) end
  p = p + #sh.lq + 1
  for j = 1, tonumber(ARGV[p]) do
    sh.gk[j], sh.gq[j] = KEYS[tonumber(ARGV[p + 2 * j - 1])], tonumber(ARGV[p + 2 * j])
  end
  p = p + 2 * #sh.gk + 1
  sh.waba = tonumber(ARGV[p]) == 1
  sh.wq = {}
  p = p + 1
  for j = 1, tonumber(ARGV[p]) do sh.wq[j] = tonumber(ARGV[p + j]) end
  p = p + #sh.wq
  shapes[s] = sh
end
p = p + 1
-- The last argument: 1 in shadow mode.
local shadow = tonumber(ARGV[#ARGV]) == 1
-- Quota j of a check: its per-number ones (keys from k on), the global ones, then its
-- WABA's (keys from wk on).
local function quota_of(sh, k, nl, wk, j)
  if j > nl + #sh.gk then return KEYS[wk + j - nl - #sh.gk - 1], sh.wq[j - nl - #sh.gk] end
  if j > nl then return sh.gk[j - nl], sh.gq[j - nl] end
  return KEYS[k + j - 1], sh.lq[j]
end
local out, dirty = {}, {}
for c = 1, tonumber(ARGV[p]) do
  local sh, k = shapes[tonumber(ARGV[p + 2 * c - 1])], tonumber(ARGV[p + 2 * c])
  local cd_k, wc_k, reg_k = KEYS[k], nil, nil
  k = k + 1
  if sh.wc_max > 0 then wc_k, k = KEYS[k], k + 1 end
  if sh.reg_max > 0 then reg_k, k = KEYS[k], k + 1 end
  local nl = #sh.lq
  -- With a WABA: its cooldown key, then its quota keys, after the number's quotas.
  local wcd_k, wk = nil, k + nl
  if sh.waba then wcd_k, wk = KEYS[k + nl], k + nl + 1 end
  local nall = nl + #sh.gk + #sh.wq
  local wait, scope = 0, 0
  -- A shape with no app cooldown (index 0) is one shard's part of a check on a cluster.
  local cd = val[cd_k]
  if sh.app then cd = math.max(cd, val[sh.app]) end
  if cd > now then wait, scope = cd - now, 3 end
  if scope == 0 and wcd_k and val[wcd_k] > now then wait, scope = val[wcd_k] - now, 6 end
  if scope == 0 and wc_k and val[wc_k] >= sh.wc_max then
    local ttl = redis.call('PTTL', wc_k)
    if ttl > 0 then wait, scope = ttl * 1000, 4 end
  end
  if scope == 0 and reg_k then
    redis.call('ZREMRANGEBYSCORE', reg_k, '-inf', now - sh.reg_window)
    if redis.call('ZCARD', reg_k) >= sh.reg_max then
      local oldest = redis.call('ZRANGE', reg_k, 0, 0, 'WITHSCORES')
      wait, scope = tonumber(oldest[2]) + sh.reg_window - now, 5
    end
  end
  -- Every quota decides before any state changes; the longest wait binds. In shadow
  -- mode a quota's refusal is only reported: the call goes, taking no quota's slot.
  local shadowed, near = 0, 0
  if scope == 0 then
    for j = 1, nall do
      local key, q = quota_of(sh, k, nl, wk, j)
      local allow_at = math.max(val[key], now) - tolerance[q]
      if allow_at - now > wait then wait, scope = allow_at - now, qscope[q] end
    end
    if scope ~= 0 and shadow then shadowed, scope, wait = scope, 0, 0 end
  end
  if scope == 0 then
    for j = 1, shadowed == 0 and nall or 0 do
      local key, q = quota_of(sh, k, nl, wk, j)
      val[key] = math.max(val[key], now) + interval[q]
      if val[key] >= EXACT then return redis.error_reply('wa-verify: state out of range') end
      dirty[key] = true
      -- 80% of the burst used (interval + tolerance is interval x burst).
      if near == 0 and (val[key] - now) * 5 >= (interval[q] + tolerance[q]) * 4 then
        near = qscope[q]
      end
    end
    if reg_k then
      redis.call('ZADD', reg_k, now, now .. ':' .. math.random(1000000))
      redis.call('PEXPIRE', reg_k, math.floor(sh.reg_window / 1000) + 1)
    end
    out[c] = -(near * 8 + shadowed)
  else
    if wait * 8 + scope >= EXACT then return redis.error_reply('wa-verify: wait out of range') end
    out[c] = wait * 8 + scope
  end
end
-- Each key expires when its GCRA state is back to full.
-- Integers as '%d': Redis would print a Lua number with '%.17g', which costs more.
for k in pairs(dirty) do
  redis.call('SET', k, string.format('%d', val[k]), 'PX',
    string.format('%d', math.floor((val[k] - now) / 1000) + 1))
end
return out
