package admin_test

import (
	"testing"
)

// FuzzAPIBodies sends arbitrary bodies to every route that takes one: the
// answer is never a 5xx, and an error is always a JSON error.
// go test -run '^$' -fuzz FuzzAPIBodies -fuzztime 30s ./admin/
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{
		`{"id":"k9","plantilla":"Hola {{nombre}}"}`, `{"id":9}`, `{"ritmo":{"min_delay":-1}}`, `[`, ``, `null`,
		`{"programacion":{"desde":25,"dias":[9]}}`, `{"phone":"+5491122334455"}`, "telefono\n+5491123456701\n",
		`[{"telefono":"+5491123456701"}]`, `{"plantilla":"{{","row":{"variables":{"a":1}}}`, "function personalize(e) return e end",
		"\xff\xfe", `{"url":"http://x","secret":"0123456789abcdef"}`,
	} {
		for route := range 9 {
			f.Add(uint8(route), s)
		}
	}
	h := newHarness(f, nil)
	key1, _ := h.setup()
	routes := []struct{ method, path, ct string }{
		{"POST", "/api/clientes", "application/json"},
		{"POST", "/api/clientes/c1/campaigns", "application/json"},
		{"PATCH", "/api/clientes/c1/campaigns/k1", "application/json"},
		{"PUT", "/api/clientes/c1/campaigns/k1/script", "text/plain"},
		{"POST", "/api/clientes/c1/campaigns/k1/preview", "application/json"},
		{"POST", "/api/clientes/c1/session/pair", "application/json"},
		{"POST", "/api/clientes/c1/campaigns/k1/envios", "text/csv"},
		{"POST", "/api/clientes/c1/campaigns/k1/envios", "application/json"},
		{"PUT", "/api/clientes/c1/webhook", "application/json"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body string) {
		h.t = t // the harness reports on this input's T
		rt := routes[int(route)%len(routes)]
		tok := key1
		if rt.path == "/api/clientes" {
			tok = adminTok
		}
		r := h.doCT(rt.method, rt.path, tok, rt.ct, body)
		if r.Status >= 500 && r.Status != 503 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, r.Status, r.Body)
		}
		if r.Status >= 400 && r.errCode() == "" {
			t.Fatalf("%s %s %q: no JSON error: %s", rt.method, rt.path, body, r.Body)
		}
	})
}
