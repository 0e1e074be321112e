package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"leadmaster/engine"
)

// BenchmarkMessagesVsCampaign measures, in one op and on one setup (the
// real binary, a standalone wasim, one paired session, number check off,
// 1-2 ms pace, caps out of reach, every recipient new), the confirmed sends/s
// of:
//
//   - a campaign of n envíos (imported before serve starts; from its start
//     to its last enviado, on the event stream);
//   - n transactional messages, each `POST …/mensajes?esperar=30s` after the
//     previous one's answer (sequential), with each answer's latency;
//   - n more from 8 concurrent callers.
//
// n is LEADMASTER_BENCH_MESSAGES (default 300). Run it with -benchtime 1x:
//
//	go test -run '^$' -bench MessagesVsCampaign -benchtime 1x .
func BenchmarkMessagesVsCampaign(b *testing.B) {
	n := 300
	if v := os.Getenv("LEADMASTER_BENCH_MESSAGES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	for range b.N {
		r := benchMessagesRun(b, n)
		b.ReportMetric(r.campaign, "campaign-sends/s")
		b.ReportMetric(r.seq.rate, "seq-sends/s")
		b.ReportMetric(r.seq.p50, "seq-p50-ms")
		b.ReportMetric(r.seq.p99, "seq-p99-ms")
		b.ReportMetric(r.c8.rate, "c8-sends/s")
		b.ReportMetric(r.c8.p50, "c8-p50-ms")
		b.ReportMetric(r.c8.p99, "c8-p99-ms")
		b.ReportMetric(r.seq.rate/r.campaign, "seq/campaign")
		b.ReportMetric(r.c8.rate/r.campaign, "c8/campaign")
		b.Logf("n=%d: campaign %.1f sends/s; sequential %.1f sends/s p50/p90/p99 %.1f/%.1f/%.1f ms; 8 concurrent %.1f sends/s p50/p90/p99 %.1f/%.1f/%.1f ms",
			n, r.campaign, r.seq.rate, r.seq.p50, r.seq.p90, r.seq.p99, r.c8.rate, r.c8.p50, r.c8.p90, r.c8.p99)
	}
}

type benchPhase struct{ rate, p50, p90, p99 float64 }

type benchResult struct {
	campaign float64
	seq, c8  benchPhase
}

const benchCliente, benchCampaign, benchSender = "bench", "k", "5491100000003"

func benchPhone(phase, i int) string { return fmt.Sprintf("+54911%08d", 70000000+phase*1000000+i) }

func benchMessagesRun(b *testing.B, n int) benchResult {
	b.StopTimer()
	dir := b.TempDir()
	data := filepath.Join(dir, "data")
	wasimBin := filepath.Join(dir, "wasim")
	if out, err := exec.Command("go", "build", "-o", wasimBin, "./wasim/cmd/wasim").CombinedOutput(); err != nil {
		b.Fatalf("build wasim: %v\n%s", err, out)
	}
	simURL := benchStart(b, filepath.Join(dir, "wasim.log"), "wasim listening on ", wasimBin, "-listen", "127.0.0.1:0")

	var csv strings.Builder
	csv.WriteString("telefono,texto\n")
	for i := range n {
		fmt.Fprintf(&csv, "%s,Campaña %d\n", benchPhone(0, i), i)
	}
	csvPath := filepath.Join(dir, "envios.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(binary, "import", "--data", data, "--create", "--cliente", benchCliente, "--campaign", benchCampaign, "--region", "AR", csvPath).CombinedOutput()
	if err != nil {
		b.Fatalf("import: %v\n%s", err, out)
	}

	const token = "bench-admin-token"
	srv := &serveProc{token: token}
	srv.base = benchStart(b, filepath.Join(dir, "serve.log"), "", binary, "serve", "--data", data, "--listen", "127.0.0.1:0",
		"--wasim", strings.TrimPrefix(simURL, "http://"), "--log-format", "json", "--admin-token", token, "--number-check=false",
		"--messages-min-delay", "1ms", "--messages-max-delay", "2ms", "--messages-hourly-cap", "100000", "--messages-daily-cap", "100000")
	cl := "/api/clientes/" + benchCliente
	msgAPI(b, srv, "PATCH", cl+"/campaigns/"+benchCampaign, map[string]any{"plantilla": "{{texto}}",
		"ritmo": map[string]any{"min_delay": "1ms", "max_delay": "2ms", "por_hora": 1 << 30, "por_dia": 1 << 30, "max_intentos": 5}}, nil)

	// Pair, and wait for the device's login on wasim's event log.
	var qr struct{ QR string }
	msgAPI(b, srv, "GET", cl+"/session/qr?format=json&timeout=30s", nil, &qr)
	benchSim(b, "POST", simURL+"/sim/scan", map[string]string{"qr": qr.QR, "phone": benchSender}, nil)
	var es []json.RawMessage
	q := url.Values{"kind": {"active"}, "jid": {benchSender}, "wait": {"30s"}}
	benchSim(b, "GET", simURL+"/sim/events?"+q.Encode(), nil, &es)

	var r benchResult
	b.StartTimer()
	start := time.Now()
	msgAPI(b, srv, "POST", cl+"/campaigns/"+benchCampaign+"/start", nil, nil)
	msgWaitSettled(b, srv, benchCliente, benchCampaign, uint64(n), 10*time.Minute)
	r.campaign = float64(n) / time.Since(start).Seconds()

	post := func(phase, i int) time.Duration {
		t0 := time.Now()
		code, _, raw, err := msgDo(srv, "POST", cl+"/mensajes?esperar=30s", map[string]string{"Idempotency-Key": fmt.Sprintf("b%d-%d", phase, i)},
			map[string]string{"telefono": benchPhone(phase, i), "texto": fmt.Sprintf("Mensaje %d", i)})
		d := time.Since(t0)
		var v msgView
		if err == nil {
			err = json.Unmarshal(raw, &v)
		}
		if err != nil || code != http.StatusOK || !engine.State(v.Estado).Sent() {
			b.Errorf("POST ?esperar=30s: %d %s %v", code, raw, err)
		}
		return d
	}
	phase := func(p, workers int) benchPhase {
		lat := make([]time.Duration, n)
		var wg sync.WaitGroup
		start := time.Now()
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					lat[i] = post(p, i)
				}
			}()
		}
		wg.Wait()
		el := time.Since(start)
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		return benchPhase{rate: float64(n) / el.Seconds(), p50: ms(lat[n/2]), p90: ms(lat[n*9/10]), p99: ms(lat[min(n-1, n*99/100)])}
	}
	r.seq = phase(1, 1)
	r.c8 = phase(2, 8)
	b.StopTimer()
	return r
}

// benchStart starts a process and returns the address it announces: on
// stdout after prefix (wasim), or in serve's JSON log ("leadmaster
// serving"). The process is stopped (SIGTERM, then SIGKILL) at cleanup.
func benchStart(b *testing.B, logPath, prefix, bin string, args ...string) string {
	b.Helper()
	cmd := exec.Command(bin, args...)
	logf, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	var announce io.ReadCloser
	if prefix != "" {
		cmd.Stderr = logf
		announce, err = cmd.StdoutPipe()
	} else {
		announce, err = cmd.StderrPipe()
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(announce)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if prefix != "" {
				if u, ok := strings.CutPrefix(line, prefix); ok {
					addr <- u
				}
				continue
			}
			fmt.Fprintln(logf, line)
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "leadmaster serving" {
				addr <- "http://" + l.Addr
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case a := <-addr:
		return a
	case <-exited:
		b.Fatalf("%s exited before serving (log %s)", bin, logPath)
	case <-time.After(60 * time.Second):
		b.Fatalf("%s did not announce its address within 60s (log %s)", bin, logPath)
	}
	return ""
}

// benchSim calls wasim's control API and wants 200.
func benchSim(b *testing.B, method, u string, body, out any) {
	b.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, u, r)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("wasim %s: %v", u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("wasim %s: %d %s", u, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			b.Fatalf("wasim %s: %v", u, err)
		}
	}
}
