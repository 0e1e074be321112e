--[[
optout.lua: what to do when a contact replies.

on_reply(msg) runs for every message received from a contact of the
campaign. msg has: texto (what they wrote), telefono, nombre, campana,
envio (the id of the envío they answered, if known). Return nil to do
nothing, or a table with any of:

  optout = true          add the phone to the cliente's suppression list:
                         no campaign of this cliente will write to it again
  tag = "..." / tags = {"...", ...}   labels for the envío
  reason = "..."

What this one does: recognises "BAJA", "STOP" and their variants in any
case, with accents and punctuation ("¡Bája!", "stop.", "Dar de baja por
favor", "no me escriban más"). lm.normalize turns the text into upper case
words without accents or punctuation, so the lists below only need the
plain form. A single opt-out word counts only in a short message, so "no
me baja la app" in a longer conversation is not taken as an opt-out;
explicit phrases count anywhere. Other replies are tagged.
]]

local WORDS = {
  BAJA = true, STOP = true, ALTO = true, BASTA = true, CANCELAR = true,
  UNSUBSCRIBE = true, DESUSCRIBIR = true, DESUSCRIBIRME = true, REMOVER = true,
}

local PHRASES = {
  "DAR DE BAJA", "DARME DE BAJA", "DE BAJA", "NO ME ESCRIBAN", "NO ME ESCRIBAS",
  "NO ME MANDEN", "NO MOLESTAR", "NO MOLESTEN", "NO QUIERO RECIBIR", "NO ENVIAR",
  "YA NO ME", "QUITAR DE LA LISTA", "SACAME DE", "SACARME DE",
}

local INTERESTED = {SI = true, ME = true, INTERESA = true, QUIERO = true, INFO = true, PRECIO = true}

function on_reply(msg)
  local text = lm.normalize(msg.texto)
  if text == "" then
    return nil
  end
  local padded = " " .. text .. " "
  for _, phrase in ipairs(PHRASES) do
    if string.find(padded, " " .. phrase .. " ", 1, true) then
      return {optout = true, tag = "baja", reason = "pidió la baja: " .. phrase}
    end
  end
  local words = lm.words(text)
  if #words <= 4 then
    for _, w in ipairs(words) do
      if WORDS[w] then
        return {optout = true, tag = "baja", reason = "pidió la baja: " .. w}
      end
    end
  end
  for _, w in ipairs(words) do
    if INTERESTED[w] then
      return {tag = "interesado"}
    end
  end
  return {tag = "respondio"}
end
