package scripting_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"leadmaster/scripting"
)

// renderAll renders the same 20 envíos with examples/personalize.lua.
func renderAll(tb testing.TB) []string {
	src, err := os.ReadFile("../examples/personalize.lua")
	if err != nil {
		tb.Fatal(err)
	}
	s := mustCompile(tb, string(src), relaxed)
	var out []string
	for i := 0; i < 20; i++ {
		e := envio(fmt.Sprint("envio-", i))
		e.Variables = map[string]string{"ciudad": "Puebla", "negocio": "Tienda Sol"}
		out = append(out, mustText(tb, s, e))
	}
	return out
}

// Golden renders of examples/personalize.lua: same envío, same text, in
// this process, in another process, on another machine, and after an
// upgrade of Go (math/rand/v2's PCG and FNV-1a are specified algorithms).
var golden = map[int]string{
	0:  "Buenos días, María. Te escribimos de Tienda Sol: hay una promoción en Puebla esta semana.",
	7:  "Buenos días, María. Te escribimos de Tienda Sol: hay un descuento en Puebla esta semana.",
	19: "Buenos días, María. Te escribimos de Tienda Sol: hay un descuento en Puebla esta semana.",
}

func TestDeterminism_Golden(t *testing.T) {
	got := renderAll(t)
	for i, want := range golden {
		if got[i] != want {
			t.Errorf("envío %d renders %q, golden %q", i, got[i], want)
		}
	}
}

// TestDeterminism_AcrossProcesses renders in a child process (the test
// binary re-run) and compares with this process.
func TestDeterminism_AcrossProcesses(t *testing.T) {
	if os.Getenv("SCRIPTING_RENDER_CHILD") == "1" {
		fmt.Println(strings.Join(renderAll(t), "\n"))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeterminism_AcrossProcesses$")
	cmd.Env = append(os.Environ(), "SCRIPTING_RENDER_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	want := renderAll(t)
	if len(lines) < len(want) {
		t.Fatalf("child printed %d lines: %q", len(lines), out)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("envío %d: child rendered %q, parent %q", i, lines[i], want[i])
		}
	}
}

// TestConcurrentCallers runs good and hostile calls from many goroutines
// on one Script (so on one pool) and on several Scripts at once. Run with
// -race. Every good call must render its envío's text exactly.
func TestConcurrentCallers(t *testing.T) {
	src, err := os.ReadFile("../examples/personalize.lua")
	if err != nil {
		t.Fatal(err)
	}
	lim := scripting.Limits{Timeout: 30 * time.Second, PoolSize: 4}
	good := mustCompile(t, string(src), lim)
	other := mustCompile(t, `counter = (counter or 0) + 1
function personalize(e) x = (x or 0) + 1 return e.id .. ":" .. counter .. x end`, lim)
	bad := mustCompile(t, `function personalize(e)
  if e.variables.k == "loop" then while true do end end
  if e.variables.k == "rep" then return string.rep("x", 1e9) end
  if e.variables.k == "err" then error({}) end
  return "ok " .. e.id
end`, scripting.Limits{Timeout: 20 * time.Millisecond, PoolSize: 2})

	want := map[string]string{}
	for i := 0; i < 10; i++ {
		id := fmt.Sprint("c", i)
		want[id] = mustText(t, good, envio(id))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < 60; i++ {
				id := fmt.Sprint("c", (g+i)%10)
				r, err := good.Personalize(ctx, envio(id))
				if err != nil || r.Text != want[id] {
					errs <- fmt.Errorf("good %s: %q %v, want %q", id, r.Text, err, want[id])
				}
				r, err = other.Personalize(ctx, envio(id))
				if err != nil || r.Text != id+":11" {
					errs <- fmt.Errorf("other %s: %q %v", id, r.Text, err)
				}
				e := envio(id)
				e.Variables = map[string]string{"k": []string{"loop", "rep", "err", "ok"}[(g+i)%4]}
				r, err = bad.Personalize(ctx, e)
				switch e.Variables["k"] {
				case "ok":
					if err != nil && !errors.Is(err, scripting.ErrTimeout) { // a 20ms limit on a loaded machine
						errs <- fmt.Errorf("bad/ok: %v", err)
					}
				default:
					if err == nil {
						errs <- fmt.Errorf("bad/%s: no error", e.Variables["k"])
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	m := bad.Metrics()
	if h := m.Hooks["personalize"]; h.Calls != 480 || h.Timeout < 100 || h.Limit < 100 || m.StatesDiscarded < 300 {
		t.Errorf("metrics %+v", m)
	}
	t.Logf("good: %+v", good.Metrics())
	t.Logf("bad: %+v", m)
}
