package e2e_test

import (
	"testing"
	"time"

	"leadmaster/engine"
)

// Ten clientes, each with its own WhatsApp number and campaign, send at
// the same time through one simulator (ten whatsmeow clients, one kv file
// whose writes are group-committed). Every envío the engine calls sent was
// acked by the server and decrypted by its recipient, who read exactly the
// envío's stored text; and conversely no message the server acked went
// undecrypted (a whatsmeow-based peer answered "sent" for messages most of
// which were undecryptable under this kind of load).
func TestSeveralClientes_EveryAckedMessageWasDecrypted(t *testing.T) {
	const clientes = fixtureClientes
	n := 25 // per cliente
	if testing.Short() {
		n = 10
	}
	r := newRig(t, rigConfig{clientes: clientes})
	ids := make([]string, clientes+1)
	for i := 1; i <= clientes; i++ {
		ids[i] = r.createCampaign("multi", clienteID(i), r.recipients(0, n), fast(5))
	}
	for i := 1; i <= clientes; i++ { // start them together: the workers are already waiting
		if err := r.eng.StartCampaign(ctxT(t), ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= clientes; i++ {
		r.waitStatus(ids[i], engine.Terminada)
	}

	want := map[string]bool{}
	for k := 1; k <= n; k++ {
		want[r.recipient(k)] = true
	}
	var firstLast, lastFirst time.Time
	total := 0
	for i := 1; i <= clientes; i++ {
		if c := r.counts(ids[i]); c[engine.Enviado] != uint64(n) || c.Total() != uint64(n) {
			t.Errorf("%s: counts %v, want %d enviado", ids[i], c, n)
		}
		total += r.checkNoLie(ids[i], senderPhone(i)) // sent => acked, decrypted, same text, same phone
		led := r.ledger(senderPhone(i))
		if len(led) != n {
			t.Errorf("cliente %d: the simulator saw %d message ids, want %d", i, len(led), n)
		}
		for _, le := range led {
			if le.Acks > 0 && !le.Decrypted {
				t.Errorf("acked but undecryptable: %+v", le)
			}
			if le.Arrivals != 1 {
				t.Errorf("message %s arrived %d times with no fault injected", le.ID, le.Arrivals)
			}
		}
		r.checkOncePerRecipient(senderPhone(i), want)
		if len(led) > 0 {
			if f := led[0].FirstAt; f.After(lastFirst) {
				lastFirst = f
			}
			if l := led[len(led)-1].FirstAt; firstLast.IsZero() || l.Before(firstLast) {
				firstLast = l
			}
		}
	}
	if total != clientes*n {
		t.Errorf("%d envíos sent, want %d", total, clientes*n)
	}
	// Not asserted (timing): whether every cliente had started before any
	// finished.
	t.Logf("%d messages from %d clientes; concurrent: the last cliente to start began %v before the first to finish ended",
		total, clientes, firstLast.Sub(lastFirst).Round(time.Millisecond))
}
