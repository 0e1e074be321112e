package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"leadmaster/engine"
)

func TestScriptHooks(t *testing.T) {
	src, err := os.ReadFile("examples/campaign.lua")
	if err != nil {
		t.Fatal(err)
	}
	h := &scriptHooks{}
	c := engine.Campaign{ID: "k", Template: "Hola {{nombre}}", Script: string(src), Schedule: engine.Schedule{TimeZone: "America/Argentina/Buenos_Aires"}}
	e := engine.Envio{Ref: engine.Ref{Campaign: "k", Seq: 1}, Telefono: "+5491155550001", Nombre: "ana maría", Variables: map[string]string{"producto": "zapatos", "ciudad": "Rosario"}}
	hooks, err := h.hooksFor(c)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := hooks.Personalize(context.Background(), c, e)
	if err != nil || (r1.Text == "" && !r1.Skip) {
		t.Fatalf("personalize: %+v %v", r1, err)
	}
	again, _ := h.hooksFor(c)
	r2, _ := again.Personalize(context.Background(), c, e)
	if r1 != r2 {
		t.Fatalf("the same envío rendered twice differently: %q vs %q", r1.Text, r2.Text)
	}
	d, err := hooks.OnReply(context.Background(), c, e, engine.Reply{From: e.Telefono, Text: "BAJA"})
	if err != nil || !d.OptOut {
		t.Fatalf("on_reply BAJA: %+v %v", d, err)
	}
	// Hooks a script does not define fall back to the template.
	c2 := engine.Campaign{ID: "k2", Template: "Hola {{nombre}}", Script: "function on_reply(m) return nil end\n"}
	hooks2, err := h.hooksFor(c2)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := hooks2.Personalize(context.Background(), c2, e); err != nil || r.Text != "Hola ana maría" {
		t.Fatalf("fallback personalize: %+v %v", r, err)
	}
	// A syntax error names its line; a runtime error is an error, never a panic.
	if _, err := h.hooksFor(engine.Campaign{ID: "bad", Script: "function personalize(e)\n  return (\nend\n"}); err == nil || !strings.Contains(err.Error(), "3") {
		t.Fatalf("syntax error: %v", err)
	}
	rt, _ := h.hooksFor(engine.Campaign{ID: "rt", Script: "function personalize(e) return e.nope.x end"})
	if _, err := rt.Personalize(context.Background(), engine.Campaign{ID: "rt"}, e); err == nil {
		t.Fatal("runtime error not reported")
	}
}
