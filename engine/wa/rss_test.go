package wa_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"leadmaster/engine"
	"leadmaster/engine/wa"
	"leadmaster/kv"
	"leadmaster/wasim"
)

// TestRSS50 measures the resident memory of a process running the session
// manager: idle (kv open, manager created, no session), with 1 connected
// session, and with 50. The simulator runs in its own process and the
// measured process does nothing else, so the figures are ours plus
// whatsmeow's. Run with:
//
//	LEADMASTER_RSS=1 go test -run 'TestRSS50$' -v -count=1 ./engine/wa/
func TestRSS50(t *testing.T) {
	if os.Getenv("LEADMASTER_RSS") == "" {
		t.Skip("set LEADMASTER_RSS=1 to measure (about 30 s)")
	}
	const n = 50
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// the simulator: another process
	sim := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRSSChild$")
	sim.Env = append(os.Environ(), "WA_RSS_ROLE=sim", "WA_RSS_SNAPSHOT="+filepath.Join(dir, "sim.json"))
	out, err := sim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sim.Stderr = os.Stderr
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sim.Process.Kill(); _ = sim.Wait() }()
	sc := bufio.NewScanner(out)
	var addr string
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "wasim listening on http://"); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("simulator did not start")
	}
	go func() { // keep draining its stdout
		for sc.Scan() {
		}
	}()

	// pair n clientes in this process (not measured)
	pairAll(t, ctx, dir, addr, n)

	// measure in a fresh process
	meas := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestRSSChild$", "-test.v")
	meas.Env = append(os.Environ(), "WA_RSS_ROLE=measure", "WA_RSS_DIR="+dir, "WA_RSS_ADDR="+addr, "WA_RSS_N="+strconv.Itoa(n))
	meas.Stderr = os.Stderr
	res, err := meas.Output()
	if err != nil {
		t.Fatalf("measuring process: %v\n%s", err, res)
	}
	for _, line := range strings.Split(string(res), "\n") {
		if strings.Contains(line, "RSS") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// TestRSSChild is TestRSS50's other processes; it does nothing otherwise.
func TestRSSChild(t *testing.T) {
	switch os.Getenv("WA_RSS_ROLE") {
	case "sim":
		os.Exit(wasim.Main(context.Background(), []string{"-listen", "127.0.0.1:0", "-snapshot", os.Getenv("WA_RSS_SNAPSHOT")}, os.Stdout, os.Stderr))
	case "measure":
		measureRSS(t)
	default:
		t.Skip("helper process of TestRSS50")
	}
}

func configureFor(addr string) func(*whatsmeow.Client) {
	hc := wasim.HTTPClient(addr)
	return func(cli *whatsmeow.Client) { wasim.ConfigureClient(cli, hc, wasim.RootPublicKey()) }
}

func clienteID(i int) string { return fmt.Sprintf("c%03d", i) }

func pairAll(t *testing.T, ctx context.Context, dir, addr string, n int) {
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := newRecorder(db) // it records each pairing's device
	m := newManager(t, db, rec, wa.Options{Configure: configureFor(addr)})
	defer m.Close()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := 1; i <= n; i++ {
		id := clienteID(i)
		if err := db.CreateCliente(ctx, engine.Cliente{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- pairVia(ctx, m, addr, id, fmt.Sprintf("1555100%04d", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rec.waitUntil(t, "every cliente READY", func() bool {
		ready := map[string]bool{}
		for _, ev := range rec.sessions {
			if ev.State == engine.SessionReady {
				ready[ev.Cliente] = true
			}
		}
		return len(ready) == n
	})
}

// pairVia pairs a cliente through the standalone simulator's control API
// and waits until its prekeys are uploaded.
func pairVia(ctx context.Context, m *wa.Manager, addr, cliente, phone string) error {
	qr, err := m.WaitQR(ctx, cliente)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"qr": qr, "phone": phone})
	resp, err := http.Post("http://"+addr+"/sim/scan", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var r struct {
		JID   string `json:"jid"`
		Error string `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil || r.JID == "" {
		return fmt.Errorf("scan: %v %s", err, r.Error)
	}
	resp, err = http.Get("http://" + addr + "/sim/events?after=0&kind=prekeys&wait=30s&jid=" + r.JID)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("waiting for prekeys of %s: %s", r.JID, resp.Status)
	}
	return nil
}

// rss returns the process's resident set after a full GC that returns
// freed memory to the OS.
func rss(t *testing.T) (rssKB, heapKB uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, _ = strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssKB, ms.HeapInuse / 1024
}

func measureRSS(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WA_RSS_N"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base, baseHeap := rss(t)

	db, err := kv.Open(os.Getenv("WA_RSS_DIR"), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := newRecorder(db)
	m := newManager(t, db, rec, wa.Options{Configure: configureFor(os.Getenv("WA_RSS_ADDR"))})
	defer m.Close()
	idle, idleHeap := rss(t)

	readyCount := func() int {
		ready := map[string]bool{}
		for _, ev := range rec.sessions {
			if ev.State == engine.SessionReady {
				ready[ev.Cliente] = true
			}
		}
		return len(ready)
	}
	if err := m.Start(ctx, clienteID(1)); err != nil {
		t.Fatal(err)
	}
	rec.waitUntil(t, "first READY", func() bool { return readyCount() == 1 })
	one, oneHeap := rss(t)

	start := time.Now()
	if err := m.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	rec.waitUntil(t, "all READY", func() bool { return readyCount() == n })
	took := time.Since(start)
	all, allHeap := rss(t)
	per := float64(all-one) / float64(n-1) / 1024
	fmt.Printf("RSS test binary before kv/manager: %.1f MB (Go heap in use %.1f MB)\n", mb(base), mb(baseHeap))
	fmt.Printf("RSS idle (kv open, manager, no session): %.1f MB (heap %.1f MB)\n", mb(idle), mb(idleHeap))
	fmt.Printf("RSS 1 connected session: %.1f MB (heap %.1f MB)\n", mb(one), mb(oneHeap))
	fmt.Printf("RSS %d connected sessions: %.1f MB (heap %.1f MB); %d more connected in %v\n", n, mb(all), mb(allHeap), n-1, took.Round(time.Millisecond))
	fmt.Printf("RSS per extra connected session: %.2f MB (heap %.3f MB)\n", per, float64(allHeap-oneHeap)/float64(n-1)/1024)
	fmt.Printf("RSS goroutines with %d sessions: %d\n", n, runtime.NumGoroutine())
}

func mb(kb uint64) float64 { return float64(kb) / 1024 }
