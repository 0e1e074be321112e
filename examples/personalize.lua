--[[
personalize.lua: the message each contact receives.

personalize(envio) runs once per envío, just before it is sent. It returns
the text to send, or {skip = true, reason = "..."} to leave the envío
"omitido" (not sent).

  envio.nombre      name from the CSV ("" when missing)
  envio.telefono    E.164 phone, "+525512345678"
  envio.variables   the other CSV columns, by header name
  envio.plantilla   the campaign's template, if it has one
  envio.campana, envio.id, envio.attempt, envio.zona

What this one does:
  * greets by the hour of the campaign's time zone (lm.hour());
  * uses the first name, title-cased, or "amigo/a" when there is none;
  * varies the wording with spintax {a|b}: lm.render picks one option per
    group with a generator seeded by the envío, so a retry of the same envío
    renders exactly the same text;
  * fills {{placeholders}} from the first name and the CSV columns
    ({{ciudad|tu ciudad}} means "ciudad, or 'tu ciudad' when empty");
  * skips contacts whose CSV says they asked not to be contacted.
]]

local function greeting(hour)
  if hour >= 6 and hour < 12 then
    return "Buenos días"
  elseif hour >= 12 and hour < 20 then
    return "Buenas tardes"
  end
  return "Buenas noches"
end

function personalize(envio)
  local v = envio.variables
  if v.no_contactar == "si" then
    return {skip = true, reason = "marcado no contactar en el CSV"}
  end

  local nombre = lm.first_name(envio.nombre)
  if nombre == "" then
    nombre = "amigo/a"
  end

  local plantilla = envio.plantilla
  if plantilla == "" then
    plantilla = "{Te escribimos|Te contactamos} de {{negocio|nuestra tienda}}: " ..
      "{tenemos|hay} {una promoción|un descuento} en {{ciudad|tu ciudad}} {esta semana|estos días}."
  end

  -- {{nombre}} is the first name; every other {{x}} comes from the CSV columns
  local vars = {nombre = nombre, variables = v}
  return greeting(lm.hour()) .. ", " .. nombre .. ". " .. lm.render(plantilla, vars)
end
