package wasim_test

import (
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// pairByQR connects a fresh client, scans its first QR code as the phone of phone and waits
// until the client is paired and logged in. It returns the device JID.
func pairByQR(t testing.TB, sim *wasim.Server, tc *testClient, phone string) types.JID {
	t.Helper()
	ctx := testCtx(t)
	qrs, err := tc.cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	qr := waitFor[*events.QR](tc)
	if len(qr.Codes) != 6 {
		t.Errorf("events.QR has %d codes, want 6", len(qr.Codes))
	}
	item := <-qrs
	if item.Event != whatsmeow.QRChannelEventCode || item.Code != qr.Codes[0] {
		t.Fatalf("QR channel gave %+v, want the first code of events.QR", item)
	}
	jid, err := sim.ScanQR(ctx, item.Code, phone)
	if err != nil {
		t.Fatalf("ScanQR: %v", err)
	}
	ps := waitFor[*events.PairSuccess](tc)
	if ps.ID != jid {
		t.Errorf("PairSuccess.ID = %s, want %s", ps.ID, jid)
	}
	if got := <-qrs; got != whatsmeow.QRChannelSuccess {
		t.Errorf("QR channel after pairing = %+v, want success", got)
	}
	waitFor[*events.Connected](tc)
	if got := tc.cli.Store.ID; got == nil || *got != jid {
		t.Fatalf("client store ID = %v, want %s", got, jid)
	}
	if !tc.cli.IsLoggedIn() {
		t.Fatal("client not logged in after events.Connected")
	}
	return jid
}

func TestPairQR(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t, wasim.Options{})
	tc := newTestClient(t, sim, filepath.Join(t.TempDir(), "client.db"))
	seq := sim.LastEvent()

	jid := pairByQR(t, sim, tc, "+1 555 000 1111")

	if jid.User != "15550001111" || jid.Device == 0 {
		t.Errorf("device JID = %s, want 15550001111:<n>", jid)
	}
	// The simulator saw the whole sequence, in order.
	for _, k := range []wasim.EventKind{wasim.EventQRRefs, wasim.EventPaired, wasim.EventStreamError, wasim.EventLoggedIn, wasim.EventPreKeys} {
		seq = waitSim(t, sim, seq, k, "").Seq
	}
	if lid := tc.cli.Store.LID; lid.Server != types.HiddenUserServer || lid.Device != jid.Device {
		t.Errorf("client LID = %s, want a @lid JID with device %d", lid, jid.Device)
	}
	accs := sim.Accounts()
	if len(accs) != 1 || len(accs[0].Devices) != 1 || !accs[0].Devices[0].LoggedIn || accs[0].Devices[0].PreKeys < 5 {
		t.Errorf("accounts = %+v, want one logged-in device with its prekeys", accs)
	}
	tc.close()
	// The client closes the registration socket itself after 515: not even the read error.
	tc.assertCleanLog()
}

func TestPairPhoneCode(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t, wasim.Options{})
	tc := newTestClient(t, sim, filepath.Join(t.TempDir(), "client.db"))
	ctx := testCtx(t)
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.QR](tc) // the connection is ready for PairPhone
	code, err := tc.cli.PairPhone(ctx, "+1 555 000 2222", true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatalf("PairPhone: %v", err)
	}
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("pairing code %q, want XXXX-XXXX", code)
	}
	jid, err := sim.EnterPairCode(ctx, "15550002222", code)
	if err != nil {
		t.Fatalf("EnterPairCode: %v", err)
	}
	if ps := waitFor[*events.PairSuccess](tc); ps.ID != jid {
		t.Errorf("PairSuccess.ID = %s, want %s", ps.ID, jid)
	}
	waitFor[*events.Connected](tc)
	if tc.cli.Store.ID == nil || *tc.cli.Store.ID != jid {
		t.Fatalf("client store ID = %v, want %s", tc.cli.Store.ID, jid)
	}
	if e := sim.Events(0); !hasEvent(e, wasim.EventPaired, "code") {
		t.Errorf("no paired-by-code event in %v", e)
	}
	tc.close()
	tc.assertCleanLog()
}

func TestPairPhoneCodeWrong(t *testing.T) {
	checkLeaks(t)
	sim := startSim(t, wasim.Options{})
	tc := newTestClient(t, sim, filepath.Join(t.TempDir(), "client.db"))
	ctx := testCtx(t)
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.QR](tc)
	code, err := tc.cli.PairPhone(ctx, "15550003333", true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "ZZZZ-ZZZZ"
	if code == wrong {
		wrong = "YYYY-YYYY"
	}
	if _, err := sim.EnterPairCode(ctx, "15550003333", wrong); err != wasim.ErrWrongPairCode {
		t.Fatalf("EnterPairCode with a wrong code: err = %v, want ErrWrongPairCode", err)
	}
	tc.log.waitLine("Failed to handle code pair notification")
	if tc.cli.Store.ID != nil {
		t.Errorf("client paired with a wrong code: %v", tc.cli.Store.ID)
	}
	tc.close()
	// The client reports the refused companion_finish; nothing else.
	tc.assertCleanLog("Failed to handle code pair notification")
}

func hasEvent(evs []wasim.Event, k wasim.EventKind, detail string) bool {
	for _, e := range evs {
		if e.Kind == k && (detail == "" || e.Detail == detail) {
			return true
		}
	}
	return false
}
