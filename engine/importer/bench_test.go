package importer

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// BenchmarkParseCSV parses a generated file of b.N rows (four phone
// spellings, a name and two variables), streamed from a generator.
func BenchmarkParseCSV(b *testing.B) {
	b.ReportAllocs()
	g := newGenerator(b.N)
	b.ResetTimer()
	sum, err := ParseCSV(context.Background(), g, Options{DefaultRegion: "AR"}, func(Row) error { return nil })
	if err != nil || sum.Accepted != b.N {
		b.Fatalf("summary %+v, err %v", sum, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.SetBytes(g.n / int64(b.N))
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
	start := time.Now()
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
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
