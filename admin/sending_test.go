package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"leadmaster/engine"
)

// A full data disk, as the operator sees it: GET …/session names the
// pause and its reason, /readyz answers 503, /metrics has the blocked
// gauge and the free bytes, the campaign's stats still answer; once space
// comes back, all of it clears and the campaign is sent.
func TestFullDiskIsVisible(t *testing.T) {
	var mu sync.Mutex
	free := uint64(1 << 20) // below the 8 MiB floor
	h := newHarnessEngine(t, nil, func(c *engine.Config) {
		c.MinFreeBytes = 8 << 20
		c.FreeSpace = func() (uint64, error) { mu.Lock(); defer mu.Unlock(); return free, nil }
	})
	key1, _ := h.setup()
	h.gw.SetReady("c1", true)
	sub, unsub := h.eng.Events().Subscribe(1024)
	defer unsub()
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", key1, nil))
	h.waitSending(sub, engine.SendingPaused, engine.BlockDiskLow)

	var v struct {
		Envios *engine.SendState `json:"envios"`
	}
	h.must(200, h.do("GET", "/api/clientes/c1/session", key1, nil)).json(t, &v)
	if v.Envios == nil || v.Envios.Estado != engine.SendingPaused || v.Envios.Motivo != engine.BlockDiskLow || v.Envios.Detalle == "" {
		t.Fatalf("session envios = %+v, want paused disco_lleno", v.Envios)
	}
	if r := h.do("GET", "/readyz", "", nil); r.Status != 503 {
		t.Fatalf("/readyz = %d %s while the disk is full", r.Status, r.Body)
	}
	m := h.must(200, h.do("GET", "/metrics", adminTok, nil)).Body
	for _, want := range []string{`leadmaster_send_blocked{cliente="c1",reason="disco_lleno"} 1`, "leadmaster_data_disk_free_bytes 1.048576e+06"} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if c, _ := h.db.Counts(context.Background(), "k1"); c[engine.Enviando]+c[engine.Enviado] != 0 || len(h.gw.Acked()) != 0 {
		t.Fatalf("written ahead or sent below the floor: %v", c)
	}

	mu.Lock()
	free = 1 << 30
	mu.Unlock()
	h.eng.NotifyImported("c1") // a poke; the worker also looks again within 5 s of its clock
	for {
		ev := h.nextEvent(sub)
		if ev.Type == "campaign" && ev.Campaign == "k1" && ev.Status == string(engine.Terminada) {
			break
		}
	}
	h.must(200, h.do("GET", "/readyz", "", nil))
	m = h.must(200, h.do("GET", "/metrics", adminTok, nil)).Body
	if bytes.Contains(m, []byte(`leadmaster_send_blocked{cliente="c1"`)) {
		t.Error("metrics still show c1 blocked")
	}
}

// The hourly cap in the campaign's stats: why and until when.
func TestStatsSayWhyACampaignWaits(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	h.gw.SetReady("c1", true)
	if _, err := h.db.UpdateCampaign(context.Background(), "k1", func(c *engine.Campaign) error {
		c.Rate = engine.Rate{MinDelay: time.Millisecond, MaxDelay: time.Millisecond, HourlyCap: 1, DailyCap: 100}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sub, unsub := h.eng.Events().Subscribe(1024)
	defer unsub()
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", key1, nil))
	h.waitSending(sub, engine.SendingPaused, engine.WaitHourlyCap)
	var st struct {
		Espera *engine.CampaignWait `json:"espera"`
	}
	if err := json.Unmarshal(h.must(200, h.do("GET", "/api/clientes/c1/campaigns/k1/stats", key1, nil)).Body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Espera == nil || st.Espera.Motivo != engine.WaitHourlyCap || st.Espera.Hasta.IsZero() {
		t.Fatalf("stats espera = %+v, want the hourly cap and its end", st.Espera)
	}
}

// nextEvent returns the next engine event, driving the fake clock timer by
// timer while none comes (the worker waits on it between sends).
func (h *harness) nextEvent(sub <-chan engine.Event) engine.Event {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-sub:
			return ev
		case <-deadline:
			h.t.Fatal("timed out waiting for an engine event")
			return engine.Event{}
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		h.clock.AdvanceToNext(ctx)
		cancel()
	}
}

func (h *harness) waitSending(sub <-chan engine.Event, estado, motivo string) {
	h.t.Helper()
	for {
		ev := h.nextEvent(sub)
		if ev.Type == "sending" && ev.Sending != nil && ev.Sending.Estado == estado && ev.Sending.Motivo == motivo {
			return
		}
	}
}
