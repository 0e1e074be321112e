package admin_test

import (
	"context"
	"strings"
	"testing"

	"leadmaster/admin"
	"leadmaster/engine"
)

// TestIsolation: a cliente key (c1) gets 403 or 404 on every route that
// touches another cliente's (c2) resources, and nothing of c2 changes. The
// table is checked against the app's route list, so a new route without an
// isolation case fails the test.
func TestIsolation(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) {
		o.DemoScan = func(ctx context.Context, cliente string) error { t.Errorf("demo scan ran for %s", cliente); return nil }
		o.Outbox = o.Data.(admin.Outbox)
	})
	key1, key2 := h.setup()
	job2 := func() string { // an import job of c2
		var j struct{ Job string }
		h.must(202, h.doCT("POST", "/api/clientes/c2/campaigns/k2/envios", key2, "text/csv", "telefono\n+5491123456799\n")).json(t, &j)
		h.srv.WaitJob(j.Job)
		return j.Job
	}()
	script := "function personalize(e) return 'x' end"
	row := map[string]any{"plantilla": "hola", "row": map[string]any{"telefono": "+5491123456701"}}
	// bodies are valid requests, so a refusal is isolation, not validation.
	bodies := map[string]struct {
		ct   string
		body any
	}{
		"POST /api/clientes":                            {"", map[string]string{"id": "c3"}},
		"POST /api/clientes/:id/campaigns":              {"", map[string]string{"id": "kx", "plantilla": "hola"}},
		"PATCH /api/clientes/:id/campaigns/:cid":        {"", map[string]string{"nombre": "hacked"}},
		"PUT /api/clientes/:id/campaigns/:cid/script":   {"text/plain", script},
		"POST /api/clientes/:id/campaigns/:cid/envios":  {"text/csv", "telefono\n+5491123456788\n"},
		"POST /api/clientes/:id/campaigns/:cid/preview": {"", row},
		"POST /api/clientes/:id/session/pair":           {"", map[string]string{"phone": "+5491122334455"}},
		"PATCH /api/clientes/:id":                       {"", map[string]string{"nombre": "hacked"}},
		"PUT /api/clientes/:id/webhook":                 {"", map[string]string{"url": "http://127.0.0.1:1/x"}},
		"POST /api/demo/scan":                           {"", map[string]string{"cliente": "c2"}},
	}
	// Routes that are not a cliente's resources: public, or the caller's own.
	notCliente := map[string]func(t *testing.T){
		"GET /healthz":          nil,
		"GET /readyz":           nil,
		"GET /api/openapi.json": nil,
		"GET /api/me": func(t *testing.T) {
			var me map[string]any
			h.must(200, h.do("GET", "/api/me", key1, nil)).json(t, &me)
			if me["cliente"] != "c1" {
				t.Fatalf("me = %v", me)
			}
		},
		"GET /api/clientes": func(t *testing.T) {
			var l struct{ Items []engine.Cliente }
			h.must(200, h.do("GET", "/api/clientes", key1, nil)).json(t, &l)
			if len(l.Items) != 1 || l.Items[0].ID != "c1" {
				t.Fatalf("clientes = %+v", l.Items)
			}
		},
	}
	before := h.journalLen()
	camp2, _ := h.db.Campaign(context.Background(), "k2")
	n2, _ := h.db.Envios(context.Background(), "k2", 0, 1000, "")
	routes := h.srv.App().GetRoutes(true)
	if len(routes) < 30 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		name := rt.Method + " " + rt.Path
		if rt.Method == "HEAD" || rt.Method == "CONNECT" || rt.Method == "TRACE" || rt.Method == "OPTIONS" {
			continue
		}
		if rt.Path == "/" || strings.HasPrefix(rt.Path, "/*") || rt.Path == "/api" {
			continue // the page and the 404 catch-all
		}
		t.Run(name, func(t *testing.T) {
			if f, ok := notCliente[name]; ok {
				if f != nil {
					f(t)
				}
				return
			}
			b := bodies[name]
			// Another cliente's path, and another cliente's campaign or job
			// under the caller's own path.
			paths := []string{fill(rt.Path, "c2", "k2", job2)}
			if strings.Contains(rt.Path, ":cid") || strings.Contains(rt.Path, ":job") {
				paths = append(paths, fill(rt.Path, "c1", "k2", job2))
			}
			if rt.Path == "/api/events" {
				paths = []string{"/api/events?cliente=c2"}
			}
			for _, p := range paths {
				for _, tok := range []string{key1, "?token="} {
					path, bearer := p, key1
					if tok == "?token=" {
						sep := "?"
						if strings.Contains(path, "?") {
							sep = "&"
						}
						path, bearer = path+sep+"token="+key1, ""
					}
					r := h.doCT(rt.Method, path, bearer, b.ct, b.body)
					if r.Status != 403 && r.Status != 404 {
						t.Errorf("%s %s as c1: %d %s, want 403 or 404", rt.Method, path, r.Status, r.Body)
					}
					if r.errCode() == "" {
						t.Errorf("%s %s: no JSON error: %s", rt.Method, path, r.Body)
					}
				}
			}
		})
	}
	if got := h.journalLen(); got != before {
		t.Errorf("journal grew from %d to %d", before, got)
	}
	after, _ := h.db.Campaign(context.Background(), "k2")
	if after.Name != camp2.Name || after.Status != camp2.Status || after.Script != camp2.Script {
		t.Errorf("c2's campaign changed: %+v -> %+v", camp2, after)
	}
	if m2, _ := h.db.Envios(context.Background(), "k2", 0, 1000, ""); len(m2) != len(n2) {
		t.Errorf("c2's envíos: %d -> %d", len(n2), len(m2))
	}
	if cs, _ := h.db.Campaigns(context.Background(), "c1"); len(cs) != 1 {
		t.Errorf("c1 has %d campaigns", len(cs))
	}
	if cl2, _ := h.db.Cliente(context.Background(), "c2"); cl2.Name != "Cliente c2" {
		t.Errorf("c2 renamed to %q", cl2.Name)
	}
	if u, _, _ := h.db.Webhook(context.Background(), "c2"); u != "" {
		t.Errorf("c2's webhook was set to %s", u)
	}
	if h.sess.State("c2").State != engine.SessionInitializing {
		t.Errorf("c2's session changed: %+v", h.sess.State("c2"))
	}
	h.sess.mu.Lock()
	started := h.sess.started["c2"]
	h.sess.mu.Unlock()
	if started != 0 {
		t.Errorf("c2's session was started %d times", started)
	}
	// Control: the same requests with c2's own key are not refused, so the
	// refusals above are isolation, not a broken request.
	adminOnlyRoutes := map[string]bool{"PATCH /api/clientes/:id": true, "GET /api/clientes/:id/keys": true, "POST /api/clientes/:id/keys": true, "DELETE /api/clientes/:id/keys/:kid": true}
	for _, rt := range routes {
		name := rt.Method + " " + rt.Path
		if !strings.HasPrefix(rt.Path, "/api/clientes/:id") || rt.Method == "HEAD" || adminOnlyRoutes[name] {
			continue
		}
		b := bodies[name]
		path := fill(rt.Path, "c2", "k2", job2)
		if strings.HasSuffix(path, "/qr") {
			path += "?timeout=10ms" // no QR comes from the fake: 504
		}
		if r := h.doCT(rt.Method, path, key2, b.ct, b.body); r.Status == 401 || r.Status == 403 {
			t.Errorf("control %s as c2: %d %s", name, r.Status, r.Body)
		}
	}
}

func fill(path, cl, camp, job string) string {
	r := strings.NewReplacer(":id", cl, ":cid", camp, ":job", job, ":kid", "0011223344556677")
	return r.Replace(path)
}
