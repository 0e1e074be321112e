package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/engine/enginetest"
)

// A reach lock and its end reach the cliente's webhook, as journal records
// of kind reach with the lock's end.
func TestWebhookGetsReachLock(t *testing.T) {
	wc := enginetest.NewClock(t0)
	rc := &receiver{t: t, secret: "0123456789abcdef-secret", seen: map[string]int{}, notify: make(chan struct{}, 1)}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	h := newHarness(t, func(o *admin.Options) {
		o.Outbox = o.Data.(admin.Outbox)
		o.WebhookClient, o.WebhookClock = client, wc
		o.WebhookBackoffBase, o.WebhookBackoffMax = time.Second, 10*time.Second
	})
	key1, _ := h.setup()
	h.must(200, h.do("PUT", "/api/clientes/c1/webhook", key1, map[string]string{"url": hs.URL + "/hook", "secret": rc.secret}))
	until := t0.Add(2 * time.Hour)
	h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: true, Until: until, Enforcement: "REACHOUT_TIMELOCK"})
	h.eng.ReachChanged(engine.ReachNotice{Cliente: "c1", Active: false})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var reach []admin.WebhookPayload
	for len(reach) < 2 {
		select {
		case <-rc.notify:
		case <-ctx.Done():
			t.Fatalf("timed out: reach events delivered %+v", reach)
		}
		rc.mu.Lock()
		reach = reach[:0]
		for _, p := range rc.got {
			if p.Kind == string(engine.KindReach) {
				reach = append(reach, p)
			}
		}
		rc.mu.Unlock()
	}
	if e := reach[0].Entry; e.Event != engine.EventReachLocked || !e.Until.Equal(until) || e.Cliente != "c1" || e.Reason != "timelock:REACHOUT_TIMELOCK" {
		t.Errorf("first reach event %+v, want the lock until %v", e, until)
	}
	if e := reach[1].Entry; e.Event != engine.EventReachUnlocked {
		t.Errorf("second reach event %+v, want its end", e)
	}
}
