package wasim_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
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
