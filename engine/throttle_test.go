package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv/kvtest"
)

// throttleHooks is the template's hooks with a throttle decided by fn.
type throttleHooks struct {
	engine.TemplateHooks
	fn func(c engine.Campaign) engine.ThrottleDecision
}

func (h throttleHooks) Throttle(_ context.Context, c engine.Campaign, _ engine.ThrottleStats) (engine.ThrottleDecision, error) {
	return h.fn(c), nil
}

// A throttle hook does what ThrottleDecision's doc says: pause_until holds
// its campaign only (the cliente's other campaign goes on meanwhile), skip
// leaves the envío pendiente and sends it after the usual delay (never
// omitido), and delay makes the number wait.
func TestEngine_ThrottleDecisionsDoWhatTheySay(t *testing.T) {
	var mu sync.Mutex
	skipped := false
	pauseEnd := t0.Add(time.Hour)
	cfg := engine.Config{HooksFor: func(c engine.Campaign) (engine.Hooks, error) {
		return throttleHooks{fn: func(c engine.Campaign) engine.ThrottleDecision {
			mu.Lock()
			defer mu.Unlock()
			switch c.ID {
			case "k": // paused for an hour
				return engine.ThrottleDecision{PauseUntil: pauseEnd}
			case "k2": // its first envío skipped once
				if !skipped {
					skipped = true
					return engine.ThrottleDecision{Skip: true}
				}
			}
			return engine.ThrottleDecision{}
		}}, nil
	}}
	h := newHarness(t, 2, engine.Rate{MinDelay: time.Minute, MaxDelay: time.Minute, HourlyCap: 1000, DailyCap: 1000}, cfg)
	ctx := context.Background()
	kvtest.MustCampaign(t, h.db, "k2", 2)
	if _, err := h.db.UpdateCampaign(ctx, "k2", func(c *engine.Campaign) error {
		c.Rate = engine.Rate{MinDelay: time.Minute, MaxDelay: time.Minute, HourlyCap: 1000, DailyCap: 1000}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// k2 first: the worker sees it active before any timer of k's pause is
	// pending (the harness moves the fake clock to the next pending timer).
	for _, id := range []string{"k2", "k"} {
		if err := h.eng.StartCampaign(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	done := 0
	h.until("both campaigns terminada", func(ev engine.Event) bool {
		if ev.Type == "campaign" && ev.Status == string(engine.Terminada) {
			done++
		}
		return done == 2
	})
	var k, k2 []time.Time
	for _, s := range h.gw.Acked() {
		env, err := h.db.EnvioByMsgID(ctx, s.MsgID)
		if err != nil {
			t.Fatal(err)
		}
		if env.Ref.Campaign == "k" {
			k = append(k, s.At)
		} else {
			k2 = append(k2, s.At)
		}
	}
	if len(k) != 2 || len(k2) != 2 {
		t.Fatalf("acks: k %v, k2 %v", k, k2)
	}
	for _, at := range k {
		if at.Before(pauseEnd) {
			t.Errorf("campaign k sent at %v, inside its pause until %v", at, pauseEnd)
		}
	}
	for _, at := range k2 {
		if !at.Before(pauseEnd) {
			t.Errorf("campaign k2 sent at %v: k's pause held it too", at)
		}
	}
	// The skipped envío went out after the usual delay, not at once and not omitido.
	if k2[0].Before(t0.Add(time.Minute)) {
		t.Errorf("k2's first send at %v: the skip did not wait the usual minute", k2[0])
	}
	if c, _ := h.db.Counts(ctx, "k2"); c[engine.Omitido] != 0 || c[engine.Enviado] != 2 {
		t.Errorf("k2 counts %v: a throttle skip must not omit", c)
	}
}
