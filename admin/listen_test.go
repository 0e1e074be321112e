package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/kv"
)

// serve runs the harness's server on 127.0.0.1:0; stop shuts it down and
// waits for Serve to return.
func (h *harness) serve() (base string, stop func()) {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, ln) }()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("serve: %v", err)
		}
	}
	h.t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func httpDo(t testing.TB, client *http.Client, method, url, token, ct string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestOversizeUpload: an upload over MaxUpload is refused by the server
// before the handler runs, with a JSON 413, and nothing is imported.
func TestOversizeUpload(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.MaxBody, o.MaxUpload = 1<<10, 8<<10 })
	key1, _ := h.setup()
	base, _ := h.serve()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	journal := h.journalLen()
	big := "telefono\n" + strings.Repeat("+5491123456701\n", 1000)
	res := httpDo(t, client, "POST", base+"/api/clientes/c1/campaigns/k1/envios", key1, "text/csv", strings.NewReader(big))
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || !strings.Contains(string(data), `"code":"request_entity_too_large"`) && !strings.Contains(string(data), `"too_large"`) {
		t.Fatalf("%d %s", res.StatusCode, data)
	}
	if got := h.journalLen(); got != journal {
		t.Fatalf("journal grew %d -> %d", journal, got)
	}
}

// TestSSE: a cliente key's stream carries its own cliente's events only
// (session, campaign, envío), with heartbeats; the admin's sees all; the
// streams end when the server shuts down.
func TestSSE(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.Heartbeat, o.StatsInterval = 20*time.Millisecond, 10*time.Millisecond })
	key1, _ := h.setup()
	base, stop := h.serve()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	open := func(url, token string) *bufio.Reader {
		res := httpDo(t, client, "GET", url, token, "", nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %d %v", res.StatusCode, res.Header)
		}
		t.Cleanup(func() { res.Body.Close() })
		return bufio.NewReader(res.Body)
	}
	mine := open(base+"/api/events?token="+key1, "")
	all := open(base+"/api/events", adminTok)
	for _, r := range []*bufio.Reader{mine, all} { // subscribed before the events below
		if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
			t.Fatalf("first line %q", line)
		}
	}
	// c2's events first, then c1's: c1's stream must show c1's first.
	h.sess.emit(engine.SessionEvent{Cliente: "c2", State: engine.SessionQRRequired, QR: "qr-c2"})
	h.must(200, h.do("POST", "/api/clientes/c2/campaigns/k2/cancel", adminTok, nil))
	h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionQRRequired, QR: "qr-c1"})
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/cancel", key1, nil))

	type got struct {
		typ   string
		ev    engine.Event
		stats engine.Stats
	}
	next := func(r *bufio.Reader, heartbeat *bool) got {
		var g got
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == ": heartbeat":
				if heartbeat != nil {
					*heartbeat = true
				}
			case strings.HasPrefix(line, "event: "):
				g.typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var v any = &g.ev
				if g.typ == "stats" {
					v = &g.stats
				}
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), v); err != nil {
					t.Fatal(err)
				}
			case line == "" && g.typ != "":
				return g
			}
		}
	}
	var beat bool
	e1 := next(mine, &beat)
	if e1.typ != "session" || e1.ev.Session == nil || e1.ev.Session.Cliente != "c1" || e1.ev.Session.QR != "qr-c1" {
		t.Fatalf("c1's first event: %+v", e1)
	}
	// Then c1's cancellations (envío and campaign events) and the counters
	// of its campaign, never c2's.
	var sawStats bool
	for seen := 0; seen < 4 || !sawStats; seen++ {
		g := next(mine, &beat)
		if c := g.ev.Cliente; c != "" && c != "c1" || g.ev.Campaign == "k2" {
			t.Fatalf("c1 sees %+v", g)
		}
		if g.typ == "stats" {
			if g.stats.Campaign != "k1" {
				t.Fatalf("c1 sees stats of %+v", g.stats)
			}
			sawStats = sawStats || g.stats.Counts[engine.Cancelado] == 3
		}
	}
	for !beat {
		next := func() { line, _ := mine.ReadString('\n'); beat = beat || line == ": heartbeat\n" }
		next()
	}
	a := next(all, nil)
	if a.ev.Session == nil || a.ev.Session.Cliente != "c2" {
		t.Fatalf("admin's first event: %+v", a)
	}
	stop() // shutdown ends the streams
	if _, err := io.ReadAll(mine); err != nil {
		t.Fatalf("stream after shutdown: %v", err)
	}
}

// TestBackupDuringCampaign: a backup streamed while a campaign sends opens
// as a data file whose journal verifies (chain, replay, counters).
func TestBackupDuringCampaign(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	h.sess.emit(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
	h.must(200, h.do("PATCH", "/api/clientes/c1/campaigns/k1", key1, map[string]any{"ritmo": map[string]any{"min_delay": "1ms", "max_delay": "2ms"}}))
	events, unsub := h.eng.Events().Subscribe(1024)
	defer unsub()
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", key1, nil))
	for ev := range events { // the first envío is committed enviado; the others are still open
		if ev.Type == "envio" && ev.To == engine.Enviado {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go h.clock.AdvanceToNext(ctx) // the campaign goes on while the backup streams
	r := h.must(200, h.do("GET", "/api/backup", adminTok, nil))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, kv.FileName), r.Body, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := kv.Open(dir, kv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := db.Verify(context.Background(), nil)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	es, err := db.Envios(context.Background(), "k1", 0, 100, engine.Enviado)
	if err != nil || len(es) == 0 || len(es) == 3 {
		t.Fatalf("backup has %d enviados of 3 (%v): not taken mid-campaign", len(es), err)
	}
}

// TestListenWarnsBeyondLoopback: binding a non-loopback address logs a
// warning; loopback does not.
func TestListenWarnsBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "0.0.0.0:0"} {
		var log syncBuffer
		h := newHarness(t, func(o *admin.Options) { o.Logger = slogTo(&log) })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- h.srv.Serve(ctx, ln) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(log.String(), "beyond loopback")
		if warned != (addr == "0.0.0.0:0") {
			t.Errorf("%s: warned=%v: %s", addr, warned, log.String())
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A stream that falls behind tells its client how many events it lost, so
// the page reloads instead of trusting its deltas.
func TestSSE_TellsTheClientWhatItLost(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.EventBuffer, o.Heartbeat = 1, 10*time.Millisecond })
	h.setup()
	base, _ := h.serve()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	res := httpDo(t, client, "GET", base+"/api/events", adminTok, "", nil)
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "retry:") {
		t.Fatalf("first line %q", line)
	}
	lost := make(chan string, 1)
	go func() {
		defer close(lost)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "event: lost\n" {
				data, _ := r.ReadString('\n')
				lost <- data
				return
			}
		}
	}()
	// Far more events than a one-event buffer holds, as fast as they come.
	deadline := time.After(10 * time.Second)
	for {
		for range 1000 {
			h.eng.Events().Publish(engine.Event{Type: "reply", Cliente: "c1", Reason: "hola"})
		}
		select {
		case data, ok := <-lost:
			if !ok || !strings.HasPrefix(data, `data: {"lost":`) {
				t.Fatalf("lost frame %q (stream open: %v)", data, ok)
			}
			return
		case <-deadline:
			t.Fatalf("no lost frame after %d events dropped in all", h.eng.Events().Dropped())
		default:
		}
	}
}
