package wa_test

import (
	"testing"

	"go.mau.fi/whatsmeow"
	"go.uber.org/goleak"

	"leadmaster/engine"
	"leadmaster/engine/wa"
	"leadmaster/wasim"
)

// A recipient asks for a message again ("waiting for this message") after
// the process that sent it restarted: the new whatsmeow client has no
// recent-message cache, so only the device store's retry buffer (bbolt,
// kv/devicestore) can answer, with the same id and text, re-encrypted.
// Without the retry store (the old store could not keep outgoing messages)
// the same receipt goes unanswered: the control case shows the test fails
// where the feature is missing.
func TestRetryReceiptAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryStore bool
	}{{"RetryStore", true}, {"WithoutRetryStore", false}} {
		t.Run(tc.name, func(t *testing.T) {
			// The recipient's receipts can reach a client that is closing:
			// whatsmeow's frame reader then blocks for good on the frame
			// (the leak TestStreamReplaced tolerates, doc.go Caveats). Only
			// that goroutine is tolerated; any other leak still fails.
			checkLeaks(t, goleak.IgnoreTopFunction("go.mau.fi/whatsmeow/socket.(*FrameSocket).frameComplete"))
			sim := startSim(t)
			e := newEnv(t, sim, t.TempDir())
			mustCliente(t, e.db, "c1")
			jid := mustJID(t, e.pair("c1", "15550001111"))
			const bob, id, text = "15550002222", "3EB0AABBCCDDEEFF0011", "hola Bob, tu pedido salió"
			sim.AddUser(bob, "Bob")
			ctx := ctxT(t)
			if _, err := e.m.Send(ctx, "c1", engine.Outgoing{To: "+" + bob, MsgID: id, Text: text}); err != nil {
				t.Fatal(err)
			}
			e.stop() // the sending process is gone, and its memory with it
			if !tc.retryStore {
				e.tune = func(o *wa.Options) {
					sim := o.Configure
					o.Configure = func(c *whatsmeow.Client) { sim(c); c.UseRetryMessageStore = false }
				}
			}
			e.open()
			if err := e.m.StartAll(ctx); err != nil {
				t.Fatal(err)
			}
			e.ev.until("c1", engine.SessionReady)
			after := sim.LastEvent()
			// Returns once the client acked the receipt, which whatsmeow
			// does only after handling it (resend or not).
			if err := sim.RequestRetry(ctx, bob, jid, id); err != nil {
				t.Fatal(err)
			}
			if tc.retryStore {
				e.waitSim(after, wasim.EventRetryResent, jid.String())
			}
			le, ok := sim.LedgerEntry(jid, id)
			switch {
			case !ok:
				t.Fatalf("no ledger entry for %s", id)
			case le.RetryRequests != 1:
				t.Fatalf("ledger %+v, want one retry request", le)
			case tc.retryStore && (le.Resends != 1 || !le.ResendDecrypted || le.ResendText != text):
				t.Fatalf("ledger %+v, want the same id resent once after the restart, decrypted to %q", le, text)
			case !tc.retryStore && le.Resends != 0:
				t.Fatalf("ledger %+v: resent without a retry store?", le)
			}
		})
	}
}
