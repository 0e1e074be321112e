package e2e_test

import (
	"strings"
	"testing"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// The scenario, on the real whatsmeow client against wasim: a
// campaign of 200 envíos, 150 to cold contacts (no chat with the cliente)
// and 50 to warm ones (they wrote to it first), in that mix; the server
// locks the number out of new chats after the 20th cold send. During the
// lock every warm envío still goes out, no cold one does, and no 463 is
// retried; when the lock ends the cold ones resume, and all 200 end
// enviado, each acked once, to its recipient's LID, with the journal
// intact (the rig verifies it on cleanup).
func TestReach_TimelockMidCampaignServesWarmHoldsCold(t *testing.T) {
	r := newRig(t, rigConfig{})
	ctx := ctxT(t)
	sender := senderPhone(1)
	phones := r.recipients(0, 200)
	warm := map[string]bool{}
	mark := r.mark()
	for i, p := range phones {
		if i%4 != 3 {
			continue
		}
		warm[p] = true
		r.sim.SetChat(sender, r.touch(p), true)
		if _, err := r.sim.SendText(ctx, strings.TrimPrefix(p, "+"), r.deviceJID(1), "hola, ¿tienen envíos?"); err != nil {
			t.Fatal(err)
		}
	}
	for n := 0; n < len(warm); {
		_, mark = r.waitEvent("the warm recipients' messages", mark, func(ev engine.Event) bool { return ev.Type == "reply" })
		mark++
		n++
	}
	r.sim.SetReach(sender, wasim.Reach{TimelockAfterColdSends: 20, EnforcementType: "REACHOUT_TIMELOCK"})

	k := r.createCampaign("reach", clienteID(1), phones, fast(3))
	seqOf := map[uint64]string{}
	for _, e := range r.envios(k) {
		seqOf[e.Ref.Seq] = e.Telefono
	}
	start := r.mark()
	if err := r.eng.StartCampaign(ctx, k); err != nil {
		t.Fatal(err)
	}
	// The refused send's 463 and the server's notification race (whatsmeow
	// handles notifications on their own goroutine): the lock opens on the
	// first, and the timelock is recorded as such.
	_, lockAt := r.waitEvent("the reach lock", start, func(ev engine.Event) bool {
		return ev.Type == "reach" && ev.Reach != nil && ev.Reach.Active
	})
	lockEv, _ := r.waitEvent("the server's timelock", lockAt, func(ev engine.Event) bool {
		return ev.Type == "reach" && ev.Reach != nil && ev.Reach.Active && ev.Reach.Source == engine.ReachTimelock
	})
	if l := lockEv.Reach; l.Cliente != clienteID(1) || l.Enforcement != "REACHOUT_TIMELOCK" || !l.Until.After(l.At) {
		t.Errorf("lock %+v, want the server's timelock of %s", l, clienteID(1))
	}
	if _, holds := r.eng.ReachHolding(clienteID(1)); !holds {
		t.Error("the engine does not report the lock")
	}
	// Every warm envío is sent while the lock holds.
	r.waitFor("every warm envío enviado during the lock", func() bool {
		for _, e := range r.envios(k) {
			if warm[e.Telefono] && !e.State.Sent() {
				return false
			}
		}
		return true
	})
	if !r.sim.Timelock(sender).Active {
		t.Fatal("the timelock ended before the warm envíos were done")
	}
	during := r.mark()
	r.sim.SetReach(sender, wasim.Reach{}) // no second lock after 20 more
	if !r.sim.EndTimelock(sender) {
		t.Fatal("no timelock to end")
	}
	r.waitEvent("the end of the reach lock", during, func(ev engine.Event) bool {
		return ev.Type == "reach" && ev.Reach != nil && !ev.Reach.Active
	})
	r.waitStatus(k, engine.Terminada)

	// Inside the lock (from the lock's event to EndTimelock) no cold envío
	// was written ahead, so none was sent or retried.
	coldSent, warmSent := 0, 0
	for _, ev := range r.hist[lockAt:during] {
		if ev.Type != "envio" || ev.Campaign != k || ev.To != engine.Enviando {
			continue
		}
		if warm[seqOf[ev.Envio]] {
			warmSent++
		} else {
			coldSent++
			t.Errorf("cold envío %d (%s) sent inside the lock", ev.Envio, seqOf[ev.Envio])
		}
	}
	if warmSent == 0 {
		t.Error("no warm envío went out during the lock")
	}
	// The server refused what it refused once per id, and no refused id
	// came back before the lock ended.
	tl := r.sim.Timelock(sender)
	refused := 0
	for _, le := range r.ledger(sender) {
		switch {
		case le.Acks463 > 1:
			t.Errorf("id %s refused %d times: a 463 was retried (%+v)", le.ID, le.Acks463, le)
		case le.Acks463 == 1 && (le.Arrivals != 2 || le.Acks != 1):
			t.Errorf("id %s: refused once, then %d arrivals and %d acks; want one resend after the lock", le.ID, le.Arrivals, le.Acks)
		}
		refused += le.Acks463
	}
	if refused == 0 || refused != tl.Refused {
		t.Errorf("%d refusals in the ledger, the lock counted %d", refused, tl.Refused)
	}
	c := r.counts(k)
	if c[engine.Enviado] != 200 {
		t.Errorf("counts %v, want 200 enviado", c)
	}
	if n := r.checkNoLie(k, sender); n != 200 {
		t.Errorf("%d envíos proven sent, want 200", n)
	}
	want := map[string]bool{}
	for _, p := range phones {
		want[p] = true
	}
	r.checkOncePerRecipient(sender, want)
	t.Logf("lock after %d cold sends; %d warm sent inside it, 0 cold; %d refused (463) once each", 20, warmSent, refused)
}
