package kv_test

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// BenchmarkApply measures transitions/s from 64 concurrent callers per
// core, through group commit and through one transaction per transition.
// Each caller cycles its own envío pendiente <-> enviando, so the work per
// transition is the same in both modes.
//
//	go test -run '^$' -bench 'Apply' -benchtime 3s ./kv/
func BenchmarkApply(b *testing.B) {
	for _, mode := range []struct {
		name   string
		serial bool
	}{{"group", false}, {"serial", true}} {
		b.Run(mode.name, func(b *testing.B) {
			db, _ := kvtest.MustOpen(b, kv.Options{Serial: mode.serial})
			camp := kvtest.MustCampaign(b, db, "bench", 4096)
			var next atomic.Uint64
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := engine.Ref{Campaign: camp, Seq: next.Add(1)}
				ctx := context.Background()
				state := engine.Pendiente
				for pb.Next() {
					t := engine.Transition{Envio: r, From: state, To: engine.Enviando, Text: "hola"}
					if state == engine.Enviando {
						t = engine.Transition{Envio: r, From: state, To: engine.Pendiente}
					}
					if err := db.Apply(ctx, t); err != nil {
						b.Error(err)
						return
					}
					state = t.To
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
		})
	}
}

// rowsReader generates a CSV of n rows without holding it in memory.
type rowsReader struct {
	n, i int
	buf  []byte
}

func (r *rowsReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) && r.i <= r.n {
		if r.i == 0 {
			r.buf = append(r.buf, "telefono,nombre,producto\n"...)
		} else {
			r.buf = fmt.Appendf(r.buf, "+54911%08d,Nombre %d,producto %d\n", 10000000+r.i, r.i, r.i%7)
		}
		r.i++
	}
	if len(r.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// BenchmarkImportFile1M imports a generated 1,000,000-row CSV (E.164
// phones) into one campaign through the parser and the staged import.
//
//	go test -c -o /tmp/kv.test ./kv/ && /usr/bin/time -v /tmp/kv.test -test.run '^$' -test.bench ImportFile1M -test.benchtime 1x
func BenchmarkImportFile1M(b *testing.B) {
	for range b.N {
		b.StopTimer()
		db, _ := kvtest.MustOpen(b, kv.Options{})
		ctx := context.Background()
		if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1", DefaultRegion: "AR"}); err != nil {
			b.Fatal(err)
		}
		if err := db.CreateCampaign(ctx, engine.Campaign{ID: "big", Cliente: "c1"}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := db.ImportFile(ctx, "big", kv.UploadCSV, &rowsReader{n: importBenchRows()}, nil)
		if err != nil || rep.Accepted != importBenchRows() {
			b.Fatalf("import: %d accepted, %v", rep.Accepted, err)
		}
		b.ReportMetric(float64(rep.Accepted)/b.Elapsed().Seconds(), "rows/s")
	}
}

// importBenchRows is 1,000,000 unless -short.
func importBenchRows() int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}
