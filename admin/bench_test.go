package admin_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/engine/enginetest"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// benchGET measures a GET route over a real listener and keep-alive
// connections, from parallel clients (the load generator is this
// benchmark: GOMAXPROCS x 16 goroutines). It reports requests/s.
func benchGET(b *testing.B, path func(key string) string) {
	h := newHarness(b, nil)
	key1, _ := h.setup()
	base, _ := h.serve()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	url := base + path(key1)
	var failed atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+key1)
			res, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d requests failed", n)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func BenchmarkHTTPSessionStatus(b *testing.B) {
	benchGET(b, func(string) string { return "/api/clientes/c1/session" })
}

func BenchmarkHTTPStats(b *testing.B) {
	benchGET(b, func(string) string { return "/api/clientes/c1/campaigns/k1/stats" })
}

// BenchmarkSSE100 runs a campaign of n envíos on the in-memory gateway
// (real clock, no delays, no caps) while 100 SSE clients watch /api/events;
// it reports the events each client received per second, the events the
// broker dropped for slow subscribers, and envíos sent per second.
func BenchmarkSSE100(b *testing.B) {
	const subscribers, n = 100, 2000
	for i := 0; i < b.N; i++ {
		db, _ := kvtest.MustOpen(b, kv.Options{})
		gw := enginetest.NewGateway(engine.SystemClock{})
		gw.SetReady("c1", true)
		eng := engine.New(db, gw, engine.Config{Logger: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { eng.Run(ctx); close(done) }()
		spool := filepath.Join(b.TempDir(), "uploads")
		srv, err := admin.New(admin.Options{Engine: eng, Data: db, Logger: slog.New(slog.DiscardHandler), AdminToken: adminTok, Heartbeat: time.Hour, SpoolDir: spool})
		if err != nil {
			b.Fatal(err)
		}
		h := &harness{t: b, db: db, eng: eng, srv: srv, gw: gw, spool: spool}
		h.must(201, h.do("POST", "/api/clientes", adminTok, map[string]string{"id": "c1", "region": "AR"}))
		h.must(201, h.do("POST", "/api/clientes/c1/campaigns", adminTok, map[string]any{"id": "k1", "plantilla": "Hola {{nombre}}",
			"ritmo": map[string]any{"min_delay": "1ns", "max_delay": "1ns", "por_hora": 1 << 30, "por_dia": 1 << 30}}))
		var csv strings.Builder
		csv.WriteString("telefono,nombre\n")
		for j := 0; j < n; j++ {
			fmt.Fprintf(&csv, "+54911%08d,N%d\n", 20000000+j, j)
		}
		if v := h.upload("c1", "k1", adminTok, csv.String()); v["state"] != "done" {
			b.Fatalf("import %v", v)
		}
		base, stop := h.serve()
		tr := &http.Transport{MaxIdleConnsPerHost: subscribers}
		client := &http.Client{Transport: tr}
		var got atomic.Int64
		var ready, finished sync.WaitGroup
		allSent := make(chan struct{})
		for s := 0; s < subscribers; s++ {
			ready.Add(1)
			finished.Add(1)
			go func() {
				defer finished.Done()
				res := httpDo(b, client, "GET", base+"/api/events?token="+adminTok, "", "", nil)
				defer res.Body.Close()
				r := bufio.NewReader(res.Body)
				r.ReadString('\n')
				ready.Done()
				sent := 0
				for sent < n {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "data: ") {
						got.Add(1)
						if strings.Contains(line, `"to":"enviado"`) {
							sent++
						}
					}
				}
			}()
		}
		ready.Wait()
		events, unsub := eng.Events().Subscribe(1 << 16)
		start := time.Now()
		h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", adminTok, nil))
		go func() {
			sent := 0
			for ev := range events {
				if ev.Type == "envio" && ev.To == engine.Enviado {
					if sent++; sent == n {
						close(allSent)
						return
					}
				}
			}
		}()
		<-allSent
		sendDur := time.Since(start)
		waitDone := make(chan struct{})
		go func() { finished.Wait(); close(waitDone) }()
		select {
		case <-waitDone:
		case <-time.After(5 * time.Second): // subscribers that lost events never see n enviados
		}
		dur := time.Since(start)
		unsub()
		stop()
		finished.Wait()
		tr.CloseIdleConnections()
		cancel()
		<-done
		b.ReportMetric(float64(n)/sendDur.Seconds(), "envios/s")
		b.ReportMetric(float64(got.Load())/dur.Seconds(), "events/s(all-clients)")
		b.ReportMetric(float64(got.Load())/float64(subscribers), "events/client")
		b.ReportMetric(float64(eng.Events().Dropped()), "dropped")
	}
}
