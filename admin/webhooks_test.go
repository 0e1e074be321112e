package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/engine/enginetest"
)

// receiver is a webhook endpoint that fails its first failN requests.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	failN  int
	calls  int
	got    []admin.WebhookPayload
	seen   map[string]int // delivery -> times acknowledged
	notify chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(admin.HeaderTimestamp)
	if r.Header.Get(admin.HeaderSignature) != admin.Sign(rc.secret, ts, body) {
		rc.t.Errorf("bad signature on %s", body)
		w.WriteHeader(400)
		return
	}
	rc.mu.Lock()
	rc.calls++
	fail := rc.calls <= rc.failN
	if !fail {
		var p admin.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			rc.t.Errorf("payload %s: %v", body, err)
		}
		if p.Delivery != r.Header.Get(admin.HeaderDelivery) {
			rc.t.Errorf("delivery header %q, body %q", r.Header.Get(admin.HeaderDelivery), p.Delivery)
		}
		rc.seen[p.Delivery]++
		if rc.seen[p.Delivery] == 1 {
			rc.got = append(rc.got, p)
		}
	}
	rc.mu.Unlock()
	select {
	case rc.notify <- struct{}{}:
	default:
	}
	if fail {
		w.WriteHeader(503)
		return
	}
	w.WriteHeader(204)
}

func (rc *receiver) state() (calls, got int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.calls, len(rc.got)
}

// TestWebhooks: a receiver that fails its first three requests still gets
// every event of its cliente (and none of another's) once it recovers,
// in journal order, signed, each acknowledged once, although the server
// was restarted between the failures.
func TestWebhooks(t *testing.T) {
	wc := enginetest.NewClock(t0)
	rc := &receiver{t: t, secret: "0123456789abcdef-secret", failN: 3, seen: map[string]int{}, notify: make(chan struct{}, 1)}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	withWebhooks := func(o *admin.Options) {
		o.Outbox = o.Data.(admin.Outbox)
		o.WebhookClient, o.WebhookClock = client, wc
		o.WebhookBackoffBase, o.WebhookBackoffMax = time.Second, 10*time.Second
	}
	h := newHarness(t, withWebhooks)
	key1, _ := h.setup()
	h.must(400, h.do("PUT", "/api/clientes/c1/webhook", key1, map[string]string{"url": "ftp://x"}))
	h.must(200, h.do("PUT", "/api/clientes/c1/webhook", key1, map[string]string{"url": hs.URL + "/hook", "secret": rc.secret}))
	var wh map[string]string
	h.must(200, h.do("GET", "/api/clientes/c1/webhook", key1, nil)).json(t, &wh)
	if wh["url"] != hs.URL+"/hook" || wh["secret"] != "" {
		t.Fatalf("webhook view: %v", wh)
	}
	// Events of c1 (a cancellation: campaign + 3 transitions, and a reply)
	// and of c2 (which must not reach c1's receiver).
	h.must(200, h.do("POST", "/api/clientes/c2/campaigns/k2/cancel", adminTok, nil))
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/cancel", key1, nil))
	h.eng.Reply(engine.Reply{Cliente: "c1", From: "+5491123456701", Text: "gracias", At: t0})
	const want = 5

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// until drives the webhook clock (retry timers) until cond holds.
	until := func(cond func() bool) {
		for !cond() {
			if ctx.Err() != nil {
				calls, got := rc.state()
				t.Fatalf("timed out: %d calls, %d delivered", calls, got)
			}
			select {
			case <-rc.notify:
				continue
			default:
			}
			c, stop := context.WithTimeout(ctx, 20*time.Millisecond)
			wc.AdvanceToNext(c)
			stop()
		}
	}
	until(func() bool { calls, _ := rc.state(); return calls >= 2 }) // two failures, the second after a backoff
	// Restart the admin server: the queue is in kv, nothing is lost.
	h.srv.Close()
	opts := admin.Options{Engine: h.eng, Data: h.db, Sessions: h.sess, Logger: slog.New(slog.DiscardHandler), AdminToken: adminTok}
	withWebhooks(&opts)
	srv, err := admin.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	until(func() bool { _, got := rc.state(); return got >= want })

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != want {
		t.Fatalf("got %d events, want %d: %+v", len(rc.got), want, rc.got)
	}
	var last uint64
	kinds := map[string]int{}
	for _, p := range rc.got {
		if p.Cliente != "c1" || p.Entry.Cliente != "c1" || p.Entry.Campaign == "k2" {
			t.Errorf("c1's receiver got %+v", p)
		}
		kinds[p.Kind]++
		if p.Kind == "reply" {
			continue
		}
		if p.Entry.Seq <= last {
			t.Errorf("out of order: seq %d after %d", p.Entry.Seq, last)
		}
		last = p.Entry.Seq
	}
	if kinds["transition"] != 3 || kinds["campaign"] != 1 || kinds["reply"] != 1 {
		t.Errorf("kinds: %v", kinds)
	}
	for d, n := range rc.seen {
		if n != 1 {
			t.Errorf("delivery %s acknowledged %d times", d, n)
		}
	}
	if d := h.eng.Events().Dropped(); d != 0 {
		t.Errorf("the dispatcher made the broker drop %d events", d)
	}
	if rc.calls != want+3 {
		t.Errorf("%d requests, want %d (3 failures)", rc.calls, want+3)
	}
}
