package wasim_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"leadmaster/wasim"
)

// A slow ack (a fault, or chaos) to a number that is not on WhatsApp is still the 404 error
// ack, late: never a successful ack of a message nobody can read (found by the crash test
// under chaos: envíos to unregistered numbers ended enviado with an undecrypted ledger entry).
// whatsmeow sends only to LIDs now and finds none for an unregistered number, so the case is
// a number that left WhatsApp after the client cached its LID and devices.
func TestFaultSlowAckToUnregistered(t *testing.T) {
	checkLeaks(t)
	sim, tc, me, _ := faultClient(t)
	gone := types.NewJID("15559999998", types.DefaultUserServer)
	seq := sim.LastEvent()
	if _, err := tc.cli.SendMessage(testCtx(t), gone, text("hola"), whatsmeow.SendRequestExtra{ID: "3EB0FA000000000000GONE"}); err != nil {
		t.Fatal(err)
	}
	waitSim(t, sim, seq, wasim.EventClientToken, me.String())
	tc.sync()
	sim.SetRegistered("15559999998", false)
	sim.SetChaos(&wasim.Chaos{Seed: 1, SlowRate: 1, SlowAck: 50 * time.Millisecond})
	defer sim.SetChaos(nil)
	_, err := tc.cli.SendMessage(testCtx(t), gone, text("hola?"), whatsmeow.SendRequestExtra{ID: "3EB0FA000000000000SLOW"})
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) || !strings.HasSuffix(err.Error(), "404") {
		t.Errorf("err = %v, want server error 404", err)
	}
	if e, _ := sim.LedgerEntry(me, "3EB0FA000000000000SLOW"); e.Acks != 0 || e.AckError != 404 || e.Decrypted || !strings.HasSuffix(e.To, "@lid") {
		t.Errorf("ledger = %+v, want 0 acks, ack_error 404, addressed to a LID", e)
	}
	tc.close()
}
