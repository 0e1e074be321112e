package main

// The operator page in a real headless Chromium (Debian's chromium, driven
// by chromedp) against the real appliance in this process: kv on a temp
// file, the send engine, the whatsmeow sessions (engine/wa) talking to the
// wasim simulator over loopback, the admin API serving assets.FS.
//
//	go test -run TestBrowser -v .
//
// LEADMASTER_CHROMIUM names the browser binary (default: chromium on PATH,
// /usr/bin/chromium). LEADMASTER_SCREENSHOTS=docs rewrites the committed
// screenshots under docs/. A failing step saves a screenshot of the page
// (path in the log) in LEADMASTER_ARTIFACTS, default the temp directory.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	signallog "go.mau.fi/libsignal/logger"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/wasim"
)

// chromiumPath finds the browser, or "" if there is none.
func chromiumPath() string {
	if p := os.Getenv("LEADMASTER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// browserStack is the appliance the page talks to.
type browserStack struct {
	url   string // http://127.0.0.1:port
	token string // the admin token
	sim   *wasim.Server
}

// startBrowserStack runs the real appliance wired as `leadmaster demo`
// wires it (openAppliance), with wasim as WhatsApp and the simulated
// phone's scan as the demo hook. Recipients deliver and read at once.
func startBrowserStack(t *testing.T) *browserStack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	sim := wasim.New(wasim.Options{})
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sim.SetBehavior("", wasim.Behavior{Deliver: true, Read: true, ReadAfter: 100 * time.Millisecond})

	db, err := kv.Open(t.TempDir(), kv.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	const token = "browser-test-admin-token-0123456789"
	var app *appliance
	cfg := applianceConfig{
		listen:     "127.0.0.1:0",
		adminToken: token,
		configure:  sim.Configure,
		demoScan: func(ctx context.Context, cliente string) error {
			qr, err := app.sessions.WaitQR(ctx, cliente)
			if err != nil {
				return err
			}
			_, err = sim.ScanQR(ctx, qr, "")
			return err
		},
	}
	app, err = openAppliance(db, &cmdEnv{log: log, stdout: io.Discard, stderr: io.Discard}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("appliance: %v", err)
		}
		db.Close()
		sim.Close()
	})
	return &browserStack{url: "http://" + app.ln.Addr().String(), token: token, sim: sim}
}

// testWriter sends the appliance's warnings to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// call is a JSON request to the admin API with the admin token.
func (s *browserStack) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	req.Header.Set("Authorization", "Bearer "+s.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, path, res.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// events subscribes to the admin API's event stream of a cliente (GET
// /api/events, text/event-stream), as the page does. When it returns, the
// server holds the subscription: no event of what the test does next is
// missed. The stream is closed, and its reader waited for, when the test
// ends.
func (s *browserStack) events(t *testing.T, cliente string) <-chan engine.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/events?cliente="+cliente, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("GET /api/events: %s, %s: %s", res.Status, ct, b)
	}
	// The server subscribes before it answers; its first words say so.
	r := bufio.NewReader(res.Body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			res.Body.Close()
			cancel()
			t.Fatalf("GET /api/events: %v before \": connected\"", err)
		}
		if strings.TrimRight(line, "\r\n") == ": connected" {
			break
		}
	}
	ch := make(chan engine.Event, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		var typ string
		var data []byte
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch line = strings.TrimRight(line, "\r\n"); {
			case line == "": // the end of an event
				var ev engine.Event
				if typ != "" && json.Unmarshal(data, &ev) == nil {
					ev.Type = typ
					select {
					case ch <- ev:
					case <-ctx.Done():
						return
					}
				}
				typ, data = "", nil
			case strings.HasPrefix(line, "event:"):
				typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
			case strings.HasPrefix(line, "data:"):
				data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
		<-done
	})
	return ch
}

// settled: no receipt moves the envío any more. The simulator reads every
// message it gets, so a sent envío settles at leido.
func settled(s engine.State) bool { return s == engine.Leido || s.Final() && !s.Sent() }

// settle waits on events (opened before the work began, see events) until
// every envío of the campaign has settled: leido, fallido, omitido or
// cancelado. The envíos are listed after the stream was opened, so an envío
// that settles after the listing does so in an event still to be read; the
// settled states are absorbing, so the order of the events does not matter.
// It returns each envío's settled state.
func (s *browserStack) settle(b *browser, events <-chan engine.Event, cliente, campaign string, timeout time.Duration) map[uint64]engine.State {
	b.t.Helper()
	began := time.Now()
	var list struct {
		Items []struct {
			Seq    uint64       `json:"seq"`
			Estado engine.State `json:"estado"`
		} `json:"items"`
		Next string `json:"next"`
	}
	s.call(b.t, "GET", "/api/clientes/"+cliente+"/campaigns/"+campaign+"/envios?limit=1000", nil, &list)
	if list.Next != "" || len(list.Items) == 0 {
		b.fail("every envío settles", fmt.Sprintf("%d envíos listed, next %q: the test expects one page of them", len(list.Items), list.Next))
	}
	last := map[uint64]engine.State{} // every envío's latest known state
	open := 0
	for _, e := range list.Items {
		last[e.Seq] = e.Estado
		if !settled(e.Estado) {
			open++
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for open > 0 {
		select {
		case ev, ok := <-events:
			if !ok {
				b.fail("every envío settles", "the event stream ended")
			}
			was, mine := last[ev.Envio]
			if ev.Type != "envio" || ev.Campaign != campaign || !mine || settled(was) {
				continue
			}
			last[ev.Envio] = ev.To
			if settled(ev.To) {
				open--
			}
		case <-timer.C:
			var waiting []string
			for _, seq := range slices.Sorted(maps.Keys(last)) {
				if st := last[seq]; !settled(st) {
					waiting = append(waiting, fmt.Sprintf("%d:%s", seq, st))
				}
			}
			b.fail("every envío settles", fmt.Sprintf("after %v, %d of %d envíos still unsettled (envío:last state seen) %s", timeout, open, len(last), strings.Join(waiting, " ")))
		}
	}
	b.t.Logf("ok   %-64s %5dms", fmt.Sprintf("every envío of %s settled (%d)", campaign, len(last)), time.Since(began).Milliseconds())
	return last
}

// tally counts states, as the API's conteos do (zeros left out).
func tally(states map[uint64]engine.State) map[string]int {
	m := map[string]int{}
	for _, s := range states {
		m[string(s)]++
	}
	return m
}

// apiCounts is the campaign's stats from the API, its conteos without zeros.
func (s *browserStack) apiCounts(t *testing.T, cliente, campaign string) (counts map[string]int, total int, estado string) {
	t.Helper()
	var stats struct {
		Conteos map[string]int `json:"conteos"`
		Total   int            `json:"total"`
		Estado  string         `json:"estado"`
	}
	s.call(t, "GET", "/api/clientes/"+cliente+"/campaigns/"+campaign+"/stats", nil, &stats)
	counts = map[string]int{}
	for st, n := range stats.Conteos {
		if n != 0 {
			counts[st] = n
		}
	}
	return counts, stats.Total, stats.Estado
}

// pageCounts waits until the page's #counts shows want (state -> n, zeros
// left out), or for timeout, and returns what it shows. The wait is a
// MutationObserver on #counts, which the page re-renders on each envío
// event and each stats re-read: no polling.
func (b *browser) pageCounts(want map[string]int, timeout time.Duration) map[string]int {
	b.t.Helper()
	began := time.Now()
	w, _ := json.Marshal(want)
	expr := fmt.Sprintf(`new Promise((resolve) => {
  const want = %s, box = document.querySelector('#counts');
  const shown = () => {
    const m = {};
    for (const d of box.querySelectorAll('[data-state]')) {
      const n = Number(d.querySelector('dd')?.dataset.n || 0);
      if (n) m[d.dataset.state] = n;
    }
    return m;
  };
  const same = (m) => Object.keys(m).length === Object.keys(want).length && Object.keys(want).every((k) => m[k] === want[k]);
  if (same(shown())) { resolve(shown()); return; }
  let obs, timer;
  const done = () => { obs.disconnect(); clearTimeout(timer); resolve(shown()); };
  obs = new MutationObserver(() => { if (same(shown())) done(); });
  timer = setTimeout(done, %d);
  obs.observe(box, {childList: true, subtree: true, attributes: true, characterData: true});
})`, w, timeout.Milliseconds())
	ctx, cancel := context.WithTimeout(b.ctx, timeout+10*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]int](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("the page's counts", err.Error())
	}
	b.t.Logf("ok   %-64s %5dms", "the page's counts, once they match or time out", time.Since(began).Milliseconds())
	return got
}

// The CSV the operator uploads: 12 good rows, then rows the importer
// must reject (bad phone, missing cells) and a duplicate.
func browserCSV() (csv string, good int, rejectedLines []int) {
	var b strings.Builder
	b.WriteString("telefono,nombre,producto\n")
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&b, "+54 9 11 5%03d-%04d,Cliente %d,Plan Hogar\n", i, 1000+i, i+1)
	}
	b.WriteString("no-es-un-telefono,Mal Número,Plan Hogar\n") // line 14
	b.WriteString("+54 9 11 5000-1000,Repetido,Plan Hogar\n")  // line 15: duplicate of line 2
	b.WriteString("12,Corto,Plan Pyme\n")                      // line 16
	b.WriteString("+54 9 11 4444-5555\n")                      // line 17: missing cells
	return b.String(), 12, []int{14, 16, 17}
}

// browser is a headless Chromium tab with the test's helpers: every step
// is logged with its duration; a failing step saves a screenshot; errors
// thrown in the page fail the test at the end.
type browser struct {
	t         *testing.T
	bctx, ctx context.Context
	docs      string // LEADMASTER_SCREENSHOTS: where doc screenshots go ("" = none)
	artifacts string // where a failure screenshot goes

	mu         sync.Mutex
	jsErrors   []string
	qrRequests int
}

// newBrowser starts Chromium, or skips the test when there is none.
func newBrowser(t *testing.T) *browser {
	bin := chromiumPath()
	if bin == "" {
		t.Skip("no chromium binary found (apt-get install chromium, or set LEADMASTER_CHROMIUM): the page's browser test cannot run")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "es-AR"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	b := &browser{t: t, bctx: bctx, ctx: ctx, docs: os.Getenv("LEADMASTER_SCREENSHOTS"), artifacts: os.Getenv("LEADMASTER_ARTIFACTS")}
	if b.artifacts == "" {
		b.artifacts = os.TempDir()
	}
	// Page errors fail the test; QR requests are counted (the QR must not
	// be polled).
	// The browser belongs to bctx (the first use of a chromedp context
	// starts it), so a step that times out still leaves it there for the
	// failure screenshot.
	err := chromedp.Listen(bctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.jsErrors = append(b.jsErrors, fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value))
				}
				b.jsErrors = append(b.jsErrors, "console.error: "+strings.Join(parts, " "))
			}
		case *network.EventRequestWillBeSent:
			if strings.Contains(ev.Request.URL, "/session/qr") {
				b.qrRequests++
			}
		}
	})
	if err != nil {
		t.Fatalf("start chromium (%s): %v", bin, err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.jsErrors) > 0 {
			t.Errorf("errors in the page:\n%s", strings.Join(b.jsErrors, "\n"))
		}
	})
	return b
}

func (b *browser) qrCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.qrRequests
}

func (b *browser) shoot(name string) string {
	sctx, c := context.WithTimeout(b.bctx, 10*time.Second)
	defer c()
	buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(b.artifacts, name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	return p
}

func (b *browser) fail(name, msg string) {
	b.t.Helper()
	p := b.shoot(fmt.Sprintf("leadmaster-browser-failure-%d.png", time.Now().UnixNano()))
	loc, _ := chromedp.Run(b.bctx, chromedp.Location())
	b.mu.Lock()
	errs := strings.Join(b.jsErrors, "\n")
	b.mu.Unlock()
	b.t.Fatalf("step %q: %s (page %s; screenshot %s)\npage errors:\n%s", name, msg, loc, p, errs)
}

func (b *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	began := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, 170*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(name, err.Error())
	}
	b.t.Logf("ok   %-64s %5dms", name, time.Since(began).Milliseconds())
}

func (b *browser) check(name string, ok bool, format string, args ...any) {
	b.t.Helper()
	if !ok {
		b.fail(name, fmt.Sprintf(format, args...))
	}
	b.t.Logf("ok   %s", name)
}

func browserEval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail(expr, err.Error())
	}
	return v
}

func (b *browser) evalInt(expr string) int       { b.t.Helper(); return browserEval[int](b, expr) }
func (b *browser) evalBool(expr string) bool     { b.t.Helper(); return browserEval[bool](b, expr) }
func (b *browser) evalString(expr string) string { b.t.Helper(); return browserEval[string](b, expr) }

// num is the data-n of the element sel (-1 if none).
func (b *browser) num(sel string) int {
	b.t.Helper()
	return b.evalInt(fmt.Sprintf(`Number(document.querySelector(%q)?.dataset.n ?? -1)`, sel))
}

// waitJS waits until the expression is true (checked every 100ms).
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))
}

// doc saves a screenshot under LEADMASTER_SCREENSHOTS (docs/), if set.
func (b *browser) doc(name string) {
	b.t.Helper()
	if b.docs == "" {
		return
	}
	b.step("screenshot "+name, chromedp.Sleep(300*time.Millisecond))
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.docs, name), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// docSizes saves name-escritorio.png and name-telefono.png.
func (b *browser) docSizes(name string) {
	b.t.Helper()
	if b.docs == "" {
		return
	}
	b.doc(name + "-escritorio.png")
	b.step("phone size", chromedp.EmulateViewport(390, 844))
	b.doc(name + "-telefono.png")
	b.step("desktop size", chromedp.EmulateViewport(1280, 900))
}

// parallel lets the browser tests run side by side. libsignal sets up its
// global logger lazily, without a lock, on first use (wasim's Start signs a
// certificate): that happens here first, before any test runs in parallel.
func parallel(t *testing.T) {
	signallog.Debug("browser tests")
	t.Parallel()
}

func TestBrowser(t *testing.T) {
	parallel(t)
	b := newBrowser(t)
	start := time.Now()
	st := startBrowserStack(t)

	// A fresh cliente, as `leadmaster demo` makes one, and a campaña paced
	// so that pause and resume can be seen (about 4 sends a second).
	const cliente, campaign = "demo", "bienvenida"
	st.call(t, "POST", "/api/clientes", map[string]any{"id": cliente, "nombre": "Demo Pyme", "region": "AR"}, nil)
	st.call(t, "POST", "/api/clientes/"+cliente+"/campaigns", map[string]any{
		"id": campaign, "nombre": "Bienvenida", "plantilla": "Hola {{nombre}}, te escribimos por {{producto}}.",
		"ritmo": map[string]any{"min_delay": "200ms", "max_delay": "300ms"},
	}, nil)
	progress := func() int { return b.evalInt(`Number(document.querySelector('#campaign-progress').dataset.done)`) }

	// 1. Log in with the one-time link's token; the hash is cleared.
	b.step("log in with #token= and land on the demo cliente",
		chromedp.Navigate(st.url+"/#token="+st.token),
		chromedp.WaitVisible(`#app`),
		chromedp.WaitVisible(`#clientes button[data-cliente="demo"][aria-current="true"]`),
	)
	hash, stored := b.evalString(`location.hash`), b.evalString(`sessionStorage.getItem('lm.token')`)
	b.check("token taken from the link, hash cleared", hash == "" && stored == st.token, "hash %q, stored token %q", hash, stored)
	b.evalBool(`window.__sameDocument = true`)

	// 2. The QR of the fresh cliente, as an image.
	b.step("see the QR of the fresh cliente as an image",
		chromedp.WaitVisible(`#qr-img`),
		waitJS(`document.querySelector('#qr-img').complete && document.querySelector('#qr-img').naturalWidth > 0`),
		chromedp.WaitVisible(`#session-badge[data-state="QR_REQUIRED"]`),
		chromedp.WaitVisible(`#demo-scan`),
	)
	qrWidth := b.evalInt(`document.querySelector('#qr-img').naturalWidth`)
	b.check("QR image decoded", qrWidth >= 200, "QR image is %dpx wide", qrWidth)
	b.docSizes("sesion-qr")

	// 3. The simulated phone scans it; READY arrives over SSE, no reload.
	b.step("click the simulated scan and see READY without a reload",
		chromedp.Click(`#demo-scan`),
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
		chromedp.WaitNotVisible(`#qr-box`),
		chromedp.WaitVisible(`#session-logout`),
	)
	b.check("no reload", b.evalBool(`window.__sameDocument === true`), "the page was reloaded")
	qrAtReady := b.qrCount()

	// 4. Upload a CSV with bad rows and see them reported.
	csv, good, bad := browserCSV()
	csvPath := filepath.Join(t.TempDir(), "contactos.csv")
	if err := os.WriteFile(csvPath, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	b.step("open the campaña",
		chromedp.Click(`#campaign-list li[data-campaign="bienvenida"] button`),
		chromedp.WaitVisible(`#campaign-estado[data-state="borrador"]`),
	)
	b.step("upload the CSV and see the report of its bad rows",
		chromedp.SetUploadFiles(`#csv-file`, []string{csvPath}),
		chromedp.Click(`#upload-form button[type="submit"]`),
		chromedp.WaitVisible(`#report`),
		chromedp.WaitVisible(`#report-rechazos`),
	)
	lines := b.evalString(`[...document.querySelectorAll('#report-rechazos tbody tr td:first-child')].map(td => td.textContent).join(',')`)
	b.check("rejected rows listed by line", lines == strings.Trim(strings.Join(strings.Fields(fmt.Sprint(bad)), ","), "[]"), "rejected lines %q, want %v", lines, bad)
	b.check("accepted count", b.num(`#report [data-key="aceptados"] dd`) == good, "aceptados %d, want %d", b.num(`#report [data-key="aceptados"] dd`), good)
	b.check("duplicate count", b.num(`#report [data-key="duplicados"] dd`) == 1, "duplicados %d, want 1", b.num(`#report [data-key="duplicados"] dd`))
	upDone := b.evalBool(`(() => { const p = document.querySelector('#upload-progress'); return p.value === p.max && p.dataset.done === '1'; })()`)
	impDone := b.evalBool(`(() => { const p = document.querySelector('#import-progress'); return p.value === p.max && p.dataset.done === '1'; })()`)
	b.check("upload and import progress bars full", upDone && impDone, "upload bar done %v, import bar done %v", upDone, impDone)
	b.step("the campaña shows its envíos pendiente",
		waitJS(fmt.Sprintf(`document.querySelector('#campaign-progress').dataset.total === '%d'`, good)),
		waitJS(fmt.Sprintf(`document.querySelector('#counts [data-state="pendiente"] dd').dataset.n === '%d'`, good)),
	)
	b.docSizes("campana-reporte")

	// 5. Start; pause while it runs; resume; it ends with every count final.
	// The test follows the envíos on the API's event stream, opened before
	// the start.
	events := st.events(t, cliente)
	b.step("start the campaña and watch the progress bar move",
		chromedp.Click(`#act-start`),
		chromedp.WaitVisible(`#campaign-estado[data-state="activa"]`),
		waitJS(`Number(document.querySelector('#campaign-progress').dataset.done) >= 3`),
	)
	b.step("pause it",
		chromedp.Click(`#act-pause`),
		chromedp.WaitVisible(`#campaign-estado[data-state="pausada"]`),
		chromedp.WaitVisible(`#act-resume`),
		chromedp.Sleep(1500*time.Millisecond), // a send in flight when paused still ends
	)
	donePaused := progress()
	b.step("paused: wait", chromedp.Sleep(1500*time.Millisecond))
	doneLater := progress()
	b.check("paused: nothing more is sent", doneLater == donePaused && donePaused < good, "done %d after pausing, %d later, of %d", donePaused, doneLater, good)
	b.step("resume it and watch the bar reach the end",
		chromedp.Click(`#act-resume`),
		chromedp.WaitVisible(`#campaign-estado[data-state="activa"]`),
		waitJS(fmt.Sprintf(`document.querySelector('#campaign-progress').dataset.done === '%d'`, good)),
		chromedp.WaitVisible(`#campaign-estado[data-state="terminada"]`),
	)
	// Receipts keep coming after the last send: the counts are final when
	// the event stream has shown every envío read (a lost receipt fails
	// here, naming the envío). Then the API is asked once, and the page
	// must show what it says.
	final := st.settle(b, events, cliente, campaign, 60*time.Second)
	api, total, estado := st.apiCounts(t, cliente, campaign)
	want := map[string]int{"leido": good}
	b.check("every envío read: the counts are final, as the API says", maps.Equal(tally(final), want) && maps.Equal(api, want) && total == good && estado == "terminada",
		"envíos settled %v, API counts %v, total %d, estado %s; want %v", tally(final), api, total, estado, want)
	page := b.pageCounts(api, 20*time.Second)
	b.check("the page's counts are the API's", maps.Equal(page, api), "page shows %v, API says %v", page, api)
	b.step("the chart counts every envío sent",
		waitJS(fmt.Sprintf(`document.querySelector('#chart [data-series="sent"]')?.textContent === '%d'`, good)),
		waitJS(fmt.Sprintf(`document.querySelector('#chart [data-series="read"]')?.textContent === '%d'`, good)),
	)
	polylines := b.evalInt(`document.querySelectorAll('#chart svg polyline').length`)
	b.check("the chart draws sent, delivered and read", polylines == 3, "%d series drawn, want 3", polylines)
	qrAfter := b.qrCount()
	b.check("the QR was fetched on events, not polled", qrAfter == qrAtReady && qrAtReady <= 2, "QR requests: %d until READY, %d at the end", qrAtReady, qrAfter)
	low := b.evalString(contrastJS)
	b.check("the finished campaign's view: text contrast at least WCAG AA", low == "", "low contrast:\n%s", low)
	b.doc("campana-terminada-escritorio.png")

	page = b.pageCounts(api, 0)
	b.check("the page's counts stay the API's", maps.Equal(page, api), "page shows %v, API says %v", page, api)

	// 6. English switch, and the phone-sized layout.
	b.step("switch to English", chromedp.Click(`#lang`))
	heading := b.evalString(`document.querySelector('#campaigns-h').textContent`)
	b.check("English headings", heading == "Campaigns", "heading %q", heading)
	b.doc("campaign-finished-desktop-en.png")
	b.step("back to Spanish", chromedp.Click(`#lang`), chromedp.WaitVisible(`#campaign-estado[data-state="terminada"]`))
	b.step("phone size", chromedp.EmulateViewport(390, 844), chromedp.Sleep(300*time.Millisecond))
	b.check("phone size: nothing wider than the screen", b.evalBool(`document.documentElement.scrollWidth <= window.innerWidth`),
		"the page scrolls sideways at 390px (%dpx wide)", b.evalInt(`document.documentElement.scrollWidth`))
	b.doc("campana-terminada-telefono.png")
	b.step("the editor with its live preview",
		chromedp.Click(`#campaign-h button`),
		chromedp.WaitVisible(`#editor`),
		waitJS(`document.querySelector('#preview').dataset.state === 'ok' && document.querySelector('#preview').textContent.includes('Ana')`),
	)
	b.step("a Lua syntax error shows with its line, live",
		chromedp.SendKeys(`#ed-script`, "function personalize(e)\n  return e.nombre ..\nend"),
		waitJS(`/(Línea|Line) \d+/.test(document.querySelector('#ed-script-error').textContent)`),
	)
	b.step("fixed script: the preview is back",
		waitJS(`(() => { const s = document.querySelector('#ed-script'); s.value = ''; s.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`),
		waitJS(`document.querySelector('#preview').dataset.state === 'ok' && document.querySelector('#ed-script-error').textContent === ''`),
	)
	b.doc("editor-telefono.png")
	b.step("desktop editor", chromedp.EmulateViewport(1280, 900), chromedp.ScrollIntoView(`#editor`))
	b.doc("editor-escritorio.png")

	// 7. A second cliente made from the page, linked by pairing code, then
	// logged out and shown a new QR.
	b.step("create a cliente from the page's form",
		chromedp.Click(`#cliente-new summary`),
		chromedp.SendKeys(`#cl-id`, "tienda"),
		chromedp.SendKeys(`#cl-nombre`, "Tienda Norte"),
		chromedp.Click(`#cliente-form button[type="submit"]`),
		chromedp.WaitVisible(`#clientes button[data-cliente="tienda"][aria-current="true"]`),
		chromedp.WaitVisible(`#session-badge[data-state="QR_REQUIRED"]`),
		waitJS(`document.querySelector('#qr-img').naturalWidth > 0`),
	)
	const pairPhone = "+5491155550000"
	b.step("ask for a pairing code",
		chromedp.SendKeys(`#pair-phone`, pairPhone),
		chromedp.Click(`#pair-form button[type="submit"]`),
		waitJS(`/[A-Z0-9]{4}-?[A-Z0-9]{4}/.test(document.querySelector('#pair-code').textContent)`),
	)
	code := b.evalString(`document.querySelector('#pair-code').textContent.match(/[A-Z0-9]{4}-?[A-Z0-9]{4}/)[0]`)
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	_, err := st.sim.EnterPairCode(pctx, pairPhone, code)
	pcancel()
	b.check("the phone accepts the code shown", err == nil, "EnterPairCode(%s): %v", code, err)
	b.step("READY without a reload",
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
		chromedp.WaitNotVisible(`#qr-box`),
	)
	b.check("still the same page", b.evalBool(`window.__sameDocument === true`), "the page was reloaded")
	b.evalBool(`(window.confirm = () => true, true)`) // the logout asks first
	b.step("log out, reconnect, and a new QR shows",
		chromedp.Click(`#session-logout`),
		chromedp.WaitVisible(`#session-badge[data-state="LOGGED_OUT"]`),
		chromedp.Click(`#session-start`),
		chromedp.WaitVisible(`#session-badge[data-state="QR_REQUIRED"]`),
		chromedp.WaitVisible(`#qr-img`),
		waitJS(`document.querySelector('#qr-img').naturalWidth > 0`),
	)

	b.step("a new campaña from the editor, its preview, then cancelled",
		chromedp.Click(`#campaign-new`),
		chromedp.WaitVisible(`#editor`),
		chromedp.SendKeys(`#ed-id`, "promo"),
		chromedp.SendKeys(`#ed-nombre`, "Promo de invierno"),
		chromedp.Click(`#editor-form button[type="submit"]`),
		chromedp.WaitVisible(`#campaign-list li[data-campaign="promo"]`),
		chromedp.WaitVisible(`#campaign-estado[data-state="borrador"]`),
		waitJS(`document.querySelector('#preview').dataset.state === 'ok' && document.querySelector('#preview').textContent.includes('Ana')`),
		chromedp.Click(`#act-cancel`),
		chromedp.WaitVisible(`#campaign-estado[data-state="cancelada"]`),
	)

	// 8. Sign out; the token form logs in again with the keyboard only.
	b.step("sign out, and a wrong token is refused",
		chromedp.Click(`#signout`),
		chromedp.WaitVisible(`#login-form`),
		chromedp.SendKeys(`#token`, "not-the-token\r"),
		waitJS(`document.querySelector('#login-error').textContent.length > 0`),
	)
	b.evalBool(`(document.querySelector('#token').value = '', true)`)
	b.step("type the token and press Enter",
		chromedp.SendKeys(`#token`, st.token+"\r"),
		chromedp.WaitVisible(`#app`),
		waitJS(`document.querySelector('#session-badge').textContent.length > 0`),
	)
	unlabeled := b.evalString(`[...document.querySelectorAll('input, select, textarea')].filter(el => !el.labels?.length && !el.getAttribute('aria-label')).map(el => el.id || el.name || el.outerHTML).join(' ')`)
	b.check("every form control has a label", unlabeled == "", "unlabeled: %s", unlabeled)
	unnamed := b.evalString(`[...document.querySelectorAll('button')].filter(el => !(el.textContent.trim() || el.getAttribute('aria-label'))).map(el => el.id || el.outerHTML).join(' ')`)
	b.check("every button has a name", unnamed == "", "unnamed: %s", unnamed)
	b.evalBool(`(document.body.append(Object.assign(document.createElement('p'), {id: 'lm-contrast-probe', textContent: 'probe', style: 'color:#888;background:#999'})), true)`)
	probe := b.evalString(contrastJS)
	b.evalBool(`(document.querySelector('#lm-contrast-probe').remove(), true)`)
	b.check("the contrast check finds a grey-on-grey probe", strings.Contains(probe, "lm-contrast-probe"), "probe not reported: %q", probe)
	low = b.evalString(contrastJS)
	b.check("text contrast is at least WCAG AA (4.5:1, 3:1 for large text)", low == "", "low contrast:\n%s", low)

	// 9. A cliente's API key sees its own cliente only: no other clientes,
	// no journal, no "new cliente".
	var key struct {
		Key string `json:"key"`
	}
	st.call(t, "POST", "/api/clientes/demo/keys", nil, &key)
	b.step("sign in with the demo cliente's API key",
		chromedp.Click(`#signout`),
		chromedp.WaitVisible(`#login-form`),
		chromedp.SendKeys(`#token`, key.Key+"\r"),
		chromedp.WaitVisible(`#clientes button[data-cliente="demo"][aria-current="true"]`),
		chromedp.WaitVisible(`#campaign-estado[data-state="terminada"]`),
	)
	own := b.evalString(`[...document.querySelectorAll('#clientes button')].map(x => x.dataset.cliente).join(',')`)
	hidden := b.evalBool(`document.querySelector('#journal-sec').hidden && document.querySelector('#cliente-new').hidden`)
	b.check("a cliente key sees its own cliente only", own == "demo" && hidden, "clientes %q, journal and new-cliente hidden: %v", own, hidden)

	t.Logf("browser test done in %v (QR fetched %d times)", time.Since(start).Round(time.Millisecond), qrAfter)
}

// TestBrowserDemo is what a new user does: `leadmaster demo` prints a link,
// the page opens on the demo cliente with its QR, the simulated phone scans
// it from the page's button, and the example campaign (the embedded
// contactos.csv and demo.lua) runs to its end while the page follows it,
// replies and opt-outs included.
func TestBrowserDemo(t *testing.T) {
	parallel(t)
	b := newBrowser(t)
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"demo", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--autoscan", "0",
			"--min-delay", "50ms", "--max-delay", "150ms", "--log-level", "warn", "--log-format", "text"},
			strings.NewReader(""), w, testWriter{t})
		w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("leadmaster demo exited with %d", code)
		}
	})
	link := make(chan string, 1)
	go func() { // the demo's output: find the link, keep draining
		buf := make([]byte, 4096)
		var seen strings.Builder
		sent := false
		for {
			n, err := out.Read(buf)
			seen.Write(buf[:n])
			if i := strings.Index(seen.String(), "open http"); !sent && i >= 0 {
				rest := seen.String()[i+len("open "):]
				if j := strings.IndexAny(rest, " \n"); j > 0 {
					link <- rest[:j]
					sent = true
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var url string
	select {
	case url = <-link:
	case <-time.After(30 * time.Second):
		t.Fatal("leadmaster demo printed no link")
	}
	token := url[strings.Index(url, "#token=")+len("#token="):]
	api := &browserStack{url: url[:strings.Index(url, "/#")], token: token}
	events := api.events(t, "demo") // before the scan starts the campaign

	b.step("open the printed link: the demo cliente with its QR",
		chromedp.Navigate(url),
		chromedp.WaitVisible(`#clientes button[data-cliente="demo"][aria-current="true"]`),
		chromedp.WaitVisible(`#session-badge[data-state="QR_REQUIRED"]`),
		waitJS(`document.querySelector('#qr-img').complete && document.querySelector('#qr-img').naturalWidth > 0`),
		chromedp.WaitVisible(`#demo-scan`),
	)
	b.step("scan with the simulated phone: READY, and the example campaign runs to its end",
		chromedp.Click(`#demo-scan`),
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
		chromedp.WaitVisible(`#campaign-estado[data-state="terminada"]`),
		waitJS(`document.querySelector('#campaign-progress').dataset.done === document.querySelector('#campaign-progress').dataset.total`),
		waitJS(`document.querySelectorAll('#replies-table tr.baja').length > 0`),
	)
	// Receipts and opt-outs keep coming after the last send: the counts are
	// final when the event stream has shown every envío settled; then the
	// API is asked once, and the page must show what it says.
	final := api.settle(b, events, "demo", "bienvenida", 60*time.Second)
	api1, total, _ := api.apiCounts(t, "demo", "bienvenida")
	b.check("the events and the API agree on the final counts", total > 0 && total == len(final) && maps.Equal(tally(final), api1) && api1["pendiente"] == 0 && api1["enviando"] == 0,
		"envíos settled %v, API counts %v, total %d", tally(final), api1, total)
	page := b.pageCounts(api1, 20*time.Second)
	b.check("the page's counts are the API's", maps.Equal(page, api1), "page shows %v, API says %v", page, api1)
	t.Logf("demo campaign: %v", api1)
	bajas := b.evalInt(`document.querySelectorAll('#replies-table tr.baja').length`)
	journal := b.evalInt(`document.querySelectorAll('#journal-table tbody tr').length`)
	b.check("replies with their opt-outs, and the journal tail", bajas > 0 && journal > 0, "%d bajas, %d journal rows", bajas, journal)
	b.docSizes("demo-terminada")
}

// TestBrowserQRRotation leaves a fresh cliente's QR unscanned until
// whatsmeow shows the next code (60 s): the page replaces the image by
// itself, on the session event, with exactly one more request, and the
// new code is the one the phone scans.
func TestBrowserQRRotation(t *testing.T) {
	parallel(t)
	b := newBrowser(t)
	st := startBrowserStack(t)
	st.call(t, "POST", "/api/clientes", map[string]any{"id": "rota", "nombre": "Rotación", "region": "AR"}, nil)
	b.step("open the page on the fresh cliente: its first QR",
		chromedp.Navigate(st.url+"/#token="+st.token),
		chromedp.WaitVisible(`#clientes button[data-cliente="rota"][aria-current="true"]`),
		waitJS(`document.querySelector('#qr-img').naturalWidth > 0 && document.querySelector('#qr-img').dataset.qr.length > 0`),
	)
	first := b.evalString(`document.querySelector('#qr-img').dataset.qr`)
	b.evalBool(`window.__sameDocument = true`)
	b.step("wait for whatsmeow's next code: the image changes by itself",
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('#qr-img').dataset.qr !== %q && document.querySelector('#qr-img').naturalWidth > 0`, first),
			chromedp.WithPollingInterval(250*time.Millisecond), chromedp.WithPollingTimeout(160*time.Second)),
	)
	b.check("no reload, one request per QR", b.evalBool(`window.__sameDocument === true`) && b.qrCount() == 2, "QR requests: %d", b.qrCount())
	b.step("the simulated phone scans the new code: READY",
		chromedp.Click(`#demo-scan`),
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
	)
}

// contrastJS lists the visible text whose contrast with its background is
// below WCAG AA (4.5:1; 3:1 for large text), skipping disabled controls.
const contrastJS = `(() => {
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bg = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) {
    const el = n.parentElement;
    if (!n.textContent.trim() || seen.has(el) || !el.getClientRects().length || el.closest('[hidden], :disabled, svg, option')) continue;
    seen.add(el);
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden') continue;
    const a = lum(rgb(st.color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (!(ratio >= need)) bad.push(ratio.toFixed(2) + ' ' + el.tagName + (el.id ? '#' + el.id : '') + ' "' + n.textContent.trim().slice(0, 40) + '"');
  }
  return bad.join('\n');
})()`
