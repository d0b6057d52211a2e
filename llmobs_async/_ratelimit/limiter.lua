-- llmobs_async: one task rate limit (a provider's "500 requests and 30,000 tokens a
-- minute"), shared by every process that uses this Redis.
--
-- A sliding window: at most `limit` acquisitions, and at most `tlimit` tokens, start
-- in any `span` milliseconds (the limiter's period plus a small margin). One call
-- grants what fits of the amounts asked for (a prefix: first in, first out), and
-- when it refuses, says how long until the next one fits. All times are Redis's
-- (TIME), in milliseconds: processes on machines with skewed clocks agree.
--
-- KEYS[1]  the window: a sorted set of "seq:tokens" by the time granted
-- KEYS[2]  the state: a hash of n (the last seq), tok (tokens in the window), pz (paused until)
-- KEYS[3]  the sharers: a sorted set of process tokens by when last seen
-- KEYS[4]  who waits: process token -> when it last got less than it asked for
-- ARGV[1]  the process token   ARGV[2]  span (ms)   ARGV[3]  requests per span
-- ARGV[4]  tokens per span (0: no token limit)   ARGV[5]  pause for this many ms (-1: none)
-- ARGV[6..] the token amounts asked for, in order (none: only report, or only pause)
-- Returns {granted, wait_ms (-1: all granted), sharers, requests in window, tokens in window}

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local token = ARGV[1]
local span = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local tlimit = tonumber(ARGV[4])
local pause = tonumber(ARGV[5])
local want = #ARGV - 5

-- Processes seen within two periods (at least 10 s) share the limit.
local live = math.max(2 * span, 10000)
redis.call('ZADD', KEYS[3], now, token)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - live)
local sharers = redis.call('ZCARD', KEYS[3])

local pz = tonumber(redis.call('HGET', KEYS[2], 'pz') or '0')
if pause >= 0 and now + pause > pz then
  -- A later pause never shortens an earlier one.
  pz = now + pause
  redis.call('HSET', KEYS[2], 'pz', string.format('%.3f', pz))
end

-- Entries granted `span` ago or more have left the window.
local tok = tonumber(redis.call('HGET', KEYS[2], 'tok') or '0')
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - span)
if #gone > 0 then
  for _, member in ipairs(gone) do
    tok = tok - tonumber(string.match(member, ':(%d+)$'))
  end
  if tok < 0 then tok = 0 end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
end
local count = redis.call('ZCARD', KEYS[1])

local granted, wait = 0, -1
if want > 0 then
  if now < pz then
    wait = pz - now
  else
    -- Others refused lately take their part of what is free first.
    local others = 0
    local list = redis.call('HGETALL', KEYS[4])
    for i = 1, #list, 2 do
      if list[i] ~= token then
        if tonumber(list[i + 1]) >= now - span then
          others = others + 1
        else
          redis.call('HDEL', KEYS[4], list[i])
        end
      end
    end
    local cap = want
    if others > 0 then cap = math.max(1, math.ceil((limit - count) / (others + 1))) end
    for i = 1, want do
      local amount = tonumber(ARGV[5 + i])
      if granted >= cap or count + 1 > limit or (tlimit > 0 and tok + amount > tlimit) then
        break
      end
      local seq = redis.call('HINCRBY', KEYS[2], 'n', 1)
      redis.call('ZADD', KEYS[1], now, seq .. ':' .. amount)
      count, tok, granted = count + 1, tok + amount, granted + 1
    end
    if granted < want then
      local amount = tonumber(ARGV[5 + granted + 1])
      local need_n = count + 1 - limit
      local need_t = 0
      if tlimit > 0 then need_t = tok + amount - tlimit end
      if need_n <= 0 and need_t <= 0 then
        wait = 10 -- it fits: others take their part first
      else
        -- The oldest entries leave first: wait until enough of them have.
        wait = span
        local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
        local freed_n, freed_t = 0, 0
        for i = 1, #entries, 2 do
          freed_n = freed_n + 1
          freed_t = freed_t + tonumber(string.match(entries[i], ':(%d+)$'))
          if freed_n >= need_n and freed_t >= need_t then
            wait = tonumber(entries[i + 1]) + span - now
            break
          end
        end
      end
      redis.call('HSET', KEYS[4], token, string.format('%.3f', now))
    else
      redis.call('HDEL', KEYS[4], token)
    end
  end
end

redis.call('HSET', KEYS[2], 'tok', tok)
-- Keys expire after two periods (and any pause) of no use, plus a minute.
local ttl = math.floor(math.max(2 * span, live, pz - now) + 60000)
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
if wait >= 0 then wait = math.max(1, math.ceil(wait)) end -- never 0: no busy loop
return { granted, wait, sharers, count, tok }
