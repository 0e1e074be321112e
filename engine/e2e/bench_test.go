package e2e_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv"
)

// benchRate lets a worker send back to back: no delay worth the name, caps
// out of reach.
var benchRate = engine.Rate{MinDelay: time.Nanosecond, MaxDelay: time.Nanosecond, HourlyCap: 1 << 30, DailyCap: 1 << 30, MaxAttempts: 5}

// engineRun sends total envíos, spread over clientes (one worker each),
// through the in-memory gateway on a fresh kv file in dir and returns the
// confirmed sends per second: from starting the campaigns to every one
// terminada, each send being pendiente -> enviando (write-ahead, fsynced)
// -> gateway ack -> enviado (fsynced).
func engineRun(tb testing.TB, dir string, opts kv.Options, clientes, total int) float64 {
	tb.Helper()
	ctx := context.Background()
	db, err := kv.Open(dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	per := total / clientes
	gw := enginetest.NewGateway(engine.SystemClock{})
	ids := make([]string, clientes)
	for i := range clientes {
		c := fmt.Sprintf("b%03d", i)
		if err := db.CreateCliente(ctx, engine.Cliente{ID: c, Name: c, DefaultRegion: "US"}); err != nil {
			tb.Fatal(err)
		}
		ids[i] = "k" + c
		if err := db.CreateCampaign(ctx, engine.Campaign{ID: ids[i], Cliente: c, Name: c, Template: "Hola {{nombre}}", Rate: benchRate}); err != nil {
			tb.Fatal(err)
		}
		imp, err := db.BeginImport(ctx, ids[i])
		if err != nil {
			tb.Fatal(err)
		}
		for n := range per {
			if err := imp.Add(ctx, kv.NewEnvio{Line: n + 2, Telefono: fmt.Sprintf("+1556%03d%04d", i, n), Nombre: "N"}); err != nil {
				tb.Fatal(err)
			}
		}
		if _, err := imp.Commit(ctx); err != nil {
			tb.Fatal(err)
		}
		gw.SetReady(c, true)
	}
	eng := engine.New(db, gw, engine.Config{Logger: slog.New(slog.DiscardHandler), BreakerThreshold: 1 << 20})
	evs, unsub := eng.Events().Subscribe(1 << 16)
	defer unsub()
	done := make(chan int)
	go func() { // the subscriber keeps up, so the broker drops nothing
		finished, sent := 0, 0
		for ev := range evs {
			switch {
			case ev.Type == "campaign" && ev.Status == string(engine.Terminada):
				if finished++; finished == clientes {
					done <- sent
				}
			case ev.Type == "envio" && ev.To == engine.Enviado:
				sent++
			}
		}
	}()
	go func() { // the gateway's ack log would block once full
		for range gw.Sends() {
		}
	}()
	rctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Run(rctx) }()
	defer func() { cancel(); <-stopped }()
	start := time.Now()
	for _, id := range ids {
		if err := eng.StartCampaign(ctx, id); err != nil {
			tb.Fatal(err)
		}
	}
	var sent int
	select {
	case sent = <-done:
	case <-time.After(10 * time.Minute):
		tb.Fatal("the engine did not finish")
	}
	elapsed := time.Since(start)
	if sent != per*clientes {
		tb.Fatalf("%d enviado, want %d", sent, per*clientes)
	}
	return float64(sent) / elapsed.Seconds()
}

// BenchmarkEngine_GroupCommitVsSerial is the engine-bound figure of
// BENCHMARKS.md: confirmed sends/s with the in-memory gateway (no delays,
// caps out of reach, clientes sending at once) on a kv file with group
// commit, then on one with a transaction (and its fsync) per transition,
// in one run; the ratio is the gain of group commit. The files are in the
// test's TempDir, on the real disk. One op is both runs.
func BenchmarkEngine_GroupCommitVsSerial(b *testing.B) {
	group, serial := 20000, 2000
	if testing.Short() {
		group, serial = 4096, 512
	}
	for _, clientes := range []int{64, 256} {
		b.Run(fmt.Sprintf("clientes=%d", clientes), func(b *testing.B) {
			for b.Loop() {
				g := engineRun(b, b.TempDir(), kv.Options{}, clientes, group)
				s := engineRun(b, b.TempDir(), kv.Options{Serial: true}, clientes, serial)
				b.ReportMetric(g, "group-sends/s")
				b.ReportMetric(s, "serial-sends/s")
				b.ReportMetric(g/s, "ratio")
			}
		})
	}
}

// BenchmarkEngine_Wasim is real whatsmeow clients sending through the
// engine to the simulator: acked (enviado) sends/s for 1 and 10 sessions,
// with the kv file (app data and whatsmeow's device store) on the real
// disk and in /dev/shm. One op is one confirmed send; every recipient is
// new (the first message to a number includes its device lookup and a
// Signal session setup, as a campaign's do).
func BenchmarkEngine_Wasim(b *testing.B) {
	for _, sessions := range []int{1, 10} {
		for _, disk := range []bool{true, false} {
			where := "disk"
			if !disk {
				where = "shm"
			}
			b.Run(fmt.Sprintf("sessions=%d/%s", sessions, where), func(b *testing.B) {
				r := newRig(b, rigConfig{clientes: sessions, diskData: disk})
				per := max(1, b.N/sessions)
				ids := make([]string, sessions+1)
				for i := 1; i <= sessions; i++ {
					ids[i] = r.createCampaign("bench", clienteID(i), r.recipients(0, per), benchRate)
				}
				b.ResetTimer()
				start := time.Now()
				for i := 1; i <= sessions; i++ {
					if err := r.eng.StartCampaign(context.Background(), ids[i]); err != nil {
						b.Fatal(err)
					}
				}
				for i := 1; i <= sessions; i++ {
					r.waitStatus(ids[i], engine.Terminada)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(per*sessions)/elapsed.Seconds(), "acked-sends/s")
				for i := 1; i <= sessions; i++ {
					if got := r.checkNoLie(ids[i], senderPhone(i)); got != per {
						b.Fatalf("%d sent, want %d", got, per)
					}
				}
			})
		}
	}
}
