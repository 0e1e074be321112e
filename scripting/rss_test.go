package scripting_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadmaster/scripting"
)

// procStatus reads a "VmXXX:   123 kB" field of /proc/self/status, in bytes.
func procStatus(tb testing.TB, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	tb.Skipf("no %s in /proc/self/status", field)
	return 0
}

// TestRSS_HostileRepeated runs every hostile script of the list 100 times
// in a row through one Script's pool, then checks that the process is
// fine: a good call works, no goroutine is left behind, and the peak RSS
// (VmHWM, reset before the run) stayed bounded.
func TestRSS_HostileRepeated(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const runs = 100
	const maxPeakGrowth = 256 << 20
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
	before, peak0 := procStatus(t, "VmRSS"), procStatus(t, "VmHWM")
	goroutines := runtime.NumGoroutine()
	lim := scripting.Limits{Timeout: 10 * time.Millisecond}
	start := time.Now()
	for _, h := range hostiles {
		s := mustCompile(t, fmt.Sprintf(hostileTemplate, h.body), lim)
		for i := 0; i < runs; i++ {
			if _, err := personalize(t, s, envio("bad")); err == nil {
				t.Fatalf("%s run %d: no error", h.name, i)
			}
		}
		m := s.Metrics()
		if m.Hooks["personalize"].Errors != runs {
			t.Errorf("%s: %d errors counted, want %d", h.name, m.Hooks["personalize"].Errors, runs)
		}
		// A path that ignores cancellation would leave every run stuck; a
		// few can be this machine descheduling the process for a second.
		if m.Stuck > runs/10 {
			t.Errorf("%s: %d of %d calls kept running a second after being stopped", h.name, m.Stuck, runs)
		} else if m.Stuck > 0 {
			t.Logf("%s: %d calls noticed their cancellation late (machine stalls)", h.name, m.Stuck)
		}
		ok := false
		for i := 0; i < 5 && !ok; i++ { // 10ms is tight on this machine: allow a stall
			r, err := personalize(t, s, goodEnvio())
			ok = err == nil && r.Text == goodText
		}
		if !ok {
			t.Errorf("%s: the pool is unhealthy after %d failures", h.name, runs)
		}
		s.Close()
	}
	took := time.Since(start)
	peak := procStatus(t, "VmHWM")
	runtime.GC()
	debug.FreeOSMemory()
	after := procStatus(t, "VmRSS")
	t.Logf("%d hostile scripts × %d runs in %v; RSS before %d MiB, peak %d MiB (VmHWM before %d MiB), after GC %d MiB",
		len(hostiles), runs, took.Round(time.Millisecond), before>>20, peak>>20, peak0>>20, after>>20)
	if peak-before > maxPeakGrowth {
		t.Errorf("peak RSS grew by %d MiB, want < %d MiB", (peak-before)>>20, maxPeakGrowth>>20)
	}
	if after-before > 64<<20 {
		t.Errorf("RSS after GC is %d MiB above the start", (after-before)>>20)
	}
	for i := 0; i < 100 && runtime.NumGoroutine() > goroutines; i++ {
		runtime.Gosched() // timer callbacks that already fired may still be finishing
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines left, %d before", n, goroutines)
	}
}
