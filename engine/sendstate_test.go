package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
)

// fullDiskStore fails every transition while full is set, as a data file
// on a full disk does.
type fullDiskStore struct {
	*kv.DB
	full atomic.Bool
}

func (s *fullDiskStore) Apply(ctx context.Context, ts ...engine.Transition) error {
	if s.full.Load() {
		return fmt.Errorf("commit: write leadmaster.db: %w", syscall.ENOSPC)
	}
	return s.DB.Apply(ctx, ts...)
}

// sendingIs matches a send-state event.
func sendingIs(estado, motivo string) func(engine.Event) bool {
	return func(ev engine.Event) bool {
		return ev.Type == "sending" && ev.Sending != nil && ev.Sending.Estado == estado && ev.Sending.Motivo == motivo
	}
}

// A data file that cannot be written pauses sending with a named reason
// (and StoreHealthy says so); nothing is sent without its write-ahead; once
// writes succeed again sending resumes by itself and the state clears.
func TestEngine_StoreFailureIsNamedState(t *testing.T) {
	fs := &fullDiskStore{}
	fs.full.Store(true)
	h := newHarnessWrapped(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000}, engine.Config{},
		func(db *kv.DB) engine.Store { fs.DB = db; return fs })
	ctx := context.Background()
	if _, err := h.db.UpdateCampaign(ctx, "k", func(c *engine.Campaign) error { c.Status = engine.Activa; return nil }); err != nil {
		t.Fatal(err)
	}
	h.eng.NotifyImported("c1")
	h.until("the store failure named", sendingIs(engine.SendingPaused, engine.BlockStore))
	if ok, err := h.eng.StoreHealthy(); ok || err == nil {
		t.Errorf("StoreHealthy = %v, %v while the disk is full", ok, err)
	}
	if st := h.eng.SendState("c1"); st.Detalle == "" || st.Hasta.IsZero() {
		t.Errorf("state %+v, want the error and when it is tried again", st)
	}
	if n := len(h.gw.Acked()); n != 0 {
		t.Fatalf("%d sends without a write-ahead record", n)
	}
	fs.full.Store(false)
	h.until("terminada", campaignIs(engine.Terminada))
	if ok, err := h.eng.StoreHealthy(); !ok {
		t.Errorf("StoreHealthy after space came back: %v", err)
	}
	if c := h.counts(); c[engine.Enviado] != 3 {
		t.Errorf("counts %v", c)
	}
	h.checkNoLie()
}

// Below the free-space floor no envío is written ahead: the stall comes
// before a send, by design, and is named; it resumes above the floor.
func TestEngine_DiskFloorHoldsBeforeTheWriteAhead(t *testing.T) {
	var mu sync.Mutex
	free := uint64(1 << 20)
	cfg := engine.Config{MinFreeBytes: 8 << 20, FreeSpace: func() (uint64, error) { mu.Lock(); defer mu.Unlock(); return free, nil }}
	h := newHarness(t, 2, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000}, cfg)
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("disk low", sendingIs(engine.SendingPaused, engine.BlockDiskLow))
	if c := h.counts(); c[engine.Enviando] != 0 || c[engine.Enviado] != 0 || len(h.gw.Acked()) != 0 {
		t.Fatalf("counts %v, acks %d: something was written ahead or sent below the floor", c, len(h.gw.Acked()))
	}
	if ok, _ := h.eng.StoreHealthy(); ok {
		t.Error("StoreHealthy below the floor")
	}
	mu.Lock()
	free = 1 << 30
	mu.Unlock()
	h.until("terminada", campaignIs(engine.Terminada))
}

// The hourly cap holding a campaign back is said, with its end, for the
// cliente and for the campaign.
func TestEngine_CapWaitIsNamed(t *testing.T) {
	h := newHarness(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 2, DailyCap: 1000}, engine.Config{})
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("the hourly cap", sendingIs(engine.SendingPaused, engine.WaitHourlyCap))
	st := h.eng.SendState("c1")
	w, ok := h.eng.CampaignWait("k")
	if !ok || w.Motivo != engine.WaitHourlyCap || !w.Hasta.Equal(st.Hasta) || !st.Hasta.Equal(t0.Add(time.Hour)) {
		t.Fatalf("state %+v, campaign wait %+v (%v), want the hourly cap until %v", st, w, ok, t0.Add(time.Hour))
	}
	h.until("terminada", campaignIs(engine.Terminada))
	h.until("idle after the campaign", sendingIs(engine.SendingIdle, ""))
}
