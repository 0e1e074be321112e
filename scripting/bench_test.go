package scripting

// Benchmarks of personalize throughput with examples/personalize.lua.
//
//	go test -run '^$' -bench Personalize -benchtime 2s -cpu 1 ./scripting/
//
// -cpu 1 makes ns/op the cost on one core. renders/s is wall-clock
// throughput; renders/cpu-s divides by the CPU time the process used (GC
// included), which stays meaningful when other processes load the machine.
//
// Variants: isolated-pooled is the production path (Script.Personalize);
// plain is stock gopher-lua libraries, one global table, the chunk run once;
// plain-rerun is the same but runs the chunk before every call, as the
// research notes' baseline did; isolated-fresh-state makes a new Lua state
// per call instead of pooling. BenchmarkPersonalizeRatio runs them
// interleaved in one run and reports the ratios, so machine noise affects
// all sides alike.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// benchEnvios are built once: the benchmarks measure rendering, not the
// construction of their inputs.
var benchEnvios = func() []Envio {
	out := make([]Envio, 64)
	for i := range out {
		out[i] = makeBenchEnvio(i)
	}
	return out
}()

func benchEnvio(i int) Envio { return benchEnvios[i%len(benchEnvios)] }

func makeBenchEnvio(i int) Envio {
	return Envio{
		ID:        fmt.Sprint("envio-", i),
		Telefono:  "+525512345678",
		Nombre:    "maría josé pérez",
		Campana:   "campana-1",
		Variables: map[string]string{"ciudad": "Puebla", "negocio": "Tienda Sol", "no_contactar": "no"},
		Attempt:   1,
		Now:       time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC),
		TimeZone:  "America/Mexico_City",
	}
}

func mustExample(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("../examples/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// cpuTime is the CPU time the process has used (all threads, GC included).
// Throughput per CPU second is what "renders/s per core" means, and unlike
// wall time it does not change when other processes load the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// renderer is one way of running personalize.
type renderer interface {
	render(e Envio) (string, error)
}

type isolated struct{ s *Script }

func (r isolated) render(e Envio) (string, error) {
	res, err := r.s.Personalize(context.Background(), e)
	return res.Text, err
}

// plain is the baseline: stock libraries, one global table per state, the
// chunk run once, the hook called as a global function. It uses the same
// deadline mechanism (state.begin/end) and the same input table (reused
// across calls the same way) as the isolated path, so the ratio measures
// the isolation only.
type plain struct {
	st    *state
	s     *Script
	proto *lua.FunctionProto
	rerun bool // run the chunk before every call, as the research notes' baseline did
}

func newPlainRerun(tb testing.TB, src string) *plain {
	p := newPlain(tb, src)
	p.rerun = true
	return p
}

func newPlain(tb testing.TB, src string) *plain {
	lim := benchLimits.withDefaults()
	proto, err := compileProto("personalize.lua", src, lim.MaxString, false)
	if err != nil {
		tb.Fatal(err)
	}
	st := newPlainState(&lim)
	L := st.L
	L.Push(L.NewFunctionFromProto(proto))
	if err := L.PCall(0, 0, nil); err != nil {
		tb.Fatal(err)
	}
	s, err := CompileWith("personalize.lua", src, benchLimits) // for its limits only
	if err != nil {
		tb.Fatal(err)
	}
	return &plain{st: st, s: s, proto: proto}
}

func (p *plain) render(e Envio) (string, error) {
	st, L := p.st, p.st.L
	st.pcg.Seed(seedOf("envio", e.Campana, e.ID, e.Telefono))
	st.now, st.zone, st.loc = nowOr(e.Now), e.TimeZone, nil
	st.begin(context.Background(), p.s.lim.Timeout)
	if p.rerun {
		L.Push(L.NewFunctionFromProto(p.proto))
		if err := L.PCall(0, 0, nil); err != nil {
			st.end()
			return "", err
		}
	}
	L.Push(L.GetGlobal("personalize"))
	L.Push(st.envioTable(e))
	err := L.PCall(1, 1, nil)
	st.end()
	if err != nil {
		return "", err
	}
	st.checkEnvio(e)
	ret := L.Get(-1)
	L.SetTop(0)
	return ret.String(), nil
}

// benchLimits are the defaults but for the time limit: this machine is
// shared and stalls a process now and then for longer than 100ms, which
// would fail a benchmark; the limit's value does not change the cost.
var benchLimits = Limits{Timeout: time.Minute}

func newIsolated(tb testing.TB, src string, fresh bool) isolated {
	s, err := CompileWith("personalize.lua", src, benchLimits)
	if err != nil {
		tb.Fatal(err)
	}
	s.fresh = fresh
	return isolated{s}
}

func runRenders(b *testing.B, r renderer) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		if _, err := r.render(benchEnvio(i)); err != nil {
			b.Fatal(err)
		}
	}
	reportRates(b, b.N, cpuTime()-cpu0)
}

func reportRates(b *testing.B, n int, cpu time.Duration) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "renders/s")
	if cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "renders/cpu-s")
	}
}

func BenchmarkPersonalize(b *testing.B) {
	src := mustExample(b, "personalize.lua")
	b.Run("isolated-pooled", func(b *testing.B) { runRenders(b, newIsolated(b, src, false)) })
	b.Run("plain", func(b *testing.B) { runRenders(b, newPlain(b, src)) })
	b.Run("plain-rerun", func(b *testing.B) { runRenders(b, newPlainRerun(b, src)) })
	b.Run("isolated-fresh-state", func(b *testing.B) { runRenders(b, newIsolated(b, src, true)) })
	b.Run("isolated-pooled-parallel", func(b *testing.B) {
		s := newIsolated(b, src, false).s
		b.ReportAllocs()
		cpu0 := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.Personalize(context.Background(), benchEnvio(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRates(b, b.N, cpuTime()-cpu0)
	})
}

// BenchmarkPersonalizeRatio times the three variants (in CPU time) in
// alternating rounds of the same run and reports isolated/plain and
// pooled/fresh as throughput ratios (>1 means the first is faster).
func BenchmarkPersonalizeRatio(b *testing.B) {
	src := mustExample(b, "personalize.lua")
	variants := []renderer{newIsolated(b, src, false), newPlain(b, src), newIsolated(b, src, true), newPlainRerun(b, src)}
	var spent [4]time.Duration
	var count [4]int
	const round = 2000
	for b.Loop() {
		for v, r := range variants {
			runtime.GC() // each variant pays for its own garbage, not the previous one's
			start := cpuTime()
			for i := 0; i < round; i++ {
				if _, err := r.render(benchEnvio(i)); err != nil {
					b.Fatal(err)
				}
			}
			spent[v] += cpuTime() - start
			count[v] += round
		}
	}
	rate := func(v int) float64 { return float64(count[v]) / spent[v].Seconds() }
	b.ReportMetric(rate(0), "isolated-renders/cpu-s")
	b.ReportMetric(rate(1), "plain-renders/cpu-s")
	b.ReportMetric(rate(2), "fresh-renders/cpu-s")
	b.ReportMetric(rate(3), "plain-rerun-renders/cpu-s")
	b.ReportMetric(rate(0)/rate(1), "isolated/plain")
	b.ReportMetric(rate(0)/rate(3), "isolated/plain-rerun")
	b.ReportMetric(rate(0)/rate(2), "pooled/fresh")
}

// TestBenchVariantsAgree keeps the benchmark honest: the three variants
// render the same text.
func TestBenchVariantsAgree(t *testing.T) {
	src := mustExample(t, "personalize.lua")
	variants := []renderer{newIsolated(t, src, false), newPlain(t, src), newIsolated(t, src, true), newPlainRerun(t, src)}
	for i := 0; i < 50; i++ {
		var texts []string
		for _, r := range variants {
			text, err := r.render(benchEnvio(i))
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, text)
		}
		if texts[0] != texts[1] || texts[0] != texts[2] || texts[0] != texts[3] {
			t.Fatalf("variants disagree:\n%s", strings.Join(texts, "\n"))
		}
	}
}

// BenchmarkPersonalizeMinimal is the fixed cost of a call: a script that
// returns a constant (pool, environment, top level, input table, limits).
func BenchmarkPersonalizeMinimal(b *testing.B) {
	runRenders(b, newIsolated(b, `function personalize(e) return "hola" end`, false))
}
