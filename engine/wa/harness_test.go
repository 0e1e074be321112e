package wa_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"leadmaster/engine"
	"leadmaster/engine/wa"
	"leadmaster/kv"
	"leadmaster/kv/devicestore"
	"leadmaster/wasim"
)

// waitTimeout bounds every wait on an event; a healthy run needs a fraction of it.
const waitTimeout = 20 * time.Second

// checkLeaks fails t if goroutines outlive the test. Register it first so it
// runs after every other cleanup (goleak retries for a while: whatsmeow ends
// some goroutines asynchronously after Disconnect).
//
// whatsmeow's frame reader that got a frame after Disconnect stopped its
// consumer blocks on it for good (socket.FrameSocket.frameComplete: a
// whatsmeow leak, doc.go Caveats). The 2026 protocol makes it common: the
// server's privacy-token notifications and post-login answers can arrive
// while a test closes its client. Only that goroutine is tolerated; any
// other leak still fails.
func checkLeaks(t *testing.T, opts ...goleak.Option) {
	t.Helper()
	opts = append(opts, goleak.IgnoreTopFunction("go.mau.fi/whatsmeow/socket.(*FrameSocket).frameComplete"))
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		goleak.VerifyNone(t, opts...)
	})
}

// startSim starts an in-process simulator closed at the end of the test.
func startSim(t *testing.T) *wasim.Server {
	t.Helper()
	sim := wasim.New(wasim.Options{})
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

// openDB opens DATA/leadmaster.db in dir; the returned func closes it once
// (also at cleanup) after checking the journal.
func openDB(t *testing.T, dir string) (*kv.DB, func()) {
	t.Helper()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	closeDB := func() {
		once.Do(func() {
			rep, err := db.Verify(context.Background(), nil)
			if err != nil || !rep.OK {
				t.Errorf("journal verify: %+v %v", rep, err)
			}
			if err := db.Close(); err != nil {
				t.Errorf("close db: %v", err)
			}
		})
	}
	t.Cleanup(closeDB)
	return db, closeDB
}

func mustCliente(t *testing.T, db *kv.DB, id string) {
	t.Helper()
	if err := db.CreateCliente(context.Background(), engine.Cliente{ID: id, Name: id, DefaultRegion: "US"}); err != nil {
		t.Fatal(err)
	}
}

// recorder is the test's engine.Inbound: it keeps everything it is told
// and wakes waiters. Session events go first to a real engine on the
// test's data file (not run: it sends nothing), which journals them,
// records the device of a pairing or a logout and pauses a logged-out
// cliente's campaigns, as in the product.
type recorder struct {
	eng *engine.Engine // nil without a data file

	mu       sync.Mutex
	sessions []engine.SessionEvent
	receipts []engine.Receipt
	replies  []engine.Reply
	reach    []engine.ReachNotice
	changed  chan struct{}
}

func newRecorder(db *kv.DB) *recorder {
	r := &recorder{changed: make(chan struct{})}
	if db != nil {
		r.eng = engine.New(db, nil, engine.Config{Logger: testLogger()})
	}
	return r
}

func (r *recorder) wake() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) SessionChanged(ev engine.SessionEvent) {
	if r.eng != nil {
		r.eng.SessionChanged(ev)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, ev)
	r.wake()
}

func (r *recorder) Receipt(x engine.Receipt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.receipts = append(r.receipts, x)
	r.wake()
}

func (r *recorder) Reply(x engine.Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, x)
	r.wake()
}

func (r *recorder) ReachChanged(n engine.ReachNotice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reach = append(r.reach, n)
	r.wake()
}

// waitUntil waits until cond (called under r.mu) is true.
func (r *recorder) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// events reads the session events the recorder was told from a point on,
// cliente by cliente: events of other clientes wait until asked for.
type events struct {
	t     *testing.T
	r     *recorder
	from  int          // events before it belong to an earlier manager
	taken map[int]bool // indexes already returned (or skipped by none)
}

// subscribe reads the events reported from now on.
func subscribe(t *testing.T, r *recorder) *events {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &events{t: t, r: r, from: len(r.sessions), taken: map[int]bool{}}
}

// nextLocked finds the first unread event of cliente (r.mu held).
func (e *events) nextLocked(cliente string) (int, bool) {
	for i := e.from; i < len(e.r.sessions); i++ {
		if !e.taken[i] && e.r.sessions[i].Cliente == cliente {
			return i, true
		}
	}
	return 0, false
}

// next returns the next event of cliente.
func (e *events) next(cliente string) engine.SessionEvent {
	e.t.Helper()
	var ev engine.SessionEvent
	e.r.waitUntil(e.t, "an event of "+cliente, func() bool {
		i, ok := e.nextLocked(cliente)
		if ok {
			e.taken[i] = true
			ev = e.r.sessions[i]
		}
		return ok
	})
	return ev
}

// until returns the first event of cliente in state st, and the states
// seen before it.
func (e *events) until(cliente string, st engine.SessionState) (engine.SessionEvent, []engine.SessionState) {
	e.t.Helper()
	var seen []engine.SessionState
	for {
		ev := e.next(cliente)
		if ev.State == st {
			return ev, seen
		}
		seen = append(seen, ev.State)
	}
}

// none fails if an event of cliente in state st arrives within d; the
// cliente's other events of that time are read.
func (e *events) none(cliente string, st engine.SessionState, d time.Duration) {
	e.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		e.r.mu.Lock()
		for i, ok := e.nextLocked(cliente); ok; i, ok = e.nextLocked(cliente) {
			e.taken[i] = true
			if ev := e.r.sessions[i]; ev.State == st {
				e.r.mu.Unlock()
				e.t.Fatalf("unexpected %s: %+v", st, ev)
			}
		}
		ch := e.r.changed
		e.r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return
		}
	}
}

// env is a manager on a data dir, talking to sim.
type env struct {
	t       *testing.T
	sim     *wasim.Server
	dir     string
	db      *kv.DB
	closeDB func()
	rec     *recorder
	m       *wa.Manager
	ev      *events
	tune    func(*wa.Options) // adjusts the options of the next open
}

func testLogger() *slog.Logger {
	level := slog.LevelWarn + 100
	if os.Getenv("WA_TRACE") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newEnv(t *testing.T, sim *wasim.Server, dir string) *env {
	t.Helper()
	e := &env{t: t, sim: sim, dir: dir}
	e.db, e.closeDB = openDB(t, dir)
	e.rec = newRecorder(e.db)
	e.open()
	return e
}

// open starts a manager on e.db (again after stop).
func (e *env) open() {
	e.t.Helper()
	opts := wa.Options{
		Logger:     testLogger(),
		Configure:  e.sim.Configure,
		BackoffMin: 200 * time.Millisecond,
		BackoffMax: time.Second,
	}
	if e.tune != nil {
		e.tune(&opts)
	}
	e.m = newManager(e.t, e.db, e.rec, opts)
	e.ev = subscribe(e.t, e.rec)
	e.t.Cleanup(func() { e.stop() })
}

func (e *env) stop() {
	if e.m != nil {
		if err := e.m.Close(); err != nil {
			e.t.Errorf("close manager: %v", err)
		}
		e.m = nil
	}
}

// newManager runs a manager on db's clientes and device store.
func newManager(t *testing.T, db *kv.DB, in engine.Inbound, opts wa.Options) *wa.Manager {
	t.Helper()
	st, err := devicestore.New(db.Bolt(), wa.StoreLog(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wa.NewManager(db, st, in, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// pair gets a QR for cliente, has phone scan it and waits until READY and
// the device's prekeys are on the server (so nothing is left in flight).
// It returns the device JID.
func (e *env) pair(cliente, phone string) string {
	e.t.Helper()
	ctx := ctxT(e.t)
	seq := e.sim.LastEvent()
	qr, err := e.m.WaitQR(ctx, cliente)
	if err != nil {
		e.t.Fatalf("WaitQR: %v", err)
	}
	jid, err := e.sim.ScanQR(ctx, qr, phone)
	if err != nil {
		e.t.Fatalf("ScanQR: %v", err)
	}
	e.ready(cliente, seq, jid.String())
	return jid.String()
}

// ready waits for READY and for the simulator to have the prekeys uploaded
// after seq by jid.
func (e *env) ready(cliente string, seq uint64, jid string) engine.SessionEvent {
	e.t.Helper()
	ev, _ := e.ev.until(cliente, engine.SessionReady)
	e.waitSim(seq, wasim.EventPreKeys, jid)
	return ev
}

func (e *env) waitSim(after uint64, kind wasim.EventKind, jid string) wasim.Event {
	e.t.Helper()
	ev, err := e.sim.WaitEvent(ctxT(e.t), after, wasim.Is(kind, jid))
	if err != nil {
		e.t.Fatalf("waiting for simulator event %s %s: %v", kind, jid, err)
	}
	return ev
}

// journal returns the session events journaled for cliente, in order.
func (e *env) journal(cliente string) []string {
	e.t.Helper()
	entries, err := e.db.JournalTail(context.Background(), 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, en := range entries {
		if en.Kind == engine.KindSession && en.Cliente == cliente {
			out = append(out, en.Event)
		}
	}
	return out
}

func contains(list []string, want ...string) bool {
	i := 0
	for _, s := range list {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

func isErr(err, target error) string {
	if errors.Is(err, target) {
		return ""
	}
	return fmt.Sprintf("got %v, want %v", err, target)
}
