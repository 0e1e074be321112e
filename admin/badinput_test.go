package admin_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadmaster/admin"
)

// TestBadInput: bad tokens, oversize bodies, malformed JSON and CSV, wrong
// types and unknown fields get a clear 4xx JSON error and change nothing:
// the journal, the clientes, the campaign and its envíos are as before.
func TestBadInput(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) {
		o.MaxBody = 1 << 10
		o.MaxUpload = 8 << 10
		o.LockoutAfter = 1000 // this test sends many bad tokens on purpose
	})
	key1, _ := h.setup()
	camp := "/api/clientes/c1/campaigns/k1"
	big := strings.Repeat("x", 2<<10)
	cases := []struct {
		name, method, path, token, ct string
		body                          any
		status                        int
		code                          string
	}{
		{"no token", "GET", "/api/clientes", "", "", nil, 401, "unauthorized"},
		{"wrong token", "GET", "/api/clientes", "nope", "", nil, 401, "unauthorized"},
		{"admin token with a typo", "POST", "/api/clientes", adminTok + "x", "", map[string]string{"id": "c9"}, 401, "unauthorized"},
		{"wrong token in query", "GET", "/api/clientes?token=nope", "", "", nil, 401, "unauthorized"},
		{"oversize JSON", "POST", "/api/clientes", adminTok, "application/json", `{"id":"c9","nombre":"` + big + `"}`, 413, "too_large"},
		{"oversize script", "PUT", camp + "/script", key1, "text/plain", "-- " + big, 413, "too_large"},
		{"malformed JSON", "POST", "/api/clientes", adminTok, "application/json", `{"id":`, 400, "invalid"},
		{"JSON array, not object", "POST", "/api/clientes", adminTok, "application/json", `[1]`, 400, "invalid"},
		{"trailing JSON", "POST", "/api/clientes", adminTok, "application/json", `{"id":"c9"}{"id":"c8"}`, 400, "invalid"},
		{"unknown field", "POST", "/api/clientes", adminTok, "application/json", `{"id":"c9","color":"red"}`, 400, "invalid"},
		{"wrong type", "POST", "/api/clientes", adminTok, "application/json", `{"id":9}`, 400, "invalid"},
		{"not JSON content type", "POST", "/api/clientes", adminTok, "text/plain", `{"id":"c9"}`, 415, "unsupported_media_type"},
		{"empty JSON body", "POST", "/api/clientes", adminTok, "application/json", ``, 400, "invalid"},
		{"campaign rate of wrong type", "POST", "/api/clientes/c1/campaigns", key1, "application/json", `{"id":"k9","ritmo":"fast"}`, 400, "invalid"},
		{"campaign hour of wrong type", "POST", "/api/clientes/c1/campaigns", key1, "application/json", `{"id":"k9","programacion":{"desde":"nine"}}`, 400, "invalid"},
		{"campaign bad schedule", "POST", "/api/clientes/c1/campaigns", key1, "application/json", `{"id":"k9","programacion":{"desde":25}}`, 400, "invalid"},
		{"campaign bad script", "POST", "/api/clientes/c1/campaigns", key1, "application/json", `{"id":"k9","script":"function ("}`, 400, "script"},
		{"campaign bad id", "POST", "/api/clientes/c1/campaigns", key1, "application/json", `{"id":"../k9"}`, 400, "invalid"},
		{"patch unknown field", "PATCH", camp, key1, "application/json", `{"estado":"activa"}`, 400, "invalid"},
		{"patch wrong type", "PATCH", camp, key1, "application/json", `{"nombre":["a"]}`, 400, "invalid"},
		{"script syntax error", "PUT", camp + "/script", key1, "text/plain", "function personalize(e)\n return (\nend", 400, "script"},
		{"script without hooks", "PUT", camp + "/script", key1, "text/plain", "local x = 1", 400, "script"},
		{"empty CSV", "POST", camp + "/envios", key1, "text/csv", "  \n", 400, "invalid"},
		{"CSV not UTF-8", "POST", camp + "/envios", key1, "text/csv", "telefono\n+5491123456701,\xff\xfe\n", 400, "invalid"},
		{"CSV with NUL", "POST", camp + "/envios", key1, "text/csv", "telefono\n+5491123456701\x00\n", 400, "invalid"},
		{"malformed JSON upload", "POST", camp + "/envios", key1, "application/json", `[{"telefono":`, 400, "invalid"},
		{"JSON upload not an array", "POST", camp + "/envios", key1, "application/json", `{"telefono":"+5491123456701"}`, 400, "invalid"},
		{"upload of another type", "POST", camp + "/envios", key1, "application/vnd.ms-excel", "PK\x03\x04", 415, "unsupported_media_type"},
		{"pair without phone", "POST", "/api/clientes/c1/session/pair", key1, "application/json", `{}`, 400, "invalid"},
		{"pair phone of wrong type", "POST", "/api/clientes/c1/session/pair", key1, "application/json", `{"phone":5491122334455}`, 400, "invalid"},
		{"bad estado filter", "GET", camp + "/envios?estado=x", key1, "", nil, 400, "invalid"},
		{"bad cursor", "GET", camp + "/envios?after=abc", key1, "", nil, 400, "invalid"},
		{"bad journal limit", "GET", "/api/journal?limit=100000", adminTok, "", nil, 400, "invalid"},
		{"preview unknown field", "POST", camp + "/preview", key1, "application/json", `{"plantilla":"x","fila":{}}`, 400, "invalid"},
	}
	state := func() string {
		ctx := context.Background()
		cls, _ := h.db.Clientes(ctx)
		cs, _ := h.db.Campaigns(ctx, "")
		es, _ := h.db.Envios(ctx, "k1", 0, 10000, "")
		c, _ := h.db.Campaign(ctx, "k1")
		return strings.Join([]string{itoa(len(cls)), itoa(len(cs)), itoa(len(es)), c.Name, c.Template, c.Script, string(c.Status)}, "|")
	}
	before, journal := state(), h.journalLen()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.doCT(tc.method, tc.path, tc.token, tc.ct, tc.body)
			if r.Status != tc.status || r.errCode() != tc.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			var e struct{ Error struct{ Message string } }
			r.json(t, &e)
			if e.Error.Message == "" {
				t.Fatalf("no message: %s", r.Body)
			}
		})
	}
	// Files that fail while importing (no phone column, an unclosed quote,
	// garbage after the JSON array's first element) fail the job, and
	// import nothing.
	for _, f := range []struct{ ct, body string }{
		{"text/csv", "nombre,edad\nAna,3\n"},
		{"text/csv", "telefono,nombre\n+5491123456701,\"Ana\n+5491123456702,Beto\n"},
	} {
		var j struct{ Job string }
		h.must(202, h.doCT("POST", camp+"/envios", key1, f.ct, f.body)).json(t, &j)
		h.srv.WaitJob(j.Job)
		var v map[string]any
		h.must(200, h.do("GET", "/api/clientes/c1/imports/"+j.Job, key1, nil)).json(t, &v)
		if v["state"] != "failed" || v["error"] == "" {
			t.Errorf("%q: job %v", f.body, v)
		}
	}
	if after := state(); after != before {
		t.Errorf("state changed: %s -> %s", before, after)
	}
	if got := h.journalLen(); got != journal {
		t.Errorf("journal grew from %d to %d", journal, got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLockout: after LockoutAfter bad tokens an address is refused (429,
// even with a good token) until the lockout ends; a good token then
// resets the count.
func TestLockout(t *testing.T) {
	now := t0
	h := newHarness(t, func(o *admin.Options) {
		o.LockoutAfter, o.LockoutBase, o.LockoutMax = 3, time.Minute, time.Hour
		o.Now = func() time.Time { return now }
	})
	for range 3 {
		h.must(401, h.do("GET", "/api/me", "bad", nil))
	}
	r := h.must(429, h.do("GET", "/api/me", adminTok, nil))
	if r.errCode() != "locked_out" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("lockout: %s %v", r.Body, r.Header)
	}
	now = now.Add(time.Minute + time.Second)
	h.must(200, h.do("GET", "/api/me", adminTok, nil))
	h.must(401, h.do("GET", "/api/me", "bad", nil)) // the count started over
	h.must(200, h.do("GET", "/api/me", adminTok, nil))
}
