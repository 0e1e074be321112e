--[[
demo.lua: the script of `leadmaster demo`'s example campaign (examples/contactos.csv).

  personalize  a greeting by first name, the plan and the city from the CSV,
               spintax so that not every message is identical (the same envío
               always renders the same text, retries included).
  on_reply     BAJA, STOP and friends opt the phone out; SI tags it.
]]

function personalize(envio)
  local v = envio.variables
  local nombre = lm.first_name(envio.nombre)
  if nombre == "" then nombre = "¿qué tal?" end
  local text = "{Hola|Buenas} {{nombre}}! {Te escribimos|Te contamos} de LeadMaster: " ..
    "el {{producto}} ya está disponible{ en {{ciudad}}|}. " ..
    "¿Te interesa? Responde SI, o BAJA si no quieres más mensajes."
  return lm.render(text, {nombre = nombre, producto = v.producto or "plan", ciudad = v.ciudad or ""})
end

function on_reply(msg)
  local text = table.concat(lm.words(msg.texto), " ")
  if text == "BAJA" or text == "STOP" or text == "NO MAS" then
    return {optout = true, tag = "baja"}
  end
  if text == "SI" then
    return {tag = "interesado"}
  end
  return nil
end
