package kv_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
					t := engine.Transition{Envio: r, From: state, To: engine.Enviando, Text: "hola", MsgID: engine.MessageID(db.Secret(), r)}
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

// rowsReader generates a CSV of n rows without holding it in memory. Phone
// i is +54 9 11 followed by 8 digits; shuffled, the rows come in a
// pseudo-random order of phones (i*7919 mod a prime), as real lists do;
// national, phones are written as an Argentine would ("011 15-xxxx-xxxx").
type rowsReader struct {
	n, i               int
	shuffled, national bool
	buf                []byte
}

func (r *rowsReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) && r.i <= r.n {
		if r.i == 0 {
			r.buf = append(r.buf, "telefono,nombre,producto\n"...)
		} else {
			num := 10000000 + r.i
			if r.shuffled {
				num = 10000000 + r.i*7919%1000003
			}
			if r.national {
				r.buf = fmt.Appendf(r.buf, "011 15-%04d-%04d,Nombre %d,producto %d\n", num/10000, num%10000, r.i, r.i%7)
			} else {
				r.buf = fmt.Appendf(r.buf, "+54911%08d,Nombre %d,producto %d\n", num, r.i, r.i%7)
			}
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

// BenchmarkImportFile1M imports a generated 1,000,000-row CSV into one
// campaign through the parser and the staged import, then verifies the
// journal. peak-MB is the process's peak RSS during the import alone
// (VmHWM, reset before it through /proc/self/clear_refs), verify-peak-MB
// the same for the verification that follows.
//
//	go test -c -o /tmp/kv.test ./kv/ && cd /tmp && /tmp/kv.test -test.run '^$' -test.bench ImportFile1M -test.benchtime 1x
func BenchmarkImportFile1M(b *testing.B) {
	for _, order := range []struct {
		name               string
		shuffled, national bool
	}{{"e164-sorted", false, false}, {"e164-shuffled", true, false}, {"national-shuffled", true, true}} {
		b.Run(order.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				ctx := context.Background()
				db, err := kv.Open(b.TempDir(), kv.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1", DefaultRegion: "AR"}); err != nil {
					b.Fatal(err)
				}
				if err := db.CreateCampaign(ctx, engine.Campaign{ID: "big", Cliente: "c1"}); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				resetPeakRSS()
				b.StartTimer()
				start := time.Now()
				rep, err := db.ImportFile(ctx, "big", kv.UploadCSV, &rowsReader{n: importBenchRows(), shuffled: order.shuffled, national: order.national}, nil)
				if err != nil || rep.Accepted != importBenchRows() {
					b.Fatalf("import: %d accepted, %v", rep.Accepted, err)
				}
				took := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(rep.Accepted)/took.Seconds(), "rows/s")
				b.ReportMetric(peakRSSMB(), "peak-MB")
				runtime.GC()
				resetPeakRSS()
				start = time.Now()
				if v, err := db.Verify(ctx, nil); err != nil || !v.OK {
					b.Fatalf("verify: %+v %v", v, err)
				}
				b.ReportMetric(time.Since(start).Seconds(), "verify-s")
				b.ReportMetric(peakRSSMB(), "verify-peak-MB")
				db.Close()
			}
		})
	}
}

// resetPeakRSS resets the kernel's peak RSS of this process (Linux).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSSMB reads the peak RSS (VmHWM) in MB, or -1 where there is none.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var n float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), &n)
			return n / 1024
		}
	}
	return -1
}

// importBenchRows is 1,000,000 unless -short.
func importBenchRows() int {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}
