package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// kv.DB is the admin API's store.
var (
	_ admin.Store  = (*kv.DB)(nil)
	_ admin.Outbox = (*kv.DB)(nil)
)

const adminTok = "test-admin-token"

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type harness struct {
	t     testing.TB
	db    *kv.DB
	clock *enginetest.Clock
	gw    *enginetest.Gateway
	eng   *engine.Engine
	sess  *fakeSessions
	srv   *admin.Server
	spool string // the server's SpoolDir
}

// newHarness runs a real engine on a temp kv file with an in-memory gateway
// and a fake clock, fake sessions, and the admin server over them.
func newHarness(t testing.TB, mod func(*admin.Options)) *harness {
	t.Helper()
	return newHarnessEngine(t, mod, nil)
}

// newHarnessEngine is newHarness with the engine's config adjusted.
func newHarnessEngine(t testing.TB, mod func(*admin.Options), ecfg func(*engine.Config)) *harness {
	t.Helper()
	db, _ := kvtest.MustOpen(t, kv.Options{})
	h := &harness{t: t, db: db, clock: enginetest.NewClock(t0)}
	h.gw = enginetest.NewGateway(h.clock)
	cfg := engine.Config{Clock: h.clock, Logger: slog.New(slog.DiscardHandler), Rand: rand.New(rand.NewPCG(1, 2))}
	if ecfg != nil {
		ecfg(&cfg)
	}
	h.eng = engine.New(db, h.gw, cfg)
	h.sess = newFakeSessions(h.gw, h.eng)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.eng.Run(ctx); close(done) }()
	opts := admin.Options{Engine: h.eng, Data: db, Sessions: h.sess, Logger: slog.New(slog.DiscardHandler), AdminToken: adminTok,
		SpoolDir: filepath.Join(t.TempDir(), "uploads")}
	if mod != nil {
		mod(&opts)
	}
	h.spool = opts.SpoolDir
	srv, err := admin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() { h.srv.Close(); cancel(); <-done })
	return h
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// errCode is the "code" of a JSON error body.
func (r resp) errCode() string {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// do sends a request through app.Test (no listener). body may be a string,
// []byte, or a value encoded as JSON.
func (h *harness) do(method, path, token string, body any) resp {
	h.t.Helper()
	return h.doCT(method, path, token, "", body)
}

func (h *harness) doCT(method, path, token, ct string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
		if ct == "" {
			ct = "application/json"
		}
	}
	req := httptest.NewRequest(method, path, rd)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := h.srv.App().Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: data}
}

// must asserts a status.
func (h *harness) must(want int, r resp) resp {
	h.t.Helper()
	if r.Status != want {
		h.t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
	return r
}

// journalLen is the number of journal records.
func (h *harness) journalLen() int {
	h.t.Helper()
	n := 0
	for after := uint64(0); ; {
		es, err := h.db.JournalPage(context.Background(), after, 1000)
		if err != nil {
			h.t.Fatal(err)
		}
		n += len(es)
		if len(es) < 1000 {
			return n
		}
		after = es[len(es)-1].Seq
	}
}

// setup creates clientes c1 and c2, a key for each, and campaign k1 of c1
// and k2 of c2 with 3 envíos each; it returns the keys.
func (h *harness) setup() (key1, key2 string) {
	h.t.Helper()
	for _, id := range []string{"c1", "c2"} {
		h.must(201, h.do("POST", "/api/clientes", adminTok, map[string]string{"id": id, "nombre": "Cliente " + id, "region": "AR"}))
	}
	var k struct{ Key string }
	h.must(201, h.do("POST", "/api/clientes/c1/keys", adminTok, nil)).json(h.t, &k)
	key1 = k.Key
	h.must(201, h.do("POST", "/api/clientes/c2/keys", adminTok, nil)).json(h.t, &k)
	key2 = k.Key
	for _, c := range []struct{ cl, id, key string }{{"c1", "k1", key1}, {"c2", "k2", key2}} {
		h.must(201, h.do("POST", "/api/clientes/"+c.cl+"/campaigns", c.key, map[string]any{"id": c.id, "nombre": "Promo", "plantilla": "Hola {{nombre}}"}))
		h.upload(c.cl, c.id, c.key, "telefono,nombre\n+5491123456701,Ana\n+5491123456702,Beto\n+5491123456703,Caro\n")
	}
	return key1, key2
}

// upload imports a CSV and waits for its job; it returns the job's view.
func (h *harness) upload(cl, camp, key, csv string) map[string]any {
	h.t.Helper()
	var j struct{ Job string }
	h.must(202, h.doCT("POST", "/api/clientes/"+cl+"/campaigns/"+camp+"/envios", key, "text/csv", csv)).json(h.t, &j)
	h.srv.WaitJob(j.Job)
	if left, _ := filepath.Glob(filepath.Join(h.spool, "*")); len(left) != 0 {
		h.t.Fatalf("the finished job left its upload behind: %v", left)
	}
	var v map[string]any
	h.must(200, h.do("GET", "/api/clientes/"+cl+"/imports/"+j.Job, key, nil)).json(h.t, &v)
	return v
}

// fakeSessions is an engine.Sessions whose state the test drives with
// emit; WaitQR waits on a change channel (as engine/wa does), never polls.
type fakeSessions struct {
	*enginetest.Gateway
	in engine.Inbound

	mu      sync.Mutex
	cur     map[string]engine.SessionEvent
	changed map[string]chan struct{}
	waiting chan string // a WaitQR call is waiting (cliente)
	started map[string]int
	pairErr error
}

func newFakeSessions(gw *enginetest.Gateway, in engine.Inbound) *fakeSessions {
	return &fakeSessions{Gateway: gw, in: in, cur: map[string]engine.SessionEvent{}, changed: map[string]chan struct{}{}, waiting: make(chan string, 16), started: map[string]int{}}
}

func (f *fakeSessions) chLocked(cl string) chan struct{} {
	ch := f.changed[cl]
	if ch == nil {
		ch = make(chan struct{})
		f.changed[cl] = ch
	}
	return ch
}

// emit changes a session's state and reports it to the engine (which
// journals and publishes it).
func (f *fakeSessions) emit(ev engine.SessionEvent) {
	f.mu.Lock()
	f.cur[ev.Cliente] = ev
	close(f.chLocked(ev.Cliente))
	f.changed[ev.Cliente] = make(chan struct{})
	f.mu.Unlock()
	f.SetReady(ev.Cliente, ev.State == engine.SessionReady)
	f.in.SessionChanged(ev)
}

func (f *fakeSessions) Start(ctx context.Context, cl string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started[cl]++
	return nil
}

func (f *fakeSessions) State(cl string) engine.SessionEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev, ok := f.cur[cl]; ok {
		return ev
	}
	return engine.SessionEvent{Cliente: cl, State: engine.SessionInitializing}
}

func (f *fakeSessions) WaitQR(ctx context.Context, cl string) (string, error) {
	announced := false
	for {
		f.mu.Lock()
		f.started[cl]++
		ev := f.cur[cl]
		ch := f.chLocked(cl)
		f.mu.Unlock()
		switch {
		case ev.State == engine.SessionReady:
			return "", engine.ErrAlreadyConnected
		case ev.State == engine.SessionQRRequired && ev.QR != "":
			return ev.QR, nil
		}
		if !announced {
			announced = true
			f.waiting <- cl
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (f *fakeSessions) PairPhone(ctx context.Context, cl, phone string) (string, error) {
	if f.pairErr != nil {
		return "", f.pairErr
	}
	return "ABCD-EFGH", nil
}

func (f *fakeSessions) Logout(ctx context.Context, cl string) error {
	f.emit(engine.SessionEvent{Cliente: cl, State: engine.SessionLoggedOut})
	return nil
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func tokenFromLog(t *testing.T, log string) string {
	t.Helper()
	_, rest, ok := strings.Cut(log, "admin_token=")
	if !ok {
		t.Fatalf("no token in log: %s", log)
	}
	tok, _, _ := strings.Cut(rest, "\n")
	return strings.Fields(tok)[0]
}
