--[[
throttle.lua: when and how fast the campaign sends.

throttle(stats) runs before each send. It can only make sending slower or
stop it for a while; the engine's own limits (delay between sends, hourly
and daily caps, send window) still apply. Return nil to change nothing, or
a table with any of:

  delay = seconds        the number waits this much more before its next send
  pause = seconds        pause this campaign for this long (the others go on)
  pause_until = unix     pause this campaign until then (see lm.at)
  skip = true            not this turn: the envío stays pendiente and the
                         campaign waits its usual delay before asking again

In every case the envío stays pendiente and is sent later: throttle never
drops one (personalize's skip does, as "omitido").
  reason = "..."         shown to the operator

stats has: sent_today, sent_last_hour, error_streak (consecutive failed
sends), cupo (daily quota, 0 = none), disponible (quota left), and the
campaign's local time: hour, minute, weekday (1 = Monday .. 7 = Sunday),
weekend, date ("2026-11-23"), time ("09:30"), unix.

What this one does:
  * weekend off: pauses until Monday 09:00;
  * business hours 09:00-19:00: outside them, pauses until the next opening
    (Friday evening -> Monday);
  * after errors it slows down (15s, 30s, 60s ... up to 5 min) and after 5
    in a row it pauses 30 minutes: an unhealthy number should rest;
  * more than 60 sends in the last hour: 30s more between sends;
  * a few random seconds of jitter so the rhythm does not look automatic.
]]

local OPENS, CLOSES = 9, 19 -- local hours
local MAX_STREAK = 5

local function next_opening(stats)
  if stats.weekend or (stats.weekday == 5 and stats.hour >= CLOSES) then
    return lm.at("09:00", 1) -- next Monday
  end
  return lm.at("09:00")
end

function throttle(stats)
  if stats.weekend then
    return {pause_until = next_opening(stats), reason = "fin de semana"}
  end
  if stats.hour < OPENS or stats.hour >= CLOSES then
    return {pause_until = next_opening(stats), reason = "fuera de horario"}
  end
  if stats.error_streak >= MAX_STREAK then
    return {pause = 30 * 60, reason = stats.error_streak .. " errores seguidos"}
  end

  local delay = 0
  if stats.error_streak > 0 then
    delay = math.min(15 * 2 ^ (stats.error_streak - 1), 300)
  end
  if stats.sent_last_hour >= 60 then
    delay = delay + 30
  end
  return {delay = delay + lm.random(0, 5)}
end
