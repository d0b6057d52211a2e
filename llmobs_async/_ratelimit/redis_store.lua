-- llmobs_async: one org's rate budget, shared by every process that uses this Redis.
--
-- One call folds what a process learned from its answers into the shared plan and
-- asks for turns, atomically and on Redis's own clock (TIME), so processes on
-- machines with skewed clocks agree. Times are milliseconds of Redis time; a
-- process sends ages ("this answer arrived 3 ms ago"), never its own clock.
--
-- KEYS[1]  the limit's plan (a hash, fields below)
-- KEYS[2]  who is waiting: token -> when it last got less than it asked for
-- KEYS[3]  optional: a route key to point at KEYS[1] (the limit's name was learned)
-- ARGV[1]  the asking bucket's token      ARGV[2]  turns wanted (0: only report)
-- ARGV[3]  events, JSON:  [1, seq, status, remaining, limit, period, reset, grain,
--          sent_ago, arrived_ago, retry_after, probe]  an answer (-1: header absent)
--          [2, seq, probe]  a turn given back unsent; [3, seq, probe]  sent, never answered
--          (seq -1: granted under another key, e.g. before the limit's name was known)
-- ARGV[4]  ttl floor   ARGV[5]  the name KEYS[3] points to
-- Returns {granted, first_seq, probe, sounding, wait_ms (-1: none), open (and not paused), alias}
--
-- The plan (fields of KEYS[1]):
--   L, P        the limit and its period (ms), as last reported
--   e           when the planned window ends: an upper bound (Reset is rounded up)
--   a           turns left in that window: the probe's Remaining less our turns since
--   q           turns granted so far (a sequence shared by all processes)
--   w           the turn whose answer (a probe) opened the planned window
--   pr, pt      the probe out (its turn, 0: none) and when it was granted
--   rtt         how long a probe takes to be answered and reported (smoothed)
--   op          1: the limit reports no headers, nothing to pace
--   pz          paused until (a 429 with Retry-After and no rate-limit headers)
--   lo, hi      bounds on one window's end (lo, hi], narrowed by every answer; windows
--               are fixed and P apart, so they say when every other window ends
--   sn, sa, sid one turn held back to narrow (lo, hi]: 1 held, 2 spent; when; for whom
--   ld          the first refused in this window: it wakes at the end to probe
--   al          (route keys only) the name of the limit this route is under

local PATIENCE = 1000
local STRINGS = { sid = true, ld = true, al = true }

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local token, want = ARGV[1], tonumber(ARGV[2])

local s = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  if STRINGS[raw[i]] then s[raw[i]] = raw[i + 1] else s[raw[i]] = tonumber(raw[i + 1]) end
end
local function n(k) return s[k] or 0 end

if s.al and s.al ~= '' then
  return { 0, 0, 0, 0, -1, 0, s.al }
end

-- Narrow the bounds on the end of an answer's window with those of earlier answers,
-- moved by whole periods; bounds that contradict them (the phase or the period
-- changed) replace them.
local function narrow(lo, hi)
  local P = n('P')
  if s.lo and s.hi and P > 0 then
    local k = math.floor(((lo + hi) - (s.lo + s.hi)) / (2 * P) + 0.5)
    local nlo, nhi = math.max(lo, s.lo + k * P), math.min(hi, s.hi + k * P)
    if nlo < nhi then lo, hi = nlo, nhi end
  end
  s.lo, s.hi = lo, hi
  return hi
end

local function fold(ev)
  local seq, status, rem = ev[2], ev[3], ev[4]
  local reset, grain = ev[7], ev[8]
  local sent, arrived, retry = now - ev[9], now - ev[10], ev[11]
  local foreign = seq < 0
  if foreign then seq = n('q') end
  if not foreign and ev[12] == 1 then
    -- A probe's answer, reported: how long the others wait for one, from grant to here.
    if seq == n('pr') then s.pr = 0 end
    s.rtt = s.rtt and (s.rtt * 0.7 + ev[9] * 0.3) or ev[9]
  end
  if rem < 0 then
    if status == 429 then
      if retry >= 0 then s.pz = math.max(n('pz'), arrived + retry) end
    else
      s.op = 1
    end
    return
  end
  s.op = 0
  if ev[5] > 0 then s.L = ev[5] end
  if ev[6] > 0 then s.P = ev[6] end
  local ends
  if reset >= 0 then
    -- Reset = ceil(end - t) at the server's t, sent <= t <= arrived. A Reset given in
    -- milliseconds may be rounded to the nearest: 1 ms more keeps it an upper bound.
    local slack = grain < 1000 and 1 or 0
    ends = narrow(sent + reset - grain - 2, arrived + reset + slack)
  elseif status == 429 and retry >= 0 then
    ends = arrived + retry
  else
    ends = arrived + (n('P') > 0 and n('P') or 1000)
  end
  if ev[12] == 1 and seq >= n('w') and not (foreign and now < n('e')) then
    -- A probe: what it found is the plan now.
    s.w, s.e, s.sn, s.sid, s.ld = seq, ends, 0, '', ''
    if status == 429 then s.a = 0 else s.a = rem - (n('q') - seq) end
  elseif seq > n('w') and now < n('e') then
    -- Counted in the planned window. Without others spending it, Remaining is never
    -- below what our own turns leave (they may be counted or not yet): if it is, the
    -- difference was spent by someone who does not use this store.
    if status == 429 then rem = 0 end
    s.a = math.min(n('a'), rem)
    s.e = math.min(n('e'), ends)
  end
end

for _, ev in ipairs(cjson.decode(ARGV[3])) do
  if ev[1] == 1 then
    fold(ev)
  else
    local seq = ev[2] < 0 and -1 or ev[2]
    if ev[3] == 1 and seq == n('pr') then s.pr = 0 end
    if ev[1] == 2 and ev[3] ~= 1 and seq > n('w') and now < n('e') then s.a = n('a') + 1 end
  end
end

local granted, first, probe, sound, wait = 0, 0, 0, 0, -1
local function give(count)
  first = n('q') + 1
  s.q = n('q') + count
  granted = count
end

-- How many others asked for turns lately and did not get them all.
local function others()
  local horizon = now - math.max(2 * n('P'), 2000)
  local list = redis.call('HGETALL', KEYS[2])
  local count = 0
  for i = 1, #list, 2 do
    if list[i] ~= token then
      if tonumber(list[i + 1]) >= horizon then
        count = count + 1
      else
        redis.call('HDEL', KEYS[2], list[i])
      end
    end
  end
  return count
end

-- When to send a held-back turn: one second before the middle of the bounds on
-- this window's end, so its Reset (1 or 2) says which half the end is in.
local function sounding_at()
  local P = n('P')
  if P < 2000 or not s.lo or s.hi - s.lo < 40 then return nil end
  local k = math.floor((n('e') - s.hi) / P + 0.5)
  local at = (s.lo + s.hi) / 2 + k * P - 1000
  if at > now + 20 and at < n('e') then return at end
  return nil
end

if want > 0 then
  local rtt = s.rtt or 50
  if n('pr') ~= 0 and now > n('pt') + math.max(PATIENCE, 3 * rtt) then
    s.pr = 0 -- its answer is lost (the process died?): another may probe
  end
  if now < n('pz') then
    -- Before the open limit's branch: a limit that reports nothing can still say
    -- Retry-After, and that pause holds every request, the open ones too.
    wait = n('pz') - now
  elseif n('op') == 1 then
    give(want)
  elseif now >= n('e') then
    -- The window is over, or was never known: one request goes alone.
    if n('pr') == 0 then
      give(1)
      probe, s.pr, s.pt, s.a, s.ld, s.sn, s.sid = 1, first, now, 0, '', 0, ''
      if want > 1 then wait = rtt end
    else
      -- Wait for its answer: when it is due, then polling less often the later it is.
      local due = n('pt') + rtt
      wait = due > now and due - now + 2 or math.max(5, (now - n('pt')) / 4)
      wait = math.min(wait, n('pt') + math.max(PATIENCE, 3 * rtt) - now + 1)
    end
  else
    if n('sn') == 1 and now >= n('sa') then
      s.sn, s.a, sound = 2, n('a') + 1, 1
    end
    local avail = n('a')
    if avail > 0 then
      local crowd = others()
      local count = math.min(want, avail, math.max(1, math.ceil(avail / (crowd + 1))))
      if count == avail and (want > count or crowd > 0) and n('sn') == 0 then
        local at = sounding_at()
        if at then
          count, s.sn, s.sa, s.sid = count - 1, 1, at, ''
          s.a = n('a') - 1
        end
      end
      if count > 0 then
        give(count)
        s.a = n('a') - count
      end
    end
    if granted < want then
      if n('a') > 0 then
        wait = 10 -- others take their share first
      elseif n('sn') == 1 and (not s.sid or s.sid == '' or s.sid == token) then
        s.sid, wait = token, n('sa') - now
      elseif not s.ld or s.ld == '' or s.ld == token then
        s.ld, wait = token, n('e') - now
      else
        wait = n('e') - now + rtt + 5
      end
    end
  end
  if granted < want then
    redis.call('HSET', KEYS[2], token, string.format('%.3f', now))
  else
    redis.call('HDEL', KEYS[2], token)
  end
end

local out = {}
for k, v in pairs(s) do
  out[#out + 1] = k
  if type(v) == 'number' then out[#out + 1] = string.format('%.3f', v) else out[#out + 1] = v end
end
local ttl = tonumber(ARGV[4]) + 2 * n('P')
if #out > 0 then
  redis.call('HSET', KEYS[1], unpack(out))
  redis.call('PEXPIRE', KEYS[1], math.floor(ttl))
end
redis.call('PEXPIRE', KEYS[2], math.floor(ttl))
if KEYS[3] then
  redis.call('HSET', KEYS[3], 'al', ARGV[5])
  redis.call('PEXPIRE', KEYS[3], math.floor(ttl))
end
if wait >= 0 then wait = math.max(1, math.ceil(wait)) end -- never 0: no busy loop
-- Open: requests may skip the store until an answer says otherwise; not while paused.
local open = (n('op') == 1 and now >= n('pz')) and 1 or 0
return { granted, first, probe, sound, wait, open, '' }
