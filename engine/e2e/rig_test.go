package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.uber.org/goleak"

	"leadmaster/engine"
	"leadmaster/engine/wa"
	"leadmaster/kv"
	"leadmaster/kv/devicestore"
	"leadmaster/wasim"
)

// waitTimeout bounds every wait on an event. A healthy run needs a small
// fraction of it, even under -race on the project's 2-vCPU machine.
const waitTimeout = 90 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.sim != nil {
		if err := fixture.sim.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close simulator:", err)
			code = 1
		}
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

func testLogger() *slog.Logger {
	if os.Getenv("E2E_TRACE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Fixture clientes: c01..c10, each paired with its own WhatsApp number
// (senderPhone). Pairing costs a client its first prekeys (seconds under
// -race), so it is done once per test binary: one simulator, shared by
// every test, knows the devices, and a kv file holding the clientes and
// their devices is copied by every test. The simulator has no snapshot
// file (with one, every new account rewrites it whole, under its lock).
//
// Sharing the simulator means: campaign ids are unique per binary (the
// message ids derive from them and the copied install secret), every test
// sends to recipients of its own, and a rig puts back the faults,
// behaviours and refusals it set.
const fixtureClientes = 10

func clienteID(i int) string { return fmt.Sprintf("c%02d", i) }

func senderPhone(i int) string { return fmt.Sprintf("155500011%02d", i) }

// uniq numbers campaigns and recipient blocks across the tests of a binary.
var uniq atomic.Int64

var fixture struct {
	once sync.Once
	dir  string
	sim  *wasim.Server
	err  error
}

func buildFixture(t testing.TB) {
	t.Helper()
	fixture.once.Do(func() {
		start := time.Now()
		fixture.err = pairFixture()
		t.Logf("fixture: %d clientes paired in %v", fixtureClientes, time.Since(start).Round(time.Millisecond))
	})
	if fixture.err != nil {
		t.Fatalf("building the paired fixture: %v", fixture.err)
	}
}

// newManager runs a session manager on db's clientes and device store.
func newManager(db *kv.DB, in engine.Inbound, opts wa.Options) (*wa.Manager, error) {
	st, err := devicestore.New(db.Bolt(), wa.StoreLog(opts.Logger))
	if err != nil {
		return nil, err
	}
	return wa.NewManager(db, st, in, opts)
}

func pairFixture() (err error) {
	base := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && os.Getenv("E2E_DISK") == "" {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "leadmaster-e2e-fixture-")
	if err != nil {
		return err
	}
	fixture.dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sim := wasim.New(wasim.Options{Logger: testLogger()})
	if err := sim.Start(ctx); err != nil {
		return err
	}
	fixture.sim = sim // closed by TestMain
	db, err := kv.Open(filepath.Join(dir, "data"), kv.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	// An engine that is not run records the pairings (it journals each
	// session event and the device it names) and sends nothing.
	recorder := engine.New(db, nil, engine.Config{Logger: testLogger()})
	mgr, err := newManager(db, recorder, wa.Options{Logger: testLogger(), Configure: sim.Configure})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, mgr.Close()) }()
	// Pair every cliente at once: a pairing is a chain of round trips, and
	// on a loaded machine their latencies overlap.
	ready := map[string]chan struct{}{} // owned by the dispatcher below
	readyCh := make([]chan struct{}, fixtureClientes+1)
	for i := 1; i <= fixtureClientes; i++ {
		id := clienteID(i)
		readyCh[i] = make(chan struct{})
		ready[id] = readyCh[i]
		if err := db.CreateCliente(ctx, engine.Cliente{ID: id, Name: "Cliente " + id, DefaultRegion: "US"}); err != nil {
			return err
		}
	}
	sessions, unsub := recorder.Events().Subscribe(1 << 12)
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		for {
			select {
			case ev := <-sessions:
				if ev.Session == nil {
					continue
				}
				if ch := ready[ev.Cliente]; ev.Session.State == engine.SessionReady && ch != nil {
					close(ch)
					ready[ev.Cliente] = nil
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-dispatched; unsub() }()
	errs := make(chan error, fixtureClientes)
	var wg sync.WaitGroup
	for i := 1; i <= fixtureClientes; i++ {
		id, readyCh := clienteID(i), readyCh[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := sim.LastEvent()
			qr, err := mgr.WaitQR(ctx, id)
			if err != nil {
				errs <- fmt.Errorf("WaitQR %s: %w", id, err)
				return
			}
			jid, err := sim.ScanQR(ctx, qr, senderPhone(i))
			if err != nil {
				errs <- fmt.Errorf("ScanQR %s: %w", id, err)
				return
			}
			select {
			case <-readyCh:
			case <-ctx.Done():
				errs <- fmt.Errorf("%s never READY: %w", id, ctx.Err())
				return
			}
			// The prekey upload is the last thing the client asks after a
			// pairing: once it is in, nothing is in flight.
			if _, err := sim.WaitEvent(ctx, seq, wasim.Is(wasim.EventPreKeys, jid.String())); err != nil {
				errs <- fmt.Errorf("prekeys of %s: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	return nil
}

// dataDir is where a test keeps its kv file and simulator snapshot: in
// /dev/shm when there is one, unless E2E_DISK is set. These tests prove
// what is sent and recorded, not durability (kv's crash tests and the
// crash test with the real binary do); on the project's disk the fsyncs of
// kv, the device store and the snapshot make a send ~6x slower, too slow
// for the suite under -race. Every fsync is still made.
func dataDir(t testing.TB) string {
	t.Helper()
	if os.Getenv("E2E_DISK") == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			if dir, err := os.MkdirTemp("/dev/shm", "leadmaster-e2e-"); err == nil {
				t.Cleanup(func() { os.RemoveAll(dir) })
				return dir
			}
		}
	}
	return t.TempDir()
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// rig is the appliance without its admin API: a kv file, the session
// manager (real whatsmeow clients), the engine, all against one wasim.
type rig struct {
	t   testing.TB
	sim *wasim.Server
	db  *kv.DB
	mgr *wa.Manager
	eng *engine.Engine

	evs   <-chan engine.Event
	unsub func()
	hist  []engine.Event // every engine event read so far

	recBase   int             // this rig's recipients are recipient(1..) above it
	campaigns map[string]bool // created by this rig
	touched   map[string]bool // recipient phones whose behaviour or registration was set

	stopOnce sync.Once
	stopEng  func() error
}

// rigConfig tunes a rig; zero fields get fast test defaults.
type rigConfig struct {
	clientes int // how many fixture clientes log in (c01..); default 1
	engine   engine.Config
	// diskData keeps the kv file on the test's TempDir even where
	// /dev/shm exists (the benchmarks of the real path).
	diskData bool
}

// newRig starts an appliance on a copy of the fixture's kv file, talking
// to the shared simulator, and returns once the first cfg.clientes
// clientes are READY. At cleanup it stops everything, verifies the
// journal, puts the simulator back as it was and checks that no goroutine
// is left behind.
func newRig(t testing.TB, cfg rigConfig) *rig {
	t.Helper()
	buildFixture(t)
	ignore := goleak.IgnoreCurrent() // the fixture's leftovers, and the test binary's own
	t.Cleanup(func() {
		if !t.Failed() {
			// whatsmeow's frame reader that got a frame after Disconnect
			// blocks on it for good (a whatsmeow leak, engine/wa doc.go
			// Caveats); the 2026 server's notifications make it common.
			goleak.VerifyNone(t, ignore, goleak.IgnoreTopFunction("go.mau.fi/whatsmeow/socket.(*FrameSocket).frameComplete"))
		}
	})
	if cfg.clientes == 0 {
		cfg.clientes = 1
	}
	dir := t.TempDir()
	if !cfg.diskData {
		dir = dataDir(t)
	}
	copyFile(t, filepath.Join(fixture.dir, "data", kv.FileName), filepath.Join(dir, "data", kv.FileName))

	r := &rig{t: t, sim: fixture.sim, recBase: int(uniq.Add(1)) * 10000, campaigns: map[string]bool{}, touched: map[string]bool{}}
	t.Cleanup(r.resetSim)
	db, err := kv.Open(filepath.Join(dir, "data"), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.db = db
	t.Cleanup(func() {
		rep, err := db.Verify(context.Background(), nil)
		if err != nil || !rep.OK {
			t.Errorf("journal verify: %+v %v", rep, err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("close db: %v", err)
		}
	})

	in := &engine.InboundRelay{} // the manager needs the engine, the engine the manager
	r.mgr, err = newManager(db, in, wa.Options{
		Logger: testLogger(), Configure: r.sim.Configure,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond, HandOverAfter: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ec := cfg.engine
	if ec.Logger == nil {
		ec.Logger = testLogger()
	}
	if ec.Rand == nil {
		ec.Rand = rand.New(rand.NewPCG(1, 2))
	}
	if ec.SendTimeout == 0 {
		ec.SendTimeout = 20 * time.Second
	}
	if ec.BackoffBase == 0 {
		ec.BackoffBase = 20 * time.Millisecond
	}
	if ec.BackoffMax == 0 {
		ec.BackoffMax = 200 * time.Millisecond
	}
	if ec.BreakerThreshold == 0 {
		ec.BreakerThreshold = 1000
	}
	r.eng = engine.New(db, r.mgr, ec)
	in.Set(r.eng)
	r.evs, r.unsub = r.eng.Events().Subscribe(1 << 18)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(ctx) }()
	r.stopEng = func() error {
		cancel()
		err := <-done
		return errors.Join(err, r.mgr.Close())
	}
	t.Cleanup(r.stop)

	for i := 1; i <= cfg.clientes; i++ {
		if err := r.mgr.Start(ctx, clienteID(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= cfg.clientes; i++ {
		r.waitSession(clienteID(i), engine.SessionReady, 0)
	}
	return r
}

// resetSim puts back what the test changed on the shared simulator.
func (r *rig) resetSim() {
	r.sim.RefuseConnections(0)
	r.sim.SetChaos(nil)
	r.sim.SetFaults("", wasim.Faults{})
	for i := 1; i <= fixtureClientes; i++ {
		r.sim.SetFaults(senderPhone(i), wasim.Faults{})
	}
	for phone := range r.touched {
		r.sim.SetBehavior(phone, wasim.Behavior{})
		r.sim.SetRegistered(phone, true)
	}
}

// recipient is the E.164 phone of this rig's n-th recipient: a number no
// other test sends to (the simulator makes it an account on first lookup).
func (r *rig) recipient(n int) string { return fmt.Sprintf("+1556%07d", r.recBase+n) }

// touch records that the test set a recipient's behaviour or registration.
func (r *rig) touch(phone string) string { r.touched[phone] = true; return phone }

// stop stops the engine (in-flight sends end and commit), then the
// session manager. The simulator and the kv file stay for assertions.
func (r *rig) stop() {
	r.stopOnce.Do(func() {
		if err := r.stopEng(); err != nil {
			r.t.Errorf("stop: %v", err)
		}
		r.unsub()
		if n := r.eng.Events().Dropped(); n > 0 {
			r.t.Errorf("the test's subscription lost %d engine events", n)
		}
	})
}

// diagnose describes the rig's campaigns and sessions for a failure.
func (r *rig) diagnose() string {
	var b strings.Builder
	ctx := context.Background()
	for c := range r.campaigns {
		camp, _ := r.db.Campaign(ctx, c)
		counts, _ := r.db.Counts(ctx, c)
		fmt.Fprintf(&b, "campaign %s (%s, %s): %v\n", c, camp.Cliente, camp.Status, counts)
		if counts.Open() > 0 {
			for _, e := range r.envios(c) {
				if !e.State.Final() {
					fmt.Fprintf(&b, "  open envío %s: %s attempts %d next %v reason %q id %s\n", e.Ref, e.State, e.Attempts, e.NextAttempt, e.Reason, e.MsgID)
				}
			}
		}
		if cl := camp.Cliente; cl != "" {
			st := r.mgr.State(cl)
			fmt.Fprintf(&b, "  session %s: %s ready=%v err=%q\n", cl, st.State, r.mgr.Ready(cl), st.Err)
			if counts.Open() > 0 && st.JID != "" {
				user := userOf(st.JID)
				var evs []wasim.Event
				for _, ev := range r.sim.Events(0) {
					if ev.Phone == user || userOf(ev.JID) == user {
						evs = append(evs, ev)
					}
				}
				for _, ev := range evs[max(0, len(evs)-15):] {
					fmt.Fprintf(&b, "    sim %s %s %s conn %d %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.JID, ev.Conn, ev.Detail)
				}
			}
		}
	}
	return b.String()
}

// mark is the position in the event history from which a wait looks.
func (r *rig) mark() int { return len(r.hist) }

// next reads one engine event into the history, or fails at the deadline.
func (r *rig) next(what string, deadline <-chan time.Time) {
	r.t.Helper()
	select {
	case ev, ok := <-r.evs:
		if !ok {
			r.t.Fatalf("event stream closed while waiting for %s", what)
		}
		r.hist = append(r.hist, ev)
	case <-deadline:
		r.t.Fatalf("timed out after %v waiting for %s\n%s", waitTimeout, what, r.diagnose())
	}
}

// waitEvent returns the first event at or after position from that
// matches, and its position.
func (r *rig) waitEvent(what string, from int, match func(engine.Event) bool) (engine.Event, int) {
	r.t.Helper()
	deadline := time.After(waitTimeout)
	for i := from; ; i++ {
		for i >= len(r.hist) {
			r.next(what, deadline)
		}
		if match(r.hist[i]) {
			return r.hist[i], i
		}
	}
}

// waitFor waits until cond holds, checking it now and after every engine
// event (every state change of the engine publishes one).
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.After(waitTimeout)
	for !cond() {
		r.next(what, deadline)
	}
}

// waitSession waits for a session event of cliente in state st.
func (r *rig) waitSession(cliente string, st engine.SessionState, from int) int {
	r.t.Helper()
	_, i := r.waitEvent(fmt.Sprintf("%s %s", cliente, st), from, func(ev engine.Event) bool {
		return ev.Type == "session" && ev.Cliente == cliente && ev.Session.State == st
	})
	return i
}

// waitStatus waits until campaign id has status st (event or stored).
func (r *rig) waitStatus(id string, st engine.CampaignStatus) {
	r.t.Helper()
	r.waitFor(fmt.Sprintf("campaign %s %s", id, st), func() bool {
		c, err := r.db.Campaign(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		return c.Status == st
	})
}

// fast is a rate that lets the engine send as fast as the session goes.
func fast(maxAttempts int) engine.Rate {
	return engine.Rate{MinDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, HourlyCap: 1 << 20, DailyCap: 1 << 20, MaxAttempts: maxAttempts}
}

// campaign creates a campaign of fixture cliente i with n envíos to
// r.recipient(1..n), starts it and returns its id (name plus a number
// unique in the binary).
func (r *rig) campaign(name string, i, n int, rate engine.Rate) string {
	r.t.Helper()
	id := r.createCampaign(name, clienteID(i), r.recipients(0, n), rate)
	if err := r.eng.StartCampaign(context.Background(), id); err != nil {
		r.t.Fatal(err)
	}
	return id
}

// recipients returns r.recipient(from+1..from+n).
func (r *rig) recipients(from, n int) []string {
	out := make([]string, n)
	for k := range out {
		out[k] = r.recipient(from + k + 1)
	}
	return out
}

// createCampaign creates a campaign (borrador) of cliente with one envío
// per phone, in order, and returns its id.
func (r *rig) createCampaign(name, cliente string, phones []string, rate engine.Rate) string {
	r.t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("%s-%d", name, uniq.Add(1))
	r.campaigns[id] = true
	err := r.db.CreateCampaign(ctx, engine.Campaign{ID: id, Cliente: cliente, Name: id,
		Template: "Hola {{nombre}}, tu código es {{codigo}} (" + id + ")", Rate: rate})
	if err != nil {
		r.t.Fatal(err)
	}
	imp, err := r.db.BeginImport(ctx, id)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, phone := range phones {
		row := kv.NewEnvio{Line: k + 2, Telefono: phone, Nombre: fmt.Sprintf("Persona %d", k+1),
			Variables: map[string]string{"codigo": fmt.Sprintf("Z%04d-%s", k+1, cliente)}}
		if err := imp.Add(ctx, row); err != nil {
			r.t.Fatal(err)
		}
	}
	if _, err := imp.Commit(ctx); err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *rig) counts(campaign string) engine.Counts {
	r.t.Helper()
	c, err := r.db.Counts(context.Background(), campaign)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func (r *rig) envios(campaign string) []engine.Envio {
	r.t.Helper()
	all, err := r.db.Envios(context.Background(), campaign, 0, 1<<20, "")
	if err != nil {
		r.t.Fatal(err)
	}
	return all
}

func (r *rig) envio(campaign string, seq uint64) engine.Envio {
	r.t.Helper()
	e, err := r.db.Envio(context.Background(), engine.Ref{Campaign: campaign, Seq: seq})
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

// sender is the account JID of fixture cliente i (the ledger's key).
func sender(i int) types.JID { return types.NewJID(senderPhone(i), types.DefaultUserServer) }

// deviceJID is the device of fixture cliente i as the session reports it.
func (r *rig) deviceJID(i int) types.JID {
	r.t.Helper()
	jid, err := types.ParseJID(r.mgr.State(clienteID(i)).JID)
	if err != nil || jid.IsEmpty() {
		r.t.Fatalf("device of %s: %q %v", clienteID(i), r.mgr.State(clienteID(i)).JID, err)
	}
	return jid
}

// checkNoLie is the rule the seed incident broke, checked against the
// simulator: every envío of campaign (of cliente i) counted as sent has a
// ledger entry of its own message id that the server acked and the
// recipient decrypted, with exactly the stored text, addressed to its
// phone. It returns how many envíos were sent.
func (r *rig) checkNoLie(campaign, senderPhone string) int {
	r.t.Helper()
	sent := 0
	for _, e := range r.envios(campaign) {
		if !e.State.Sent() {
			continue
		}
		sent++
		le, ok := r.sim.LedgerEntry(types.NewJID(senderPhone, types.DefaultUserServer), e.MsgID)
		switch {
		case !ok:
			r.t.Fatalf("envío %s is %s but WhatsApp never saw its id %s", e.Ref, e.State, e.MsgID)
		case le.Acks == 0:
			r.t.Fatalf("envío %s is %s but the server never acked its id %s: %+v", e.Ref, e.State, e.MsgID, le)
		case !le.Decrypted:
			r.t.Fatalf("envío %s is %s, acked, but its recipient could not decrypt it: %+v", e.Ref, e.State, le)
		case le.Text != e.Mensaje:
			r.t.Fatalf("envío %s: the recipient read %q, the envío says %q", e.Ref, le.Text, e.Mensaje)
		case le.To != r.lidOf(e.Telefono):
			// whatsmeow sends every DM to the recipient's LID (since 2026-07)
			r.t.Fatalf("envío %s to %s arrived at %s, want its LID %s", e.Ref, e.Telefono, le.To, r.lidOf(e.Telefono))
		case le.Acks == 1 && e.SentAt.Unix() != le.Timestamp:
			r.t.Fatalf("envío %s sent at %v, the server acked at %d", e.Ref, e.SentAt, le.Timestamp)
		}
	}
	return sent
}

// lidOf is the LID JID (as the ledger writes it) of the account with an
// E.164 phone; "" if the simulator has no such account.
func (r *rig) lidOf(phone string) string {
	for _, a := range r.sim.Accounts() {
		if a.Phone == strings.TrimPrefix(phone, "+") {
			return types.NewJID(a.LID, types.HiddenUserServer).String()
		}
	}
	return ""
}

// checkOncePerRecipient asserts what every recipient of the account
// senderPhone saw: at most one decrypted message (exactly one for phones
// in want), whatever the arrivals of retried ids.
func (r *rig) checkOncePerRecipient(senderPhone string, want map[string]bool) {
	r.t.Helper()
	seen := map[string]int{}
	for _, le := range r.ledger(senderPhone) {
		if le.Decrypted {
			seen[le.To]++
		}
	}
	for to, n := range seen {
		if n != 1 {
			r.t.Errorf("%s saw %d messages from %s, want 1", to, n, senderPhone)
		}
	}
	for phone := range want {
		if seen[r.lidOf(phone)] != 1 {
			r.t.Errorf("%s never received its message", phone)
		}
	}
}

// ledger is the simulator's ledger of this rig's messages from the
// account senderPhone: the ids of every envío of the rig's campaigns.
func (r *rig) ledger(senderPhone string) []wasim.LedgerEntry {
	r.t.Helper()
	ids := map[string]bool{}
	for c := range r.campaigns {
		for _, e := range r.envios(c) {
			if e.MsgID != "" {
				ids[e.MsgID] = true
			}
		}
	}
	var out []wasim.LedgerEntry
	for _, le := range r.sim.Ledger() {
		if ids[le.ID] && userOf(le.From) == senderPhone {
			out = append(out, le)
		}
	}
	return out
}

func userOf(jid string) string {
	j, err := types.ParseJID(jid)
	if err != nil {
		return ""
	}
	return j.User
}
