package wasim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// The control routes a crash test in another process needs: the ledger, faults, chaos,
// recipients' behaviour and registration.
func TestControlLedgerFaultsBehavior(t *testing.T) {
	checkLeaks(t)
	sim, tc, me := pairedClient(t, wasim.Options{})
	bob := sim.AddUser("15550002222", "Bob")
	ctx := testCtx(t)
	post := func(path, body string, want int) {
		t.Helper()
		resp, err := http.Post(sim.URL()+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s %s: %d, want %d", path, body, resp.StatusCode, want)
		}
	}
	ledger := func() map[string]wasim.LedgerEntry {
		t.Helper()
		resp, err := http.Get(sim.URL() + "/sim/ledger")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var es []wasim.LedgerEntry
		if err := json.NewDecoder(resp.Body).Decode(&es); err != nil {
			t.Fatal(err)
		}
		out := map[string]wasim.LedgerEntry{}
		for _, e := range es {
			out[e.ID] = e
		}
		return out
	}
	send := func(id, body string) error {
		_, err := tc.cli.SendMessage(ctx, bob, text(body), whatsmeow.SendRequestExtra{ID: types.MessageID(id)})
		return err
	}

	t.Run("FaultsAckError", func(t *testing.T) {
		post("/sim/faults", `{"phone":"`+me.User+`","faults":{"ack_error":479}}`, 200)
		if err := send("3EB0C0C0C0C0C0C0C0C001", "uno"); !errors.Is(err, whatsmeow.ErrServerReturnedError) {
			t.Fatalf("send with ack_error 479: %v", err)
		}
		post("/sim/faults", `{"phone":"`+me.User+`","faults":{}}`, 200)
		if e := ledger()["3EB0C0C0C0C0C0C0C0C001"]; e.AckError != 479 || e.Acks != 0 || !e.Decrypted || e.Text != "uno" {
			t.Errorf("ledger entry = %+v", e)
		}
	})
	t.Run("Chaos", func(t *testing.T) {
		post("/sim/chaos", `{"seed":7,"error_rate":1,"error_code":463}`, 200)
		if err := send("3EB0C0C0C0C0C0C0C0C002", "dos"); !errors.Is(err, whatsmeow.ErrServerReturnedError) {
			t.Fatalf("send under chaos error_rate 1: %v", err)
		}
		post("/sim/chaos", `null`, 200)
		if err := send("3EB0C0C0C0C0C0C0C0C002", "dos"); err != nil {
			t.Fatalf("send after chaos off: %v", err)
		}
		if e := ledger()["3EB0C0C0C0C0C0C0C0C002"]; e.Arrivals != 2 || e.Acks != 1 || len(e.Faults) != 2 || e.Faults[0] != "error:463" || e.Faults[1] != "" {
			t.Errorf("ledger entry = %+v", e)
		}
		post("/sim/chaos", `{"drop_rate":0.6,"error_rate":0.6}`, 400)
	})
	t.Run("Behavior", func(t *testing.T) {
		post("/sim/behavior", `{"phone":"15550002222","behavior":{"deliver":true,"read":true}}`, 200)
		if err := send("3EB0C0C0C0C0C0C0C0C003", "tres"); err != nil {
			t.Fatal(err)
		}
		for _, want := range []types.ReceiptType{types.ReceiptTypeDelivered, types.ReceiptTypeRead} {
			if r := waitFor[*events.Receipt](tc); r.Type != want || len(r.MessageIDs) != 1 || r.MessageIDs[0] != "3EB0C0C0C0C0C0C0C0C003" {
				t.Errorf("receipt = %+v, want %q", r, want)
			}
		}
		waitReceiptAcked(t, sim, "3EB0C0C0C0C0C0C0C0C003", "read")
		if e := ledger()["3EB0C0C0C0C0C0C0C0C003"]; e.DeliveredAt == nil || e.ReadAt == nil {
			t.Errorf("ledger entry without receipts: %+v", e)
		}
	})
	t.Run("Registered", func(t *testing.T) {
		post("/sim/registered", `{"phone":"+1 555 999 0000","registered":false}`, 200)
		post("/sim/registered", `{"phone":"15559990000"}`, 400)
		res, err := tc.cli.IsOnWhatsApp(ctx, []string{"+15559990000"})
		if err != nil || len(res) != 1 || res[0].IsIn {
			t.Errorf("IsOnWhatsApp = %+v, %v", res, err)
		}
	})
	tc.close()
}
