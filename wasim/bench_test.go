package wasim_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// BenchmarkConnectLogin measures Connect() of a stored (paired) device until events.Connected:
// websocket + Noise handshake, <success>, prekey count, passive IQ.
func BenchmarkConnectLogin(b *testing.B) {
	sim := startSim(b, wasim.Options{})
	tc := newTestClient(b, sim, filepath.Join(b.TempDir(), "client.db"))
	pairByQR(b, sim, tc, "15550001111")
	tc.cli.Disconnect()
	b.ResetTimer()
	for range b.N {
		if err := tc.cli.Connect(); err != nil {
			b.Fatal(err)
		}
		waitFor[*events.Connected](tc)
		b.StopTimer()
		seq := sim.LastEvent()
		tc.cli.Disconnect()
		// Let the server see the close before the next login (else it is a "replaced").
		waitSim(b, sim, seq, wasim.EventConnClosed, "")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkPairQR measures a whole QR pairing of a new device: Connect, pair-device, ScanQR
// (ADV signatures, pair-success, pair-device-sign), 515, login, prekey upload (the client
// generating and storing 812 prekeys in its SQLite store dominates), until events.Connected.
func BenchmarkPairQR(b *testing.B) {
	sim := startSim(b, wasim.Options{})
	tc := newTestClient(b, sim, filepath.Join(b.TempDir(), "client.db"))
	ctx := context.Background()
	var scan time.Duration
	b.ResetTimer()
	for i := range b.N {
		dev := tc.container.NewDevice()
		cli := whatsmeow.NewClient(dev, tc.log)
		sim.Configure(cli)
		cli.AddEventHandler(tc.record)
		tc.cli = cli
		qrs, err := cli.GetQRChannel(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := cli.Connect(); err != nil {
			b.Fatal(err)
		}
		item := <-qrs
		start := time.Now()
		if _, err := sim.ScanQR(ctx, item.Code, phoneN(i)); err != nil {
			b.Fatal(err)
		}
		scan += time.Since(start)
		waitFor[*events.Connected](tc)
		cli.Disconnect()
		for range qrs {
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairings/s")
	b.ReportMetric(float64(scan.Microseconds())/float64(b.N)/1000, "ms-scan/op")
}

func phoneN(i int) string { return strconv.Itoa(15559000000 + i) }

// BenchmarkSend measures acked sends on one session: SendMessage to one simulated recipient,
// which decrypts every message (and the sender's phone its copy), until the ack.
func BenchmarkSend(b *testing.B) {
	sim := fixtureSim(b, wasim.Options{})
	tc := fixtureClient(b, sim, 0)
	bob := sim.AddUser("15550002222", "Bob")
	ctx := context.Background()
	if _, err := tc.cli.SendMessage(ctx, bob, text("warm-up")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := tc.cli.SendMessage(ctx, bob, text("mensaje "+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	b.StopTimer()
	checkLedger(b, sim, b.N+1)
}

// BenchmarkSend10Sessions measures acked sends from 10 sessions (10 accounts, 10 client
// stores) at once, each sending sequentially to its own recipient.
func BenchmarkSend10Sessions(b *testing.B) {
	const sessions = 10
	sim := startSim(b, wasim.Options{})
	ctx := context.Background()
	var tcs []*testClient
	var recipients []types.JID
	for i := range sessions {
		tc := newTestClient(b, sim, filepath.Join(b.TempDir(), "client"+strconv.Itoa(i)+".db"))
		pairByQR(b, sim, tc, phoneN(i))
		to := sim.AddUser(phoneN(100+i), "")
		if _, err := tc.cli.SendMessage(ctx, to, text("warm-up")); err != nil {
			b.Fatal(err)
		}
		tcs, recipients = append(tcs, tc), append(recipients, to)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i, tc := range tcs {
		n := b.N / sessions
		if i < b.N%sessions {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				if _, err := tc.cli.SendMessage(ctx, recipients[i], text("mensaje "+strconv.Itoa(j))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	checkLedger(b, sim, b.N+sessions)
}

// checkLedger fails unless the ledger holds n acked, decrypted messages.
func checkLedger(b *testing.B, sim *wasim.Server, n int) {
	l := sim.Ledger()
	if len(l) != n {
		b.Fatalf("ledger has %d entries, want %d", len(l), n)
	}
	for _, e := range l {
		if !e.Decrypted || e.Acks != 1 {
			b.Fatalf("ledger entry %+v", e)
		}
	}
}
