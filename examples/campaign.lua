--[[
campaign.lua: a complete campaign script, using all three hooks and the lm
helpers. Upload it with the campaign; each hook is optional.

The CSV for this campaign has the columns telefono, nombre, ciudad, cita
(an appointment date, "2026-12-01"), and optionally vip ("si").

  personalize  an appointment reminder: A/B test of two openings
               (lm.bucket by phone, stable across retries), a greeting by
               local hour, a human date ("lunes 1 de diciembre"), the
               phone in national format, spintax for variety. Contacts
               without a cita are skipped.
  throttle     business hours Monday to Saturday morning, slower after
               errors, and a stricter pace for the first hundred of the day.
  on_reply     opt-out words, confirmations and cancellations as tags.
]]

local OPENINGS = {
  "{Hola|Buen día} {{nombre}}, te {recordamos|escribimos para recordarte} tu cita",
  "{{nombre}}, {no olvides|recuerda} tu cita",
}

local function greeting(hour)
  if hour < 12 then return "Buenos días" end
  if hour < 20 then return "Buenas tardes" end
  return "Buenas noches"
end

-- "2026-12-01" -> Unix time at noon, local; nil if malformed
local function parse_date(s)
  local y, m, d = string.match(s or "", "^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then return nil end
  return {year = tonumber(y), month = tonumber(m), day = tonumber(d)}
end

local DIAS = {"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"}
local MESES = {"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
  "septiembre", "octubre", "noviembre", "diciembre"}

-- Zeller-style weekday (1 = domingo) of a Gregorian date
local function weekday(t)
  local y, m = t.year, t.month
  if m < 3 then m = m + 12; y = y - 1 end
  local k, j = y % 100, math.floor(y / 100)
  local h = (t.day + math.floor(13 * (m + 1) / 5) + k + math.floor(k / 4) + math.floor(j / 4) + 5 * j) % 7
  return ((h + 6) % 7) + 1
end

function personalize(envio)
  local v = envio.variables
  local cita = parse_date(v.cita)
  if not cita then
    return {skip = true, reason = "sin fecha de cita"}
  end

  local vars = {
    nombre = lm.first_name(envio.nombre) ~= "" and lm.first_name(envio.nombre) or "Estimado cliente",
    ciudad = lm.title(v.ciudad or ""),
    fecha = DIAS[weekday(cita)] .. " " .. cita.day .. " de " .. MESES[cita.month],
    telefono = lm.phone(envio.telefono, "national") or envio.telefono,
  }

  local opening = OPENINGS[lm.bucket(envio.telefono, #OPENINGS)]
  local body = opening .. " del {{fecha}}{ en {{ciudad}}|}. " ..
    "{Responde SI para confirmar|Confirma con un SI} o NO para cancelar."
  if v.vip == "si" then
    body = body .. " Como cliente preferente, tienes {un regalo|una sorpresa} esperándote."
  end
  return greeting(lm.hour()) .. ". " .. lm.render(body, vars) ..
    "\n(Enviado a " .. vars.telefono .. ")"
end

function throttle(stats)
  local sabado_tarde = stats.weekday == 6 and stats.hour >= 14
  if stats.weekday == 7 or sabado_tarde then
    return {pause_until = lm.at("09:00", 1), reason = "fin de semana"}
  end
  if stats.hour < 9 then
    return {pause_until = lm.at("09:00"), reason = "aún no abre"}
  end
  if stats.hour >= 20 then
    return {pause_until = lm.at("09:00", stats.weekday == 5 and 6 or 0), reason = "cerrado"}
  end
  if stats.error_streak >= 3 then
    return {pause = 20 * 60, reason = "errores seguidos"}
  end
  local delay = stats.error_streak * 20
  if stats.sent_today < 100 then
    delay = delay + 10 -- warm-up pace for the first hundred of the day
  end
  return {delay = delay + lm.random(0, 8)}
end

function on_reply(msg)
  local words = lm.words(msg.texto)
  local text = table.concat(words, " ")
  if text == "BAJA" or text == "STOP" or string.find(" " .. text .. " ", " DE BAJA ", 1, true) then
    return {optout = true, tag = "baja"}
  end
  if words[1] == "SI" or text == "CONFIRMO" then
    return {tags = {"confirmada"}}
  end
  if words[1] == "NO" or string.find(text, "CANCEL", 1, true) then
    return {tags = {"cancelada"}, reason = "respondió: " .. msg.texto}
  end
  return {tag = "respondio"}
end
