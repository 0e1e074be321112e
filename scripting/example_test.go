package scripting_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"leadmaster/scripting"
)

func ExampleCompile() {
	s, err := scripting.Compile("campana-7.lua", `
function personalize(envio)
  if envio.variables.no_contactar == "si" then
    return {skip = true, reason = "no contactar"}
  end
  return lm.render("{Hola|Buenas} {{nombre}}, tu pedido llega el " .. lm.date("%A"), {nombre = lm.first_name(envio.nombre)})
end`)
	if err != nil {
		var se *scripting.SyntaxError
		if errors.As(err, &se) {
			fmt.Println("rejected at upload, line", se.Line)
		}
		return
	}
	res, err := s.Personalize(context.Background(), scripting.Envio{
		ID: "42", Telefono: "+525512345678", Nombre: "ana maría", Campana: "7",
		Now: time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC), TimeZone: "America/Mexico_City",
	})
	var re *scripting.RuntimeError
	switch {
	case errors.As(err, &re):
		fmt.Println("envío fallido, reason script:", re.Kind(), re.Msg) // or retry once on ErrTimeout
	case res.Skip:
		fmt.Println("omitido:", res.Reason)
	default:
		fmt.Println(res.Text)
	}
	fmt.Println(s.HasHook("throttle"), len(s.Version()))
	// Output:
	// Hola Ana, tu pedido llega el lunes
	// false 64
}

func ExampleSyntaxError() {
	_, err := scripting.Compile("mala.lua", "function personalize(e)\n  return 'x' +\nend\n")
	fmt.Println(err)
	// Output: mala.lua:3: syntax error near 'end'
}
