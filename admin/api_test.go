package admin_test

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"leadmaster/admin"
	"leadmaster/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's shared clock of the Date header, started once per process.
		goleak.IgnoreTopFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		// fasthttp's idle-worker cleaner sees the stop only after its sleep
		// (MaxIdleWorkerDuration, 10s); it does exit then.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		// whatsmeow's frame reader that got a frame after Disconnect blocks
		// on it for good (a whatsmeow leak, engine/wa doc.go Caveats).
		goleak.IgnoreTopFunction("go.mau.fi/whatsmeow/socket.(*FrameSocket).frameComplete"),
	)
}

func TestHealthAndMe(t *testing.T) {
	h := newHarness(t, nil)
	h.must(200, h.do("GET", "/healthz", "", nil))
	h.must(200, h.do("GET", "/readyz", "", nil))
	var me map[string]any
	h.must(200, h.do("GET", "/api/me", adminTok, nil)).json(t, &me)
	if me["role"] != "admin" || me["demo"] != false {
		t.Fatalf("me = %v", me)
	}
	key1, _ := h.setup()
	h.must(200, h.do("GET", "/api/me?token="+key1, "", nil)).json(t, &me)
	if me["role"] != "cliente" || me["cliente"] != "c1" {
		t.Fatalf("me = %v", me)
	}
	if r := h.do("GET", "/api/nope", adminTok, nil); r.Status != 404 || r.errCode() != "not_found" {
		t.Fatalf("unknown api route: %d %s", r.Status, r.Body)
	}
	r := h.do("GET", "/healthz", "", nil)
	if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("headers: %v", r.Header)
	}
}

func TestClientes(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	var list struct{ Items []engine.Cliente }
	h.must(200, h.do("GET", "/api/clientes", adminTok, nil)).json(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("admin sees %d clientes", len(list.Items))
	}
	h.must(200, h.do("GET", "/api/clientes", key1, nil)).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != "c1" {
		t.Fatalf("cliente key sees %+v", list.Items)
	}
	var cl engine.Cliente
	h.must(200, h.do("GET", "/api/clientes/c1", key1, nil)).json(t, &cl)
	if cl.DefaultRegion != "AR" || cl.Name != "Cliente c1" {
		t.Fatalf("cliente = %+v", cl)
	}
	if r := h.do("POST", "/api/clientes", adminTok, map[string]string{"id": "c1"}); r.Status != 409 || r.errCode() != "conflict" {
		t.Fatalf("duplicate: %d %s", r.Status, r.Body)
	}
	h.must(404, h.do("GET", "/api/clientes/zz", adminTok, nil))
	h.must(200, h.do("PATCH", "/api/clientes/c1", adminTok, map[string]string{"nombre": "Tienda Uno", "region": "UY"})).json(t, &cl)
	if cl.Name != "Tienda Uno" || cl.DefaultRegion != "UY" || cl.ID != "c1" || cl.CreatedAt.IsZero() {
		t.Fatalf("patched cliente = %+v", cl)
	}
	h.must(400, h.do("PATCH", "/api/clientes/c1", adminTok, map[string]string{"region": "Uruguay"}))
	h.must(400, h.do("PATCH", "/api/clientes/c1", adminTok, map[string]string{"id": "c7"}))
	h.must(403, h.do("PATCH", "/api/clientes/c1", key1, map[string]string{"nombre": "x"}))
	h.must(404, h.do("PATCH", "/api/clientes/zz", adminTok, map[string]string{"nombre": "x"}))
	h.must(404, h.do("POST", "/api/clientes/zz/keys", adminTok, nil))
	h.must(400, h.do("POST", "/api/clientes", adminTok, map[string]string{"id": "bad id!"}))
	h.must(400, h.do("POST", "/api/clientes", adminTok, map[string]string{"id": "c9", "region": "argentina"}))
	h.must(403, h.do("POST", "/api/clientes", key1, map[string]string{"id": "c9"}))
	h.must(403, h.do("POST", "/api/clientes/c1/keys", key1, nil))
	// A second key for c1, listed, revoked: it stops working at once.
	var k2 struct{ Key, ID string }
	h.must(201, h.do("POST", "/api/clientes/c1/keys", adminTok, nil)).json(t, &k2)
	var keys struct{ Items []struct{ ID string } }
	h.must(200, h.do("GET", "/api/clientes/c1/keys", adminTok, nil)).json(t, &keys)
	if len(keys.Items) != 2 || strings.Contains(string(h.do("GET", "/api/clientes/c1/keys", adminTok, nil).Body), k2.Key) {
		t.Fatalf("keys: %+v", keys)
	}
	h.must(200, h.do("GET", "/api/me", k2.Key, nil))
	h.must(404, h.do("DELETE", "/api/clientes/c2/keys/"+k2.ID, adminTok, nil)) // not c2's key
	h.must(204, h.do("DELETE", "/api/clientes/c1/keys/"+k2.ID, adminTok, nil))
	h.must(401, h.do("GET", "/api/me", k2.Key, nil))
	h.must(200, h.do("GET", "/api/me", key1, nil))
	h.must(404, h.do("DELETE", "/api/clientes/c1/keys/"+k2.ID, adminTok, nil))
	h.must(403, h.do("GET", "/api/clientes/c1/keys", key1, nil))
	var rs struct {
		Items []engine.StoredReply
		Next  string
	}
	h.must(200, h.do("GET", "/api/clientes/c1/replies", key1, nil)).json(t, &rs)
	if len(rs.Items) != 0 {
		t.Fatalf("replies = %+v", rs)
	}
	h.eng.Reply(engine.Reply{Cliente: "c1", From: "+5491123456701", Text: "hola", At: t0})
	h.must(200, h.do("GET", "/api/clientes/c1/replies?limit=10", key1, nil)).json(t, &rs)
	if len(rs.Items) != 1 || rs.Items[0].Text != "hola" {
		t.Fatalf("replies = %+v", rs)
	}
	h.must(400, h.do("GET", "/api/clientes/c1/replies?limit=0", key1, nil))
	h.must(400, h.do("GET", "/api/clientes/c1/replies?after=-1", key1, nil))
}

func TestCampaignLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	base := "/api/clientes/c1/campaigns"
	var camp engine.Campaign
	h.must(200, h.do("GET", base+"/k1", key1, nil)).json(t, &camp)
	if camp.Status != engine.Borrador || camp.Template != "Hola {{nombre}}" {
		t.Fatalf("campaign = %+v", camp)
	}
	var list struct{ Items []engine.Campaign }
	h.must(200, h.do("GET", base, key1, nil)).json(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("campaigns = %+v", list.Items)
	}
	// Edit: template, programación, ritmo.
	h.must(200, h.do("PATCH", base+"/k1", key1, map[string]any{
		"plantilla":    "Hola {{nombre}}, mirá {{producto}}",
		"programacion": map[string]any{"desde": 9, "hasta": 18, "zona": "America/Argentina/Buenos_Aires"},
		"ritmo":        map[string]any{"min_delay": "1s", "max_delay": 2, "por_hora": 30},
	})).json(t, &camp)
	if camp.Schedule.StartHour != 9 || camp.Rate.HourlyCap != 30 || !strings.Contains(camp.Template, "producto") {
		t.Fatalf("patched = %+v", camp)
	}
	h.must(400, h.do("PATCH", base+"/k1", key1, map[string]any{"programacion": map[string]any{"desde": 30}}))
	h.must(400, h.do("PATCH", base+"/k1", key1, map[string]any{"ritmo": map[string]any{"min_delay": -1}}))
	h.must(400, h.do("PATCH", base+"/k1", key1, map[string]any{"programacion": map[string]any{"zona": "Mars/Base"}}))
	h.must(200, h.do("PATCH", base+"/k1", key1, map[string]any{"plantilla": "Hola {{nombre}}"}))

	// Script: a syntax error comes back with its line; a good one is stored.
	r := h.doCT("PUT", base+"/k1/script", key1, "text/plain", "function personalize(e)\n  return 'hola' ..\nend\nend\n")
	if r.Status != 400 || r.errCode() != "script" {
		t.Fatalf("bad script: %d %s", r.Status, r.Body)
	}
	var se struct {
		Error struct {
			Line int `json:"line"`
		} `json:"error"`
	}
	r.json(t, &se)
	if se.Error.Line < 2 || se.Error.Line > 4 {
		t.Fatalf("syntax error line = %d: %s", se.Error.Line, r.Body)
	}
	good := "function personalize(e)\n  return 'Hola ' .. e.nombre\nend\n"
	h.must(200, h.doCT("PUT", base+"/k1/script", key1, "text/plain", good)).json(t, &camp)
	if camp.Script != good {
		t.Fatalf("script not stored: %q", camp.Script)
	}
	h.must(200, h.doCT("PUT", base+"/k1/script", key1, "text/plain", "")) // removed again

	// Preview: template and script.
	var pv struct{ Text string }
	row := map[string]any{"telefono": "+5491123456701", "nombre": "Ana", "variables": map[string]string{"producto": "plan"}}
	h.must(200, h.do("POST", base+"/k1/preview", key1, map[string]any{"plantilla": "Hola {{nombre}}, {{producto}}", "row": row})).json(t, &pv)
	if pv.Text != "Hola Ana, plan" {
		t.Fatalf("preview = %q", pv.Text)
	}
	h.must(200, h.do("POST", base+"/k1/preview", key1, map[string]any{"script": good, "row": row})).json(t, &pv)
	if pv.Text != "Hola Ana" {
		t.Fatalf("script preview = %q", pv.Text)
	}
	h.must(200, h.do("POST", base+"/k1/preview", key1, map[string]any{"plantilla": "Hola {{nombre}}", "script": "function on_reply(m) return nil end", "row": row})).json(t, &pv)
	if pv.Text != "Hola Ana" { // a script without personalize: the template renders
		t.Fatalf("preview with on_reply only = %q", pv.Text)
	}
	h.must(400, h.do("POST", base+"/k1/preview", key1, map[string]any{"plantilla": "Hola {{falta}}", "row": row}))
	h.must(400, h.do("POST", base+"/k1/preview", key1, map[string]any{"script": "function personalize(e) error('x') end", "row": row}))

	// Lifecycle.
	var st engine.Stats
	h.must(409, h.do("POST", base+"/k1/pause", key1, nil)) // borrador cannot pause
	h.must(200, h.do("POST", base+"/k1/start", key1, nil)).json(t, &st)
	if st.Status != engine.Activa || st.Total != 3 {
		t.Fatalf("started: %+v", st)
	}
	h.must(200, h.do("POST", base+"/k1/pause", key1, nil)).json(t, &st)
	if st.Status != engine.Pausada {
		t.Fatalf("paused: %+v", st)
	}
	h.must(200, h.do("POST", base+"/k1/resume", key1, nil))
	h.must(200, h.do("POST", base+"/k1/cancel", key1, nil)).json(t, &st)
	if st.Status != engine.Cancelada || st.Open != 0 {
		t.Fatalf("cancelled: %+v", st)
	}
	h.must(200, h.do("GET", base+"/k1/stats", key1, nil)).json(t, &st)
	if st.Counts[engine.Cancelado]+st.Counts[engine.Enviado]+st.Counts[engine.Enviando] != 3 {
		t.Fatalf("stats: %+v", st)
	}
	h.must(409, h.do("POST", base+"/k1/resume", key1, nil))
	h.must(409, h.do("PATCH", base+"/k1", key1, map[string]any{"nombre": "x"}))
	h.must(409, h.doCT("POST", base+"/k1/envios", key1, "text/csv", "telefono\n+5491123456709\n"))
	h.must(404, h.do("POST", base+"/zz/start", key1, nil))
	if r := h.do("POST", base, key1, map[string]any{"id": "k1"}); r.Status != 409 {
		t.Fatalf("duplicate campaign: %d %s", r.Status, r.Body)
	}
}

func TestEnviosUploadAndListing(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	base := "/api/clientes/c1/campaigns/k1"
	// A CSV with a bad row, a duplicate, and good rows: per-row report.
	v := h.upload("c1", "k1", key1, "telefono;nombre;producto\n+5491123456704;Dani;plan\nnot a phone;X;y\n+5491123456704;Dup;z\n+5491123456705;Eva;plan\n")
	if v["state"] != "done" {
		t.Fatalf("job: %v", v)
	}
	rep := v["report"].(map[string]any)
	if rep["aceptados"].(float64) != 2 || rep["rechazados"].(float64) != 1 || rep["duplicados"].(float64) != 1 {
		t.Fatalf("report: %v", rep)
	}
	if rj := rep["rechazos"].([]any)[0].(map[string]any); rj["linea"].(float64) != 3 {
		t.Fatalf("rejected row: %v", rj)
	}
	if v["bytes"].(float64) == 0 || v["rows"].(float64) < 4 {
		t.Fatalf("progress: %v", v)
	}
	// JSON upload.
	var j struct{ Job string }
	h.must(202, h.doCT("POST", base+"/envios", key1, "application/json", `[{"telefono":"+5491123456706","nombre":"Fede","variables":{"producto":"x"}}]`)).json(t, &j)
	h.srv.WaitJob(j.Job)
	h.must(200, h.do("GET", "/api/clientes/c1/imports/"+j.Job, key1, nil)).json(t, &v)
	if v["state"] != "done" {
		t.Fatalf("json job: %v", v)
	}
	// A file-level failure (an unclosed quote) fails the job and imports nothing.
	before := h.journalLen()
	v = h.upload("c1", "k1", key1, "telefono,nombre\n+5491123456707,\"Gabi\n+5491123456708,Hugo\n")
	if v["state"] != "failed" || v["error"] == "" {
		t.Fatalf("failed job: %v", v)
	}
	if got := h.journalLen(); got != before {
		t.Fatalf("journal grew from %d to %d on a failed import", before, got)
	}
	h.must(404, h.do("GET", "/api/clientes/c1/imports/nope", key1, nil))

	// Listing with paging and a state filter.
	var pg struct {
		Items []struct {
			Seq      uint64 `json:"seq"`
			Telefono string `json:"telefono"`
			Estado   string `json:"estado"`
		}
		Next string
	}
	h.must(200, h.do("GET", base+"/envios?limit=4", key1, nil)).json(t, &pg)
	if len(pg.Items) != 4 || pg.Next != "4" || pg.Items[0].Seq != 1 {
		t.Fatalf("page 1: %+v", pg)
	}
	h.must(200, h.do("GET", base+"/envios?limit=4&after="+pg.Next, key1, nil)).json(t, &pg)
	if len(pg.Items) != 2 || pg.Next != "" || pg.Items[0].Telefono != "+5491123456705" {
		t.Fatalf("page 2: %+v", pg)
	}
	h.must(200, h.do("GET", base+"/envios?estado=pendiente", key1, nil)).json(t, &pg)
	if len(pg.Items) != 6 {
		t.Fatalf("pendientes: %d", len(pg.Items))
	}
	h.must(200, h.do("GET", base+"/envios?estado=enviado", key1, nil)).json(t, &pg)
	if len(pg.Items) != 0 {
		t.Fatalf("enviados: %d", len(pg.Items))
	}
	h.must(200, h.do("GET", base+"/envios?telefono=%2B5491123456705", key1, nil)).json(t, &pg)
	if len(pg.Items) != 1 || pg.Items[0].Telefono != "+5491123456705" {
		t.Fatalf("search: %+v", pg)
	}
	h.must(200, h.do("GET", base+"/envios?telefono=%2B5491123456799", key1, nil)).json(t, &pg)
	if len(pg.Items) != 0 {
		t.Fatalf("search for a phone not in the campaign: %+v", pg)
	}
	h.must(400, h.do("GET", base+"/envios?telefono=123", key1, nil))
	h.must(400, h.do("GET", base+"/envios?estado=volando", key1, nil))
	h.must(400, h.do("GET", base+"/envios?limit=5000", key1, nil))
}

// TestCampaignSends runs a campaign to the end through the API on the
// in-memory gateway: stats reach enviado for every envío.
func TestCampaignSends(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
	events, cancel := h.eng.Events().Subscribe(1024)
	defer cancel()
	h.must(200, h.do("PATCH", "/api/clientes/c1/campaigns/k1", key1, map[string]any{"ritmo": map[string]any{"min_delay": "1ms", "max_delay": "2ms"}}))
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", key1, nil))
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	sent := 0
	for sent < 3 {
		select {
		case ev := <-events:
			if ev.Type == "envio" && ev.To == engine.Enviado {
				sent++
			}
		default:
			if !h.clock.AdvanceToNext(ctx) && ctx.Err() != nil {
				t.Fatal("campaign did not send")
			}
		}
	}
	var st engine.Stats
	h.must(200, h.do("GET", "/api/clientes/c1/campaigns/k1/stats", key1, nil)).json(t, &st)
	if st.Counts[engine.Enviado] != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestSessionRoutes(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	var ev engine.SessionEvent
	h.must(200, h.do("GET", "/api/clientes/c1/session", key1, nil)).json(t, &ev)
	if ev.State != engine.SessionInitializing {
		t.Fatalf("state = %+v", ev)
	}
	h.must(202, h.do("POST", "/api/clientes/c1/session/start", key1, nil))
	var code map[string]string
	h.must(200, h.do("POST", "/api/clientes/c1/session/pair", key1, map[string]string{"phone": "+5491122334455"})).json(t, &code)
	if code["code"] != "ABCD-EFGH" {
		t.Fatalf("pair = %v", code)
	}
	h.must(400, h.do("POST", "/api/clientes/c1/session/pair", key1, map[string]string{"phone": "12"}))
	h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady, JID: "x@s.whatsapp.net"})
	if r := h.do("GET", "/api/clientes/c1/session/qr", key1, nil); r.Status != 409 || r.errCode() != "already_connected" {
		t.Fatalf("qr when READY: %d %s", r.Status, r.Body)
	}
	h.must(200, h.do("POST", "/api/clientes/c1/session/logout", key1, nil)).json(t, &ev)
	if ev.State != engine.SessionLoggedOut {
		t.Fatalf("after logout: %+v", ev)
	}
	h.must(404, h.do("GET", "/api/clientes/zz/session", adminTok, nil))
	// No session manager wired: 503, not a crash.
	h2 := newHarness(t, func(o *admin.Options) { o.Sessions = nil })
	h2.must(201, h2.do("POST", "/api/clientes", adminTok, map[string]string{"id": "c1"}))
	h2.must(503, h2.do("GET", "/api/clientes/c1/session", adminTok, nil))
}

// TestQRWaitsForFirstQR: on a fresh cliente the QR request waits on the
// session's change notification and answers with the PNG the moment the
// first QR exists; 504 when none comes in time.
func TestQRWaitsForFirstQR(t *testing.T) {
	h := newHarness(t, nil)
	h.setup()
	for _, format := range []string{"png", "json"} {
		got := make(chan resp, 1)
		go func() { got <- h.do("GET", "/api/clientes/c1/session/qr?format="+format+"&timeout=30s", adminTok, nil) }()
		if cl := <-h.sess.waiting; cl != "c1" { // the handler is waiting, no answer yet
			t.Fatalf("waiting for %q", cl)
		}
		select {
		case r := <-got:
			t.Fatalf("answered before any QR: %d %s", r.Status, r.Body)
		default:
		}
		qr := "2@qr-" + format
		h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionQRRequired, QR: qr})
		r := h.must(200, <-got)
		switch format {
		case "png":
			if r.Header.Get("Content-Type") != "image/png" {
				t.Fatalf("content type %q", r.Header.Get("Content-Type"))
			}
			if _, err := png.Decode(bytes.NewReader(r.Body)); err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
		case "json":
			var v map[string]string
			r.json(t, &v)
			if v["qr"] != qr || !strings.HasPrefix(v["data_url"], "data:image/png;base64,") {
				t.Fatalf("json qr: %v", v)
			}
		}
		h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionInitializing}) // next round starts fresh
	}
	if r := h.do("GET", "/api/clientes/c2/session/qr?timeout=1ms", adminTok, nil); r.Status != 504 || r.errCode() != "qr_timeout" {
		t.Fatalf("timeout: %d %s", r.Status, r.Body)
	}
	<-h.sess.waiting
	h.must(400, h.do("GET", "/api/clientes/c1/session/qr?format=gif", adminTok, nil))
	h.must(400, h.do("GET", "/api/clientes/c1/session/qr?timeout=forever", adminTok, nil))
	h.must(400, h.do("GET", "/api/clientes/c1/session/qr?timeout=10m", adminTok, nil))
}

func TestJournalExportBackup(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	var pg struct {
		Items []engine.Entry
		Next  string
	}
	h.must(200, h.do("GET", "/api/journal?limit=3", adminTok, nil)).json(t, &pg)
	n := h.journalLen()
	if len(pg.Items) != 3 || pg.Items[2].Seq != uint64(n) {
		t.Fatalf("tail: %+v (journal %d)", pg.Items, n)
	}
	h.must(200, h.do("GET", "/api/journal?after=0&limit=2", adminTok, nil)).json(t, &pg)
	if len(pg.Items) != 2 || pg.Next != "2" || pg.Items[0].Seq != 1 {
		t.Fatalf("page: %+v", pg)
	}
	r := h.must(200, h.do("GET", "/api/journal/export?format=ndjson", adminTok, nil))
	if got := bytes.Count(r.Body, []byte("\n")); got != n {
		t.Fatalf("ndjson lines = %d, journal %d", got, n)
	}
	r = h.must(200, h.do("GET", "/api/journal/export?format=csv&after=2", adminTok, nil))
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || bytes.Count(r.Body, []byte("\n")) != n-2+1 {
		t.Fatalf("csv: %s", r.Body)
	}
	h.must(400, h.do("GET", "/api/journal/export?format=xml", adminTok, nil))
	h.must(403, h.do("GET", "/api/journal", key1, nil))
	r = h.must(200, h.do("GET", "/api/backup", adminTok, nil))
	if r.Header.Get("Content-Type") != "application/octet-stream" || len(r.Body) < 4096 {
		t.Fatalf("backup: %v, %d bytes", r.Header, len(r.Body))
	}
	h.must(403, h.do("GET", "/api/backup", key1, nil))
}

func TestMetrics(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	h.must(401, h.do("GET", "/metrics", "", nil))
	h.must(403, h.do("GET", "/metrics", key1, nil))
	r := h.must(200, h.do("GET", "/metrics", adminTok, nil))
	for _, want := range []string{
		`leadmaster_envios{campana="k1",cliente="c1",estado="pendiente"} 3`,
		`leadmaster_http_requests_total{method="POST",route="/api/clientes",status="201"} 2`,
		`leadmaster_session_ready{cliente="c1",state="INITIALIZING"} 0`,
		"leadmaster_imported_envios_total 6",
		"go_goroutines",
	} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	h2 := newHarness(t, func(o *admin.Options) { o.PublicMetrics = true })
	h2.must(200, h2.do("GET", "/metrics", "", nil))
}

func TestGeneratedAdminToken(t *testing.T) {
	var logged bytes.Buffer
	h := newHarness(t, func(o *admin.Options) {
		o.AdminToken = ""
		o.Logger = slogTo(&logged)
	})
	_ = h
	tok := tokenFromLog(t, logged.String())
	h.must(200, h.do("GET", "/api/me", tok, nil))
	h.must(401, h.do("GET", "/api/me", adminTok, nil))
	hash, err := h.db.AdminTokenHash(context.Background())
	if err != nil || len(hash) != 32 || bytes.Contains(hash, []byte(tok)) {
		t.Fatalf("stored hash %x, %v", hash, err)
	}
	// A second server on the same file reuses the hash and prints nothing.
	logged.Reset()
	srv, err := admin.New(admin.Options{Engine: h.eng, Data: h.db, Logger: slogTo(&logged)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if strings.Contains(logged.String(), "admin_token") {
		t.Fatalf("token printed twice: %s", logged.String())
	}
	req, _ := http.NewRequest("GET", "/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := srv.App().Test(req, -1)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("second server: %v %v", res, err)
	}
	res.Body.Close()
}

// An upload that cannot be stored for its import is refused with 507 and
// imports nothing; leftovers of a crash are removed by CleanSpool.
func TestUpload_SpoolFailureAndCleanup(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	// The spool directory's place is taken by a file.
	if err := os.RemoveAll(h.spool); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.spool, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before := h.journalLen()
	r := h.doCT("POST", "/api/clientes/c1/campaigns/k1/envios", key1, "text/csv", "telefono\n+5491123456709\n")
	if r.Status != 507 || !strings.Contains(string(r.Body), "no_space") {
		t.Fatalf("upload with no spool: %d %s", r.Status, r.Body)
	}
	if got := h.journalLen(); got != before {
		t.Fatalf("journal grew from %d to %d", before, got)
	}

	dir := t.TempDir()
	for _, n := range []string{"upload-1.part", "upload-2.part", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.CleanSpool(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 || filepath.Base(left[0]) != "keep.txt" {
		t.Fatalf("after CleanSpool: %v", left)
	}
}

// A reach lock shows on the session route and in /metrics while it holds,
// for its cliente only, and is gone once it ends.
func TestSessionShowsReachLock(t *testing.T) {
	h := newHarness(t, nil)
	key1, key2 := h.setup()
	until := h.clock.Now().Add(3 * time.Hour).Truncate(time.Second)
	h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: true, Until: until, Enforcement: "REACHOUT_TIMELOCK"})
	var v struct {
		engine.SessionEvent
		Reach *engine.ReachLock `json:"nuevos_contactos"`
	}
	h.must(200, h.do("GET", "/api/clientes/c1/session", key1, nil)).json(t, &v)
	if v.Reach == nil || !v.Reach.Active || !v.Reach.Until.Equal(until) || v.Reach.Source != engine.ReachTimelock || v.Reach.Enforcement != "REACHOUT_TIMELOCK" {
		t.Fatalf("session of c1: %+v, want its reach lock until %v", v.Reach, until)
	}
	v.Reach = nil
	h.must(200, h.do("GET", "/api/clientes/c2/session", key2, nil)).json(t, &v)
	if v.Reach != nil {
		t.Fatalf("c2 shows c1's lock: %+v", v.Reach)
	}
	r := h.must(200, h.do("GET", "/metrics", adminTok, nil))
	for _, want := range []string{
		`leadmaster_reach_locked{cliente="c1",origen="timelock"} 1`,
		`leadmaster_reach_locked_until_seconds{cliente="c1"} ` + strconv.FormatFloat(float64(until.Unix()), 'g', -1, 64),
		`leadmaster_reach_locked{cliente="c2",origen=""} 0`,
	} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: false})
	h.must(200, h.do("GET", "/api/clientes/c1/session", key1, nil)).json(t, &v)
	if v.Reach != nil {
		t.Fatalf("after the end: %+v", v.Reach)
	}
}
