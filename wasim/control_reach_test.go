package wasim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// TestControlReachAndRetry drives the reach-out and retry controls over HTTP, as a crash
// test or the real binary's tests do against a standalone simulator.
func TestControlReachAndRetry(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	do := func(method, path, body string, want int, out any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(testCtx(t), method, sim.URL()+path, bytes.NewBufferString(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, resp.StatusCode, data, want)
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, data)
			}
		}
	}
	do("POST", "/sim/users", `{"phone":"15550002222","name":"Bob"}`, 200, nil)
	do("POST", "/sim/users", `{"phone":"15550003333","name":"Carol"}`, 200, nil)
	bob, carol := types.NewJID("15550002222", types.DefaultUserServer), types.NewJID("15550003333", types.DefaultUserServer)
	snd := newSender(t, sim, tc)

	// Bob is warm (a chat), Carol cold; one cold send is allowed, then the lock.
	seq := sim.LastEvent()
	do("POST", "/sim/chat", `{"sender":"`+me.User+`","recipient":"15550002222","chat":true}`, 200, nil)
	waitSim(t, sim, seq, wasim.EventNotified, me.String())
	var chat struct{ Chat bool }
	do("GET", "/sim/chat?sender="+me.User+"&recipient=15550002222", "", 200, &chat)
	if !chat.Chat {
		t.Error("GET /sim/chat: no chat after POST")
	}
	do("POST", "/sim/chat", `{"sender":"`+me.User+`"}`, 400, nil)
	do("POST", "/sim/reach", `{"phone":"`+me.User+`","reach":{"timelock_after_cold_sends":1,"enforcement_type":"TEST"}}`, 200, nil)
	do("POST", "/sim/reach", `{"phone":"`+me.User+`","reach":{"timelock_for":-1}}`, 400, nil)

	if _, err := snd.send(carol, "3EB0C7C7000000000000C1"); err != nil {
		t.Fatal(err)
	}
	if _, err := snd.send(carol, "3EB0C7C7000000000000C2"); !is463(err) {
		t.Fatalf("second cold send: %v, want 463", err)
	}
	if n := waitFor[*events.NotifyAccountReachoutTimelock](tc); !n.IsActive || n.EnforcementType != "TEST" {
		t.Errorf("client got %+v", n)
	}
	var tl wasim.Timelock
	do("GET", "/sim/timelock?phone="+me.User, "", 200, &tl)
	if !tl.Active || tl.Refused != 1 || !tl.Ends.IsZero() {
		t.Errorf("GET /sim/timelock = %+v, want active until ended, 1 refused", tl)
	}
	if _, err := snd.send(bob, "3EB0C7C7000000000000B1"); err != nil {
		t.Errorf("warm send in the lock: %v", err)
	}
	var acks map[string]int
	do("GET", "/sim/acks463", "", 200, &acks)
	if acks[carol.String()] != 1 {
		t.Errorf("GET /sim/acks463 = %v", acks)
	}
	var ledger []wasim.LedgerEntry
	do("GET", "/sim/ledger", "", 200, &ledger)
	byID := map[string]wasim.LedgerEntry{}
	for _, e := range ledger {
		byID[e.ID] = e
	}
	if e := byID["3EB0C7C7000000000000C2"]; e.Acks463 != 1 || e.Refusal != "timelock" || e.Decrypted || e.Addressing != "lid" || e.PN != carol.String() {
		t.Errorf("ledger C2 over HTTP = %+v", e)
	}
	if e := byID["3EB0C7C7000000000000B1"]; !e.Warm || e.Token != "tctoken" || !e.TokenValid {
		t.Errorf("ledger B1 over HTTP = %+v", e)
	}
	waitNotified(t, sim, seq, me, "mex")

	seq = sim.LastEvent()
	var ended struct{ Ended bool }
	do("POST", "/sim/timelock/end", `{"phone":"`+me.User+`"}`, 200, &ended)
	if !ended.Ended {
		t.Error("POST /sim/timelock/end: not ended")
	}
	if n := waitFor[*events.NotifyAccountReachoutTimelock](tc); n.IsActive {
		t.Errorf("client got %+v, want inactive", n)
	}
	waitNotified(t, sim, seq, me, "mex")
	do("POST", "/sim/timelock/end", `{"phone":"`+me.User+`"}`, 200, &ended)
	if ended.Ended {
		t.Error("a second end reports a lock")
	}

	// A retry receipt and the resend; a phone that lost its sessions asks with keys.
	do("POST", "/sim/forget-sessions", `{"phone":"15550002222"}`, 200, nil)
	seq = sim.LastEvent()
	do("POST", "/sim/retry", `{"recipient":"15550002222","sender":"`+me.String()+`","id":"3EB0C7C7000000000000B1"}`, 200, nil)
	waitSim(t, sim, seq, wasim.EventRetryResent, me.String())
	do("GET", "/sim/ledger", "", 200, &ledger)
	for _, e := range ledger {
		if e.ID == "3EB0C7C7000000000000B1" && (e.Resends != 1 || !e.ResendDecrypted) {
			t.Errorf("ledger after the resend = %+v", e)
		}
	}
	do("POST", "/sim/retry", `{"recipient":"15550002222","sender":"`+me.String()+`","id":"3EB0NOSUCHMESSAGE"}`, 404, nil)
	do("POST", "/sim/retry", `{"recipient":"15550002222"}`, 400, nil)

	var delivered map[string]int
	do("GET", "/sim/delivered", "", 200, &delivered)
	if delivered[bob.String()] != 1 || delivered[carol.String()] != 1 {
		t.Errorf("GET /sim/delivered = %v", delivered)
	}
	var salt struct{ Salt []byte }
	do("GET", "/sim/nct-salt?phone="+me.User, "", 200, &salt)
	if !bytes.Equal(salt.Salt, sim.NCTSalt(me.User)) || len(salt.Salt) != 32 {
		t.Errorf("GET /sim/nct-salt = %x", salt.Salt)
	}
	tc.sync()
	tc.close()
	tc.assertCleanLog()
}

// waitNotified waits until the client acked a notification of type typ (privacy_token, mex)
// sent after seq.
func waitNotified(t *testing.T, sim *wasim.Server, seq uint64, dev types.JID, typ string) {
	t.Helper()
	if _, err := sim.WaitEvent(testCtx(t), seq, func(e wasim.Event) bool {
		return e.Kind == wasim.EventNotified && e.JID == dev.String() && strings.HasPrefix(e.Detail, typ+" ")
	}); err != nil {
		t.Fatalf("no %s notification acked by %s: %v", typ, dev, err)
	}
}
