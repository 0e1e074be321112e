package importer

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkParseCSV parses a generated file of b.N rows (a name, two
// variables, and phones written four ways in "mixed", or all E.164 in
// "e164"), streamed from a generator, with one worker or the default.
//
//	go test -run '^$' -bench 'ParseCSV$' -benchtime 100000x ./engine/importer/
func BenchmarkParseCSV(b *testing.B) {
	for _, bc := range []struct {
		name    string
		e164    bool
		workers int
	}{
		{"mixed/workers=1", false, 1},
		{"mixed/workers=default", false, 0},
		{"e164/workers=1", true, 1},
		{"e164/workers=default", true, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			g := newGenerator(b.N)
			g.e164 = bc.e164
			b.ResetTimer()
			cpu := cpuTime()
			sum, err := ParseCSV(context.Background(), g, Options{DefaultRegion: "AR", Workers: bc.workers}, func(Row) error { return nil })
			if err != nil || sum.Accepted != b.N {
				b.Fatalf("summary %+v, err %v", sum, err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/row")
			b.SetBytes(g.n / int64(b.N))
		})
	}
}

// BenchmarkParseCSV1M parses a generated file of 1,000,000 rows per
// iteration and reports rows/s and the peak heap seen every 50,000 rows.
//
//	go test -run '^$' -bench ParseCSV1M -benchtime 1x ./engine/importer/
func BenchmarkParseCSV1M(b *testing.B) {
	const rows = 1_000_000
	b.ReportAllocs()
	var peak uint64
	var ms runtime.MemStats
	start, cpu := time.Now(), cpuTime()
	for b.Loop() {
		g := newGenerator(rows)
		sum, err := ParseCSV(context.Background(), g, Options{
			DefaultRegion: "AR",
			ProgressEvery: 50_000,
			Progress: func(int64, int) {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			},
		}, func(Row) error { return nil })
		if err != nil || sum.Accepted != rows {
			b.Fatalf("summary %+v, err %v", sum, err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/time.Since(start).Seconds(), "rows/s")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(rows*b.N), "cpu-µs/row")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
