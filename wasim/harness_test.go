package wasim_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	_ "modernc.org/sqlite" // pure-Go driver "sqlite" for whatsmeow's sqlstore

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"

	"leadmaster/wasim"
)

// waitTimeout bounds every wait on an event; a healthy run needs a fraction of it.
const waitTimeout = 20 * time.Second

// checkLeaks fails t if goroutines or sockets outlive the test. Register it first so it runs
// after every other cleanup.
func checkLeaks(t testing.TB) {
	t.Helper()
	before := openSockets(t)
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// The client's frame reader that got a frame after Disconnect blocks on it for good
		// (a whatsmeow leak, not ours: engine/wa doc.go Caveats).
		goleak.VerifyNone(t, goleak.IgnoreTopFunction("go.mau.fi/whatsmeow/socket.(*FrameSocket).frameComplete"))
		// Sockets close asynchronously in the kernel's view of our fds only via our own
		// goroutines, which goleak has just seen finish: a plain comparison suffices.
		if after := openSockets(t); len(after) > len(before) {
			t.Errorf("sockets left open: before %d, after %d: %v", len(before), len(after), after)
		}
	})
}

// openSockets lists the socket file descriptors of this process (Linux).
func openSockets(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list fds: %v", err)
	}
	var out []string
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, "socket:") {
			out = append(out, target)
		}
	}
	return out
}

// startSim starts an in-process simulator closed at the end of the test.
func startSim(t testing.TB, opts wasim.Options) *wasim.Server {
	t.Helper()
	sim := wasim.New(opts)
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	})
	return sim
}

// logLine is one line of a whatsmeow client's log.
type logLine struct{ level, module, msg string }

// captureLog is a waLog.Logger that keeps WARN and ERROR lines for assertions (and prints
// everything with WASIM_TRACE=1).
type captureLog struct {
	t       testing.TB
	module  string
	mu      *sync.Mutex
	lines   *[]logLine
	changed *chan struct{} // closed and replaced on every kept line
}

func newCaptureLog(t testing.TB) *captureLog {
	ch := make(chan struct{})
	return &captureLog{t: t, module: "Client", mu: &sync.Mutex{}, lines: &[]logLine{}, changed: &ch}
}

// waitLine blocks until a WARN/ERROR line containing s has been logged.
func (l *captureLog) waitLine(s string) {
	l.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, ln := range *l.lines {
			if strings.Contains(ln.msg, s) {
				l.mu.Unlock()
				return
			}
		}
		ch := *l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			l.t.Fatalf("timed out waiting for client log line %q", s)
		}
	}
}

func (l *captureLog) add(level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("WASIM_TRACE") == "1" {
		l.t.Logf("%s [%s] %s", level, l.module, msg)
	}
	if level == "WARN" || level == "ERROR" {
		l.mu.Lock()
		*l.lines = append(*l.lines, logLine{level, l.module, msg})
		close(*l.changed)
		*l.changed = make(chan struct{})
		l.mu.Unlock()
	}
}

func (l *captureLog) Debugf(f string, a ...any) {
	if os.Getenv("WASIM_TRACE") == "1" {
		l.add("DEBUG", f, a...)
	}
}
func (l *captureLog) Infof(f string, a ...any)  { l.add("INFO", f, a...) }
func (l *captureLog) Warnf(f string, a ...any)  { l.add("WARN", f, a...) }
func (l *captureLog) Errorf(f string, a ...any) { l.add("ERROR", f, a...) }
func (l *captureLog) Sub(m string) waLog.Logger {
	c := *l
	c.module = l.module + "/" + m
	return &c
}

// problems returns the WARN/ERROR lines not matched by any of the allowed substrings.
func (l *captureLog) problems(allowed ...string) []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logLine
Lines:
	for _, ln := range *l.lines {
		for _, a := range allowed {
			if strings.Contains(ln.msg, a) {
				continue Lines
			}
		}
		out = append(out, ln)
	}
	return out
}

// count returns how many WARN/ERROR lines contain s.
func (l *captureLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ln := range *l.lines {
		if strings.Contains(ln.msg, s) {
			n++
		}
	}
	return n
}

// readErr is the one line any server-side close makes the client log.
const readErr = "Error reading from websocket"

// testClient is a real, unmodified whatsmeow client on a sqlstore (pure-Go SQLite) in a temp
// dir, pointed at a simulator, with its events recorded in order.
type testClient struct {
	t         testing.TB
	cli       *whatsmeow.Client
	container *sqlstore.Container
	log       *captureLog

	mu      sync.Mutex
	evs     []any
	changed chan struct{}
	cursor  int // index of the next event waitFor looks at
}

// newTestClient opens (or reopens) the store at dbPath and creates a client for its first
// device, configured for sim. It disconnects and closes at the end of the test.
func newTestClient(t testing.TB, sim *wasim.Server, dbPath string) *testClient {
	t.Helper()
	tc := newTestClientFor(t, dbPath, func(cli *whatsmeow.Client) { sim.Configure(cli) })
	return tc
}

func newTestClientFor(t testing.TB, dbPath string, configure func(*whatsmeow.Client)) *testClient {
	t.Helper()
	ctx := context.Background()
	dsn := "file:" + dbPath + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)"
	container, err := sqlstore.New(ctx, "sqlite", dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := container.GetFirstDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, container: container, log: newCaptureLog(t), changed: make(chan struct{})}
	tc.cli = whatsmeow.NewClient(dev, tc.log)
	configure(tc.cli)
	tc.cli.AddEventHandler(tc.record)
	t.Cleanup(tc.close)
	return tc
}

func (tc *testClient) record(evt any) {
	tc.mu.Lock()
	tc.evs = append(tc.evs, evt)
	close(tc.changed)
	tc.changed = make(chan struct{})
	tc.mu.Unlock()
}

// close disconnects the client and closes its store (idempotent).
func (tc *testClient) close() {
	if tc.cli == nil {
		return
	}
	tc.cli.Disconnect()
	if err := tc.container.Close(); err != nil {
		tc.t.Errorf("close store: %v", err)
	}
	tc.cli = nil
}

// abandon closes the client's store without calling Disconnect: for a client whose socket the
// server has closed and that will not reconnect (logged out, replaced). Disconnecting it
// while its reader is still noticing the close races inside whatsmeow (FrameSocket.closed is
// written by Close under a lock and read by readPump without one) and logs "Error sending close to websocket".
func (tc *testClient) abandon() {
	if tc.cli == nil {
		return
	}
	if err := tc.container.Close(); err != nil {
		tc.t.Errorf("close store: %v", err)
	}
	tc.cli = nil
}

// waitFor returns the next recorded event of type T after the previous waitFor's, failing the
// test after waitTimeout. Events of other types are skipped (they stay in tc.all()).
func waitFor[T any](tc *testClient) T {
	tc.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		tc.mu.Lock()
		for tc.cursor < len(tc.evs) {
			e := tc.evs[tc.cursor]
			tc.cursor++
			if v, ok := e.(T); ok {
				tc.mu.Unlock()
				return v
			}
		}
		changed := tc.changed
		tc.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			var zero T
			tc.t.Fatalf("timed out waiting for %s; events so far: %s", reflect.TypeOf(zero), tc.summary())
			return zero
		}
	}
}

// all returns the types of all events recorded so far.
func (tc *testClient) summary() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var names []string
	for _, e := range tc.evs {
		names = append(names, reflect.TypeOf(e).String())
	}
	return strings.Join(names, " ")
}

// countOf returns how many events of type T were recorded.
func countOf[T any](tc *testClient) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	n := 0
	for _, e := range tc.evs {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

// assertCleanLog fails if the client logged WARN/ERROR lines other than the allowed ones.
func (tc *testClient) assertCleanLog(allowed ...string) {
	tc.t.Helper()
	for _, ln := range tc.log.problems(allowed...) {
		tc.t.Errorf("client logged %s [%s] %s", ln.level, ln.module, ln.msg)
	}
}

// waitSim waits for a simulator event after seq.
func waitSim(t testing.TB, sim *wasim.Server, after uint64, kind wasim.EventKind, jid string) wasim.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	e, err := sim.WaitEvent(ctx, after, wasim.Is(kind, jid))
	if err != nil {
		t.Fatalf("waiting for simulator event %s %s: %v", kind, jid, err)
	}
	return e
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// assertNoDevice fails unless the client's store holds no device any more. It reads the
// database, not the client's Store struct, which the client's goroutines write.
func (tc *testClient) assertNoDevice() {
	tc.t.Helper()
	devs, err := tc.container.GetAllDevices(context.Background())
	if err != nil {
		tc.t.Fatal(err)
	}
	if len(devs) != 0 {
		tc.t.Errorf("client store still holds %d device(s): %v", len(devs), devs[0].ID)
	}
}

// The paired fixture: pairing costs a client ~200 ms (seconds under -race), almost all of it
// generating and storing its first prekeys. Tests that only need logged-in clients copy a
// simulator snapshot and client stores paired once per test binary.
var fixture struct {
	once   sync.Once
	dir    string
	phones []string
	err    error
}

// fixtureClients is how many accounts the fixture pairs (15550001111, 15550001112, …).
const fixtureClients = 3

func buildFixture(t testing.TB) {
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "wasim-fixture-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		sim := wasim.New(wasim.Options{SnapshotPath: filepath.Join(dir, "sim.json")})
		if fixture.err = sim.Start(context.Background()); fixture.err != nil {
			return
		}
		defer sim.Close()
		for i := range fixtureClients {
			phone := fmt.Sprintf("1555000111%d", i+1)
			tc := newTestClientFor(t, filepath.Join(dir, fmt.Sprintf("client%d.db", i)), func(cli *whatsmeow.Client) { sim.Configure(cli) })
			seq := sim.LastEvent()
			jid := pairByQR(t, sim, tc, phone)
			waitSim(t, sim, seq, wasim.EventPreKeys, jid.String())
			tc.close()
			fixture.phones = append(fixture.phones, phone)
		}
	})
	if fixture.err != nil || len(fixture.phones) != fixtureClients {
		t.Fatalf("building the paired fixture failed: %v", fixture.err)
	}
}

// removeFixture is called by TestMain.
func removeFixture() {
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
}

// fixtureSim starts a simulator from a copy of the fixture's snapshot: it knows the fixture's
// paired accounts and their devices.
func fixtureSim(t testing.TB, opts wasim.Options) *wasim.Server {
	t.Helper()
	buildFixture(t)
	opts.SnapshotPath = filepath.Join(t.TempDir(), "sim.json")
	copyFile(t, filepath.Join(fixture.dir, "sim.json"), opts.SnapshotPath)
	return startSim(t, opts)
}

// fixtureClient connects the i-th fixture client (a copy of its store) to sim and waits
// until it is logged in.
func fixtureClient(t testing.TB, sim *wasim.Server, i int) *testClient {
	t.Helper()
	db := filepath.Join(t.TempDir(), fmt.Sprintf("client%d.db", i))
	copyFile(t, filepath.Join(fixture.dir, fmt.Sprintf("client%d.db", i)), db)
	tc := newTestClient(t, sim, db)
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](tc)
	return tc
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitCount waits until at least n events of type T have been recorded in total.
func waitCount[T any](tc *testClient, n int) {
	tc.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		tc.mu.Lock()
		got := 0
		for _, e := range tc.evs {
			if _, ok := e.(T); ok {
				got++
			}
		}
		changed := tc.changed
		tc.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			var zero T
			tc.t.Fatalf("timed out waiting for %d %s events (have %d)", n, reflect.TypeOf(zero), got)
		}
	}
}

// countSim counts the simulator's events of kind k for jid after seq.
func countSim(sim *wasim.Server, after uint64, k wasim.EventKind, jid string) int {
	n := 0
	for _, e := range sim.Events(after) {
		if wasim.Is(k, jid)(e) {
			n++
		}
	}
	return n
}

// waitReceiptAcked waits until the client acked the simulator's receipt ("delivered" or
// "read") for message id: after that the client sends nothing more about it.
func waitReceiptAcked(t testing.TB, sim *wasim.Server, id, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := sim.WaitEvent(ctx, 0, func(e wasim.Event) bool {
		return e.Kind == wasim.EventReceipt && e.Detail == id+" "+typ
	}); err != nil {
		t.Fatalf("receipt %s %s not acked: %v", typ, id, err)
	}
}

// sync makes one request the client waits for (an IsOnWhatsApp of its own number). The
// client reads the server's frames in order, so when it returns the client has read every
// answer the simulator sent before it: a test that saw the simulator answer a background IQ
// (EventClientToken) calls it before dropping or closing the connection.
func (tc *testClient) sync() {
	tc.t.Helper()
	if _, err := tc.cli.IsOnWhatsApp(testCtx(tc.t), []string{"+" + tc.cli.Store.ID.User}); err != nil {
		tc.t.Fatalf("sync round trip: %v", err)
	}
}
