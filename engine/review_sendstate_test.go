package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"leadmaster/engine"
)

// A disk below the floor is looked at again every 5 s; that is no change of
// the send state, and must not publish a "sending" event (and log a line)
// each time: hundreds of clientes on one full disk would flood the SSE
// stream and the log, on the very disk that is full.
func TestReview_DiskLowPublishesOnceNotEveryRecheck(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 20) // below the 32 MiB floor
	h := newHarness(t, 3, engine.Rate{MinDelay: time.Second, MaxDelay: time.Second, HourlyCap: 1000, DailyCap: 1000},
		engine.Config{FreeSpace: func() (uint64, error) { return free.Add(^uint64(0)), nil }}) // the disk keeps filling
	if err := h.eng.StartCampaign(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	h.until("the disk named", sendingIs(engine.SendingPaused, engine.BlockDiskLow))
	start := h.clock.Now()
	for h.clock.Now().Before(start.Add(time.Minute)) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ok := h.clock.AdvanceToNext(ctx)
		cancel()
		if !ok {
			t.Fatal("the worker stopped looking at the disk")
		}
	}
	n := 0
	for drained := false; !drained; {
		select {
		case ev := <-h.events:
			if ev.Type == "sending" {
				n++
			}
		case <-time.After(100 * time.Millisecond):
			drained = true
		}
	}
	if n > 1 {
		t.Errorf("%d sending events in a minute of a full disk, want at most 1", n)
	}
	if st := h.eng.SendState("c1"); st.Motivo != engine.BlockDiskLow || !st.Hasta.After(start) {
		t.Errorf("state %+v: want disco_lleno with the latest recheck time", st)
	}
	if len(h.gw.Acked()) != 0 {
		t.Error("sent below the disk floor")
	}
}
