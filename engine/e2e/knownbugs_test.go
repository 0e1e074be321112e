package e2e_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// engine/wa documents that a Send whose connection drops is "abandoned at
// once" (ErrSessionDown). It is not when whatsmeow saw the drop first:
// SendMessage then sits in retryFrame's WaitForConnection(5 s), which does
// not watch the context, so neither the closed gate nor the engine's
// SendTimeout ends it before 5 s (the seed test's in-flight envío comes
// back ~5 s after the DISCONNECTED event). Outcomes stay correct (the
// envío goes back to pendiente with its id); the worker is blocked. Known,
// not fixed here (engine/wa is not this package's): run with
// E2E_KNOWN_BUGS=1.
func TestKnownBug_WaSendNotAbandonedAtOnceOnDrop(t *testing.T) {
	if os.Getenv("E2E_KNOWN_BUGS") == "" {
		t.Skip("known bug in engine/wa (see the comment); E2E_KNOWN_BUGS=1 runs it")
	}
	r := newRig(t, rigConfig{})
	mark := r.mark()
	r.sim.RefuseConnections(time.Hour)
	r.sim.SetFaults(senderPhone(1), wasim.Faults{DropBeforeAck: 1 << 30})
	seq := r.sim.LastEvent()
	type result struct {
		err error
		at  time.Time
	}
	res := make(chan result, 1)
	go func() {
		_, err := r.mgr.Send(context.Background(), "c01", engine.Outgoing{To: r.recipient(1), MsgID: "3EB0E2E0000000000001", Text: "hola"})
		res <- result{err, time.Now()}
	}()
	closed, err := r.sim.WaitEvent(ctxT(t), seq, wasim.Is(wasim.EventConnClosed, ""))
	if err != nil {
		t.Fatal(err)
	}
	got := <-res
	if !errors.Is(got.err, engine.ErrSessionDown) {
		t.Errorf("Send: %v, want ErrSessionDown", got.err)
	}
	if d := got.at.Sub(closed.Time); d > time.Second {
		t.Errorf("Send returned %v after the connection dropped, want at once", d.Round(time.Millisecond))
	}
	r.sim.RefuseConnections(0)
	r.waitSession("c01", engine.SessionReady, mark)
}
