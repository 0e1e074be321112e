package admin_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv"
)

// ritmoOf is a campaign answer's ritmo as the client sees it.
func ritmoOf(t *testing.T, r resp) map[string]any {
	t.Helper()
	var c struct {
		Ritmo map[string]any `json:"ritmo"`
	}
	r.json(t, &c)
	return c.Ritmo
}

func errMessage(r resp) string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Message
}

// TestRitmoDurations: ritmo's delays are taken as Go duration strings or
// numbers of seconds (never nanoseconds) and answered as strings; bad ones
// are a 400 naming the field.
func TestRitmoDurations(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	base := "/api/clientes/c1/campaigns"

	r := h.must(201, h.do("POST", base, key1, map[string]any{"id": "k7", "plantilla": "Hola {{nombre}}",
		"ritmo": map[string]any{"min_delay": "30s", "max_delay": 45, "por_hora": 20}}))
	if got := ritmoOf(t, r); got["min_delay"] != "30s" || got["max_delay"] != "45s" || got["por_hora"] != 20.0 {
		t.Fatalf("created ritmo = %v, want min_delay \"30s\", max_delay \"45s\", por_hora 20", got)
	}
	if c, err := h.db.Campaign(context.Background(), "k7"); err != nil || c.Rate.MinDelay != 30*time.Second || c.Rate.MaxDelay != 45*time.Second {
		t.Fatalf("stored rate = %+v, %v", c.Rate, err)
	}

	t.Run("SecondsAndFractions", func(t *testing.T) {
		r := h.must(200, h.do("PATCH", base+"/k7", key1, map[string]any{"ritmo": map[string]any{"min_delay": 1.5, "max_delay": "2m"}}))
		if got := ritmoOf(t, r); got["min_delay"] != "1.5s" || got["max_delay"] != "2m0s" {
			t.Fatalf("patched ritmo = %v", got)
		}
		r = h.must(200, h.do("GET", base+"/k7", key1, nil))
		if got := ritmoOf(t, r); got["min_delay"] != "1.5s" || got["max_delay"] != "2m0s" {
			t.Fatalf("read ritmo = %v", got)
		}
		if !bytes.Contains(h.must(200, h.do("GET", base, key1, nil)).Body, []byte(`"min_delay":"1.5s"`)) {
			t.Fatal("the list does not answer durations as strings")
		}
		// 30 is 30 seconds, never 30 ns.
		h.must(200, h.do("PATCH", base+"/k7", key1, map[string]any{"ritmo": map[string]any{"min_delay": 30, "max_delay": 60}}))
		if c, _ := h.db.Campaign(context.Background(), "k7"); c.Rate.MinDelay != 30*time.Second || c.Rate.MaxDelay != time.Minute {
			t.Fatalf("rate = %+v", c.Rate)
		}
	})

	t.Run("BadDuration", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			body string
			want string
		}{
			{"word", `{"ritmo":{"min_delay":"abc"}}`, `ritmo.min_delay: want a duration like "30s" or seconds, got "abc"`},
			{"no unit", `{"ritmo":{"max_delay":"30"}}`, `ritmo.max_delay: want a duration like "30s" or seconds, got "30"`},
			{"bool", `{"ritmo":{"min_delay":true}}`, `ritmo.min_delay: want a duration like "30s" or seconds, got true`},
			{"object", `{"ritmo":{"min_delay":{}}}`, `ritmo.min_delay: want a duration like "30s" or seconds, got {}`},
			{"overflow", `{"ritmo":{"min_delay":1e30}}`, `ritmo.min_delay: want a duration like "30s" or seconds, got 1e30`},
			{"nanoseconds", `{"ritmo":{"min_delay":200000000}}`, `ritmo.min_delay: 55555h33m20s is more than a week between sends (a number counts seconds, not nanoseconds)`},
			{"negative", `{"ritmo":{"min_delay":"-1s"}}`, `ritmo.min_delay: want a duration of 0 or more, got "-1s"`},
			{"other field", `{"ritmo":{"por_hora":"x"}}`, `field "ritmo.por_hora": want int, got string`},
			{"unknown field", `{"ritmo":{"min":"1s"}}`, `ritmo: json: unknown field "min"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.doCT("PATCH", base+"/k7", key1, "application/json", tc.body)
				if r.Status != 400 || r.errCode() != "invalid" || errMessage(r) != tc.want {
					t.Fatalf("%s: %d %s, want 400 invalid %q", tc.body, r.Status, r.Body, tc.want)
				}
			})
		}
		r := h.doCT("POST", base, key1, "application/json", `{"id":"k8","plantilla":"x","ritmo":{"min_delay":"1 minute"}}`)
		if r.Status != 400 || !strings.HasPrefix(errMessage(r), `ritmo.min_delay: want a duration like "30s" or seconds`) {
			t.Fatalf("create with a bad duration: %d %s", r.Status, r.Body)
		}
		h.must(404, h.do("GET", base+"/k8", key1, nil))
		if c, _ := h.db.Campaign(context.Background(), "k7"); c.Rate.MinDelay != 30*time.Second {
			t.Fatalf("a refused patch changed the rate: %+v", c.Rate)
		}
	})
}

// openFixture opens a copy of a gzipped data file from testdata and runs
// an engine and the admin server over it.
func openFixture(t *testing.T, name string) *harness {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, kv.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := kv.Open(dir, kv.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	clock := enginetest.NewClock(t0)
	eng := engine.New(db, enginetest.NewGateway(clock), engine.Config{Clock: clock, Logger: slog.New(slog.DiscardHandler), Rand: rand.New(rand.NewPCG(1, 2))})
	srv, err := admin.New(admin.Options{Engine: eng, Data: db, Logger: slog.New(slog.DiscardHandler), AdminToken: adminTok, SpoolDir: filepath.Join(dir, "uploads")})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); db.Close() })
	return &harness{t: t, db: db, srv: srv}
}

// TestRitmoStoredNanoseconds: a data file written before durations were
// strings holds ritmo in integer nanoseconds (testdata/ritmo-nanosegundos:
// campaign "vieja", min_delay 90000000000, max_delay 120500000000); it is
// read as such, answered as strings, and rewritten as strings on an edit.
func TestRitmoStoredNanoseconds(t *testing.T) {
	h := openFixture(t, "ritmo-nanosegundos.db.gz")
	path := "/api/clientes/c1/campaigns/vieja"
	want := func(r resp) {
		t.Helper()
		if got := ritmoOf(t, r); got["min_delay"] != "1m30s" || got["max_delay"] != "2m0.5s" || got["por_hora"] != 30.0 || got["max_intentos"] != 4.0 {
			t.Fatalf("ritmo = %v, want 1m30s, 2m0.5s, por_hora 30, max_intentos 4", got)
		}
	}
	want(h.must(200, h.do("GET", path, adminTok, nil)))
	if c, err := h.db.Campaign(context.Background(), "vieja"); err != nil || c.Rate.MinDelay != 90*time.Second || c.Rate.MaxDelay != 120500*time.Millisecond {
		t.Fatalf("stored rate = %+v, %v", c.Rate, err)
	}
	want(h.must(200, h.do("PATCH", path, adminTok, map[string]any{"nombre": "Vieja, editada"})))
	want(h.must(200, h.do("GET", path, adminTok, nil)))
}

// multipartBody is a multipart/form-data body as curl -F builds it: a
// text field, then (if filename is set) a file part with its own
// Content-Type.
func multipartBody(t *testing.T, filename, partType string, data []byte) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("nota", "lista de noviembre"); err != nil {
		t.Fatal(err)
	}
	if filename != "" {
		hdr := textproto.MIMEHeader{}
		hdr.Set("Content-Disposition", `form-data; name="file"; filename="`+filename+`"`)
		if partType != "" {
			hdr.Set("Content-Type", partType)
		}
		w, err := mw.CreatePart(hdr)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// reportOf waits for an upload's job and returns its view.
func reportOf(t *testing.T, h *harness, r resp) (state string, rep engine.ImportReport) {
	t.Helper()
	var j struct{ Job string }
	r.json(t, &j)
	h.srv.WaitJob(j.Job)
	var v struct {
		State  string              `json:"state"`
		Report engine.ImportReport `json:"report"`
		Error  string              `json:"error"`
	}
	h.must(200, h.do("GET", "/api/clientes/c1/imports/"+j.Job, adminTok, nil)).json(t, &v)
	if v.State != "done" {
		t.Fatalf("job %s: %s %s", j.Job, v.State, v.Error)
	}
	return v.State, v.Report
}

// TestUploadMultipart: curl -F file=@examples/contactos.csv imports the same
// envíos as the raw body does, through the same spool; the part's
// Content-Type or its name's extension gives the format.
func TestUploadMultipart(t *testing.T) {
	h := newHarness(t, nil)
	h.setup()
	csv, err := os.ReadFile(filepath.Join("..", "examples", "contactos.csv"))
	if err != nil {
		t.Fatal(err)
	}
	base := "/api/clientes/c1/campaigns/"
	for _, id := range []string{"raw", "form", "form2"} {
		h.must(201, h.do("POST", "/api/clientes/c1/campaigns", adminTok, map[string]any{"id": id, "plantilla": "Hola {{nombre}}"}))
	}
	_, raw := reportOf(t, h, h.must(202, h.doCT("POST", base+"raw/envios", adminTok, "text/csv", csv)))
	if raw.Rows != 21 || raw.Accepted == 0 {
		t.Fatalf("raw upload of contactos.csv: %+v", raw)
	}
	// curl sends a .csv as application/octet-stream: the extension decides.
	body, ct := multipartBody(t, "contactos.csv", "application/octet-stream", csv)
	_, form := reportOf(t, h, h.must(202, h.doCT("POST", base+"form/envios", adminTok, ct, body)))
	if form.Rows != raw.Rows || form.Accepted != raw.Accepted || form.RejectedCount != raw.RejectedCount || form.Duplicates != raw.Duplicates {
		t.Fatalf("multipart report %+v, raw %+v", form, raw)
	}
	if left, _ := filepath.Glob(filepath.Join(h.spool, "*")); len(left) != 0 {
		t.Fatalf("the finished job left its upload behind: %v", left)
	}
	var st engine.Stats
	h.must(200, h.do("GET", base+"form/stats", adminTok, nil)).json(t, &st)
	if st.Total != uint64(raw.Accepted) {
		t.Fatalf("stats after the multipart upload: %+v", st)
	}

	// The part's Content-Type wins over its name: JSON named .txt.
	body, ct = multipartBody(t, "lista.txt", "application/json", []byte(`[{"telefono":"+5491123456790","nombre":"Ema"}]`))
	if _, rep := reportOf(t, h, h.must(202, h.doCT("POST", base+"form2/envios", adminTok, ct, body))); rep.Accepted != 1 {
		t.Fatalf("JSON part: %+v", rep)
	}
	// A browser on Windows sends a .csv as application/vnd.ms-excel.
	body, ct = multipartBody(t, "OTROS.CSV", "application/vnd.ms-excel", []byte("telefono\n+5491123456791\n"))
	if _, rep := reportOf(t, h, h.must(202, h.doCT("POST", base+"form2/envios", adminTok, ct, body))); rep.Accepted != 1 {
		t.Fatalf("vnd.ms-excel .csv part: %+v", rep)
	}

	for _, tc := range []struct {
		name, filename, partType string
		data                     string
		status                   int
		code, message            string
	}{
		{"no file part", "", "", "", 400, "invalid", "the multipart form has no file part"},
		{"unknown type", "contactos.xlsx", "application/octet-stream", "PK\x03\x04", 415, "unsupported_media_type", `file part "contactos.xlsx"`},
		{"empty file", "contactos.csv", "text/csv", " \n", 400, "invalid", "the file is empty"},
		{"not UTF-8", "contactos.csv", "text/csv", "telefono\n+5491123456701,\xff\xfe\n", 400, "invalid", "not UTF-8"},
		{"NUL", "contactos.csv", "", "telefono\n+5491123456701\x00\n", 400, "invalid", "not UTF-8"},
		{"malformed JSON", "x.json", "", `[{"telefono":`, 400, "invalid", "not valid JSON"},
		{"JSON not an array", "x.json", "", `{"telefono":"+5491123456701"}`, 400, "invalid", "must be an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			journal := h.journalLen()
			body, ct := multipartBody(t, tc.filename, tc.partType, []byte(tc.data))
			r := h.doCT("POST", base+"form2/envios", adminTok, ct, body)
			if r.Status != tc.status || r.errCode() != tc.code || !strings.Contains(errMessage(r), tc.message) {
				t.Fatalf("%d %s, want %d %s %q", r.Status, r.Body, tc.status, tc.code, tc.message)
			}
			if got := h.journalLen(); got != journal {
				t.Fatalf("journal grew %d -> %d", journal, got)
			}
			if left, _ := filepath.Glob(filepath.Join(h.spool, "*")); len(left) != 0 {
				t.Fatalf("a refused upload left a spool file: %v", left)
			}
		})
	}
	t.Run("malformed multipart", func(t *testing.T) {
		body, ct := multipartBody(t, "contactos.csv", "text/csv", csv)
		r := h.doCT("POST", base+"form2/envios", adminTok, ct, body[:len(body)/2]) // cut: no closing boundary
		if r.Status != 400 || r.errCode() != "invalid" {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r = h.doCT("POST", base+"form2/envios", adminTok, "multipart/form-data", body)
		if r.Status != 400 || !strings.Contains(errMessage(r), "boundary") {
			t.Fatalf("no boundary: %d %s", r.Status, r.Body)
		}
	})
}

// TestOversizeMultipartUpload: a multipart upload over MaxUpload is refused
// like a raw one, 413 before the handler, and nothing is imported.
func TestOversizeMultipartUpload(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.MaxBody, o.MaxUpload = 1<<10, 8<<10 })
	key1, _ := h.setup()
	base, _ := h.serve()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	journal := h.journalLen()
	body, ct := multipartBody(t, "contactos.csv", "text/csv", []byte("telefono\n"+strings.Repeat("+5491123456701\n", 1000)))
	res := httpDo(t, client, "POST", base+"/api/clientes/c1/campaigns/k1/envios", key1, ct, bytes.NewReader(body))
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || !strings.Contains(string(data), `"code":"request_entity_too_large"`) && !strings.Contains(string(data), `"too_large"`) {
		t.Fatalf("%d %s", res.StatusCode, data)
	}
	if got := h.journalLen(); got != journal {
		t.Fatalf("journal grew %d -> %d", journal, got)
	}
	// Just under the limit it goes through.
	body, ct = multipartBody(t, "contactos.csv", "text/csv", []byte("telefono\n"+strings.Repeat("+5491123456701\n", 400)))
	res = httpDo(t, client, "POST", base+"/api/clientes/c1/campaigns/k1/envios", key1, ct, bytes.NewReader(body))
	data, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 202 {
		t.Fatalf("%d bytes: %d %s", len(body), res.StatusCode, data)
	}
}

// TestStartEmptyCampaign: a campaign without envíos cannot be started (409
// campaign_empty) and stays borrador; once an import committed it starts.
func TestStartEmptyCampaign(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	base := "/api/clientes/c1/campaigns/"
	h.must(201, h.do("POST", "/api/clientes/c1/campaigns", key1, map[string]any{"id": "vacia", "plantilla": "Hola {{nombre}}"}))
	journal := h.journalLen()
	r := h.do("POST", base+"vacia/start", key1, nil)
	if r.Status != 409 || r.errCode() != "campaign_empty" || !strings.Contains(errMessage(r), "has no envíos") {
		t.Fatalf("start of an empty campaign: %d %s", r.Status, r.Body)
	}
	// An import whose every row was rejected leaves it empty.
	if v := h.upload("c1", "vacia", key1, "telefono\nno-es-un-telefono\n"); v["state"] != "done" {
		t.Fatalf("upload: %v", v)
	}
	if r := h.do("POST", base+"vacia/start", key1, nil); r.Status != 409 || r.errCode() != "campaign_empty" {
		t.Fatalf("start after an import of no rows: %d %s", r.Status, r.Body)
	}
	var st engine.Stats
	h.must(200, h.do("GET", base+"vacia/stats", key1, nil)).json(t, &st)
	if st.Status != engine.Borrador {
		t.Fatalf("after refused starts: %+v", st)
	}
	if got := h.journalLen(); got != journal { // no status change, and no rows imported
		t.Fatalf("journal grew %d -> %d", journal, got)
	}
	h.upload("c1", "vacia", key1, "telefono\n+5491123456709\n")
	h.must(200, h.do("POST", base+"vacia/start", key1, nil)).json(t, &st)
	if st.Status != engine.Activa || st.Total != 1 {
		t.Fatalf("started: %+v", st)
	}
}

// TestCampaignEndsWhenAllFinal: a running campaign whose envíos all become
// final (sent, or omitted: a suppressed phone) ends terminada by itself.
func TestCampaignEndsWhenAllFinal(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	if err := h.db.Suppress(ctx, "c1", "+5491123456702", engine.ReasonOptOut); err != nil {
		t.Fatal(err)
	}
	h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
	events, cancel := h.eng.Events().Subscribe(1024)
	defer cancel()
	h.must(200, h.do("PATCH", "/api/clientes/c1/campaigns/k1", key1, map[string]any{"ritmo": map[string]any{"min_delay": "1ms", "max_delay": "2ms"}}))
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", key1, nil))
	for done := false; !done; {
		select {
		case ev := <-events:
			done = ev.Type == "campaign" && ev.Campaign == "k1" && ev.Status == string(engine.Terminada)
		default: // once the campaign ended no timer may be pending: look at events again soon
			step, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			h.clock.AdvanceToNext(step)
			cancel()
			if ctx.Err() != nil {
				r := h.do("GET", "/api/clientes/c1/campaigns/k1/stats", key1, nil)
				t.Fatalf("the campaign did not end: %s", r.Body)
			}
		}
	}
	var st engine.Stats
	h.must(200, h.do("GET", "/api/clientes/c1/campaigns/k1/stats", key1, nil)).json(t, &st)
	if st.Status != engine.Terminada || st.Open != 0 || st.Counts[engine.Enviado] != 2 || st.Counts[engine.Omitido] != 1 {
		t.Fatalf("stats: %+v", st)
	}
	h.must(409, h.do("POST", "/api/clientes/c1/campaigns/k1/resume", key1, nil))
}

// TestOpenAPIErgonomics: the OpenAPI document says what the API takes:
// ritmo's delays as duration strings or seconds, multipart uploads, and
// the 409 campaign_empty of a start.
func TestOpenAPIErgonomics(t *testing.T) {
	h := newHarness(t, nil)
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Description string `json:"description"`
			} `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Type  string           `json:"type"`
					OneOf []map[string]any `json:"oneOf"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	h.must(200, h.do("GET", "/api/openapi.json", "", nil)).json(t, &doc)
	for _, f := range []string{"min_delay", "max_delay"} {
		p := doc.Components.Schemas["Rate"].Properties[f]
		if len(p.OneOf) != 2 || p.OneOf[0]["type"] != "string" || p.OneOf[1]["type"] != "number" {
			t.Errorf("Rate.%s = %+v, want oneOf string (a Go duration) or number (seconds)", f, p)
		}
	}
	up := doc.Paths["/api/clientes/{id}/campaigns/{cid}/envios"]["post"]
	for _, ct := range []string{"text/csv", "application/json", "multipart/form-data"} {
		if up.RequestBody.Content[ct] == nil {
			t.Errorf("the upload does not document %s", ct)
		}
	}
	for _, code := range []string{"400", "413", "415"} {
		if up.Responses[code].Description == "" {
			t.Errorf("the upload does not document %s", code)
		}
	}
	if d := doc.Paths["/api/clientes/{id}/campaigns/{cid}/start"]["post"].Responses["409"].Description; !strings.Contains(d, "campaign_empty") {
		t.Errorf("start's 409 = %q, want it to name campaign_empty", d)
	}
}
