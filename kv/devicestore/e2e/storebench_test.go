package e2e_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"go.mau.fi/whatsmeow/util/keys"
	"modernc.org/sqlite"

	"leadmaster/kv"
	"leadmaster/kv/devicestore"
	"leadmaster/wasim"
)

// BenchmarkStores is the send path on disk with each device store, in one
// process and one run: the real whatsmeow client, one paired session per
// store, sending to the in-process wasim until each message is acked. Stores
// take turns round by round (the order rotates), and in each turn the store's
// session connects, sends to recipients it never wrote to ("new") and then to
// one recipient it already has a session with ("same"), and disconnects, so
// one session is live at a time and a disk hiccup hits one round, not one
// store.
//
//	go test -run '^$' -bench Stores -benchtime 1x ./kv/devicestore/e2e/
//
// Env: LEADMASTER_BENCH_ROUNDS (5), LEADMASTER_BENCH_SENDS (sends per
// workload per round, 200), LEADMASTER_BENCH_STORES (a comma list of bbolt,
// sqlite, sqlite-wal; all), LEADMASTER_BENCH_DIR (the data directory; default
// os.TempDir() or else this package's directory, whichever is not tmpfs).
//
// Commits are exact: for bbolt the file's transaction id (bbolt increments
// it once per committed write transaction, each with two fdatasyncs); for
// SQLite, commits that changed a row, counted by the connection's commit and
// pre-update hooks (each fsyncs the journal and the database in rollback
// mode; in WAL + synchronous=NORMAL a commit does not fsync, a checkpoint
// does). Store writes are whatsmeow's calls into the store's write methods,
// counted by wrappers around the device's stores.
func BenchmarkStores(b *testing.B) {
	rounds := envInt(b, "LEADMASTER_BENCH_ROUNDS", 5)
	sends := envInt(b, "LEADMASTER_BENCH_SENDS", 200)
	dir, fs := benchDir(b)
	var kinds []storeKind
	for _, k := range allStoreKinds {
		if only := os.Getenv("LEADMASTER_BENCH_STORES"); only == "" || slices.Contains(strings.Split(only, ","), k.name) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		b.Fatalf("LEADMASTER_BENCH_STORES=%q names no store", os.Getenv("LEADMASTER_BENCH_STORES"))
	}

	sim := wasim.New(wasim.Options{})
	if err := sim.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })

	var ss []*benchStore
	for i, k := range kinds {
		s := k.open(b, filepath.Join(dir, k.name))
		s.kind, s.phone = k, strconv.Itoa(15551000000+i)
		s.pair(b, sim)
		s.same = sim.AddUser(strconv.Itoa(15552000000+i), "Same "+k.name)
		s.sendOne(b, s.same, "warm-up") // the session with "same" exists before round 1
		s.disconnect(b, sim)
		// A new client on the device loaded again, its stores wrapped
		// before any goroutine of a client can read them.
		dev, err := s.c.GetFirstDevice(context.Background())
		if err != nil || dev.ID == nil || *dev.ID != s.me {
			b.Fatalf("%s: stored device %v, err %v; want %s", k.name, dev.ID, err, s.me)
		}
		s.wrapStores(dev)
		s.newClient(b, sim, dev)
		ss = append(ss, s)
	}

	next := 15560000000
	b.ResetTimer()
	for range b.N {
		for r := range rounds {
			for i := range ss {
				s := ss[(r+i)%len(ss)]
				news := make([]types.JID, sends)
				for j := range news {
					news[j] = sim.AddUser(strconv.Itoa(next), "")
					next++
				}
				s.connect(b, sim)
				s.results = append(s.results, s.run(b, sim, "new", r, news))
				s.results = append(s.results, s.run(b, sim, "same", r, []types.JID{s.same}, sends))
				s.disconnect(b, sim)
			}
		}
	}
	b.StopTimer()
	report(b, ss, rounds, sends, dir, fs)
}

// storeKind is one of the device stores under test.
type storeKind struct {
	name  string // as in LEADMASTER_BENCH_STORES
	title string
	open  func(b *testing.B, dir string) *benchStore
}

var allStoreKinds = []storeKind{
	{"bbolt", "bbolt device store", openBoltStore},
	{"sqlite", "sqlstore, rollback journal", openSQLStore("")},
	{"sqlite-wal", "sqlstore, WAL + synchronous=NORMAL", openSQLStore("&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")},
}

// benchStore is one store with its paired session.
type benchStore struct {
	kind  storeKind
	phone string
	c     interface {
		GetFirstDevice(ctx context.Context) (*store.Device, error)
		NewDevice() *store.Device
	}
	commits func() uint64 // durable write commits so far
	cli     *whatsmeow.Client
	me      types.JID
	same    types.JID
	writes  *writeCounts

	results []result
}

// result is one workload of one round on one store.
type result struct {
	workload string
	round    int
	elapsed  time.Duration
	lat      []time.Duration
	commits  uint64
	writes   map[string]uint64
}

func openBoltStore(b *testing.B, dir string) *benchStore {
	// As the product opens it: kv's file, the device store sharing it.
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	c, err := devicestore.New(db.Bolt(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return &benchStore{c: c, commits: func() uint64 { return boltTxID(b, db.Bolt()) }}
}

// boltTxID is the id of the last committed write transaction.
func boltTxID(b *testing.B, db *bbolt.DB) uint64 {
	var id int
	if err := db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		b.Fatal(err)
	}
	return uint64(id)
}

func openSQLStore(pragmas string) func(b *testing.B, dir string) *benchStore {
	return func(b *testing.B, dir string) *benchStore {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		var commits atomic.Uint64
		d := &sqlite.Driver{}
		d.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, _ string) error {
			h, ok := conn.(sqlite.HookRegisterer)
			if !ok {
				return fmt.Errorf("modernc conn %T has no hooks", conn)
			}
			// Hooks run on the goroutine executing the statement; the
			// connection is used by one at a time.
			dirty := false
			h.RegisterPreUpdateHook(func(sqlite.SQLitePreUpdateData) { dirty = true })
			h.RegisterCommitHook(func() int32 {
				if dirty {
					commits.Add(1)
				}
				dirty = false
				return 0
			})
			h.RegisterRollbackHook(func() { dirty = false })
			return nil
		})
		dsn := "file:" + filepath.Join(dir, "wa.db") + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)" + pragmas
		db := sql.OpenDB(connector{dsn, d})
		b.Cleanup(func() { _ = db.Close() })
		c := sqlstore.NewWithDB(db, "sqlite", nil)
		if err := c.Upgrade(context.Background()); err != nil {
			b.Fatal(err)
		}
		return &benchStore{c: c, commits: commits.Load}
	}
}

type connector struct {
	dsn string
	d   *sqlite.Driver
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.d }

func (s *benchStore) newClient(b *testing.B, sim *wasim.Server, dev *store.Device) {
	s.cli = whatsmeow.NewClient(dev, nil)
	// As engine/wa runs it: sent messages kept for retry receipts.
	s.cli.UseRetryMessageStore = true
	sim.Configure(s.cli)
}

func (s *benchStore) pair(b *testing.B, sim *wasim.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s.newClient(b, sim, s.c.NewDevice())
	connected := make(chan struct{}, 1)
	s.cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	qrs, err := s.cli.GetQRChannel(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := s.cli.Connect(); err != nil {
		b.Fatal(err)
	}
	item := <-qrs
	if item.Event != whatsmeow.QRChannelEventCode {
		b.Fatalf("QR channel: %+v", item)
	}
	if s.me, err = sim.ScanQR(ctx, item.Code, s.phone); err != nil {
		b.Fatalf("ScanQR: %v", err)
	}
	// Pairing ends with a 515 and a new login.
	waitChan(b, ctx, connected, "pairing's login")
	for range qrs {
	}
}

// connect logs the stored session in and lets its login writes settle.
func (s *benchStore) connect(b *testing.B, sim *wasim.Server) {
	seq := sim.LastEvent()
	connected := make(chan struct{}, 1)
	id := s.cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer s.cli.RemoveEventHandler(id)
	if err := s.cli.Connect(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	waitChan(b, ctx, connected, "login")
	if _, err := sim.WaitEvent(ctx, seq, wasim.Is(wasim.EventLoggedIn, s.me.String())); err != nil {
		b.Fatalf("login in the simulator: %v", err)
	}
	// Not a test's wait but a measurement's: whatsmeow's post-login store
	// writes run on goroutines of their own (the privacy-token prune among
	// them) and announce nothing, neither to the client nor to wasim. Waiting
	// for wasim's "active" event instead lets one of them land inside the
	// first round and overlap a send's writes, which breaks the exact
	// commits-per-send count (tried: 4.02 and a negative "outside" count).
	time.Sleep(200 * time.Millisecond)
}

func (s *benchStore) disconnect(b *testing.B, sim *wasim.Server) {
	seq := sim.LastEvent()
	s.cli.Disconnect()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	// The next login must not find this one still open (a "replaced").
	if _, err := sim.WaitEvent(ctx, seq, wasim.Is(wasim.EventConnClosed, s.me.String())); err != nil {
		b.Fatalf("disconnect: %v", err)
	}
}

func waitChan(b *testing.B, ctx context.Context, ch <-chan struct{}, what string) {
	select {
	case <-ch:
	case <-ctx.Done():
		b.Fatalf("timed out waiting for %s", what)
	}
}

// sendOne sends body to to and returns how long it took until the ack, and
// the message's id.
func (s *benchStore) sendOne(b *testing.B, to types.JID, body string) (time.Duration, types.MessageID) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	start := time.Now()
	resp, err := s.cli.SendMessage(ctx, to, text(body))
	if err != nil {
		b.Fatalf("%s: send to %s: %v", s.kind.name, to, err)
	}
	return time.Since(start), resp.ID
}

// run sends n messages (len(to) when n is absent), the i-th to to[i%len(to)],
// one after another, each until its ack.
func (s *benchStore) run(b *testing.B, sim *wasim.Server, workload string, round int, to []types.JID, n ...int) result {
	count := len(to)
	if len(n) > 0 {
		count = n[0]
	}
	res := result{workload: workload, round: round, lat: make([]time.Duration, 0, count)}
	c0, w0 := s.commits(), s.writes.snapshot()
	var ids []types.MessageID
	start := time.Now()
	for i := range count {
		d, id := s.sendOne(b, to[i%len(to)], fmt.Sprintf("%s %d %d", workload, round, i))
		res.lat, ids = append(res.lat, d), append(ids, id)
	}
	res.elapsed = time.Since(start)
	res.commits = s.commits() - c0
	res.writes = s.writes.since(w0)
	// Every message acked once and decrypted by its recipient.
	for _, id := range ids {
		if e, ok := sim.LedgerEntry(s.me, id); !ok || !e.Decrypted || e.Acks != 1 {
			b.Fatalf("%s: message %s in the simulator's ledger: %+v (found %v)", s.kind.name, id, e, ok)
		}
	}
	return res
}

func report(b *testing.B, ss []*benchStore, rounds, sends int, dir, fs string) {
	load, _ := os.ReadFile("/proc/loadavg")
	var w strings.Builder
	fmt.Fprintf(&w, "\nBenchmarkStores: %d rounds x %d sends per workload, one session, data in %s (%s), load %s\n",
		rounds, sends, dir, fs, strings.Join(strings.Fields(string(load))[:3], " "))
	workloads := []string{"new", "same"}
	title := map[string]string{"new": "every recipient new", "same": "the same recipient"}

	fmt.Fprintf(&w, "\nsends/s by round (round order rotates)\n| workload | store |")
	for r := range rounds {
		fmt.Fprintf(&w, " r%d |", r+1)
	}
	fmt.Fprintf(&w, " median | p50 / p99 ms |\n|---|---|%s---|---|\n", strings.Repeat("---|", rounds))
	for _, wl := range workloads {
		for _, s := range ss {
			fmt.Fprintf(&w, "| %s | %s |", title[wl], s.kind.title)
			var all []time.Duration
			var rates []float64
			for _, res := range s.of(wl) {
				rates = append(rates, res.rate())
				fmt.Fprintf(&w, " %.0f |", res.rate())
				all = append(all, res.lat...)
			}
			fmt.Fprintf(&w, " %.0f | %.2f / %.2f |\n", median(rates), ms(pct(all, 50)), ms(pct(all, 99)))
		}
	}

	fmt.Fprintf(&w, "\nsends/s, range over rounds (and p50 / p99 ms)\n| workload |")
	for _, s := range ss {
		fmt.Fprintf(&w, " %s |", s.kind.title)
	}
	fmt.Fprintf(&w, "\n|---|%s\n", strings.Repeat("---|", len(ss)))
	for _, wl := range workloads {
		fmt.Fprintf(&w, "| %s |", title[wl])
		for _, s := range ss {
			var rates []float64
			var all []time.Duration
			for _, res := range s.of(wl) {
				rates = append(rates, res.rate())
				all = append(all, res.lat...)
			}
			fmt.Fprintf(&w, " %.0f-%.0f (%.1f / %.1f ms) |", slices.Min(rates), slices.Max(rates), ms(pct(all, 50)), ms(pct(all, 99)))
		}
		fmt.Fprintln(&w)
	}

	if len(ss) > 1 {
		fmt.Fprintf(&w, "\nratios of sends/s in the same round: min-max (median)\n| workload | pair | ratio |\n|---|---|---|\n")
		for _, wl := range workloads {
			for i, a := range ss {
				for _, c := range ss[i+1:] {
					var q []float64
					ra, rc := a.of(wl), c.of(wl)
					for k := range ra {
						q = append(q, ra[k].rate()/rc[k].rate())
					}
					fmt.Fprintf(&w, "| %s | %s / %s | %.2f-%.2f (%.2f) |\n", title[wl], a.kind.name, c.kind.name, slices.Min(q), slices.Max(q), median(q))
				}
			}
		}
	}

	fmt.Fprintf(&w, "\ncommits and store writes per acked send (all rounds)\n| workload | store | commits/send | store writes/send | by method: calls (commits) per send |\n|---|---|---|---|---|\n")
	for _, wl := range workloads {
		for _, s := range ss {
			var n, commits uint64
			byMethod := map[string]uint64{}
			for _, res := range s.of(wl) {
				n += uint64(len(res.lat))
				commits += res.commits
				for k, v := range res.writes {
					byMethod[k] += v
				}
			}
			var calls, inCalls uint64
			var names []string
			for k, v := range byMethod {
				if strings.HasSuffix(k, " commits") {
					inCalls += v
					continue
				}
				calls += v
				names = append(names, k)
			}
			sort.Slice(names, func(i, j int) bool {
				if byMethod[names[i]] != byMethod[names[j]] {
					return byMethod[names[i]] > byMethod[names[j]]
				}
				return names[i] < names[j]
			})
			per := func(v uint64) float64 { return float64(v) / float64(n) }
			var parts []string
			for _, k := range names {
				parts = append(parts, fmt.Sprintf("%s %.2f (%.2f)", k, per(byMethod[k]), per(byMethod[k+" commits"])))
			}
			if commits != inCalls {
				parts = append(parts, fmt.Sprintf("outside store writes (%.2f)", per(commits-inCalls)))
			}
			fmt.Fprintf(&w, "| %s | %s | %.2f | %.2f | %s |\n", title[wl], s.kind.title, per(commits), per(calls), strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(&w, "\nwhole run, setup included (to check against fsyncs counted by strace):")
	for _, s := range ss {
		fmt.Fprintf(&w, " %s %d commits;", s.kind.name, s.commits())
	}
	fmt.Fprintln(&w)
	fmt.Print(w.String())
}

func (s *benchStore) of(workload string) []result {
	var out []result
	for _, r := range s.results {
		if r.workload == workload {
			out = append(out, r)
		}
	}
	return out
}

func (r result) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// benchDir is a fresh directory for the stores' files and the file system
// it is on: LEADMASTER_BENCH_DIR when set (whatever it is, so tmpfs can be
// measured on purpose), else os.TempDir() or this package's directory,
// whichever is first not tmpfs.
func benchDir(b *testing.B) (dir, fs string) {
	bases := []string{os.TempDir(), "."}
	if d := os.Getenv("LEADMASTER_BENCH_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o700); err != nil {
			b.Fatal(err)
		}
		bases = []string{d}
	}
	for _, base := range bases {
		abs, err := filepath.Abs(base)
		if err != nil {
			b.Fatal(err)
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		fs = fsType(b, abs)
		if len(bases) > 1 && (fs == "tmpfs" || fs == "ramfs") {
			continue
		}
		dir, err := os.MkdirTemp(abs, "storebench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir, fs
	}
	b.Skip("no directory off tmpfs: set LEADMASTER_BENCH_DIR")
	return "", ""
}

// fsType is the type of the file system that holds path, from /proc/mounts
// (the longest mount point that contains it).
func fsType(b *testing.B, path string) string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		b.Fatalf("which file system: %v", err)
	}
	defer f.Close()
	best, typ := "", "unknown"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := strings.ReplaceAll(fields[1], `\040`, " ")
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			best, typ = mp, fields[2]
		}
	}
	return typ
}

// writeCounts counts whatsmeow's calls into the device's store write
// methods.
type writeCounts struct {
	commits func() uint64

	mu sync.Mutex
	n  map[string]uint64 // calls by method, and commits during them by "method commits"
}

// track counts a call to method and, when the returned func runs at its
// end, the commits made while it ran (exact for the send path, whose store
// calls are sequential).
func (w *writeCounts) track(method string) func() {
	c0 := w.commits()
	return func() {
		dc := w.commits() - c0
		w.mu.Lock()
		w.n[method]++
		w.n[method+" commits"] += dc
		w.mu.Unlock()
	}
}

func (w *writeCounts) snapshot() map[string]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.n)
}

func (w *writeCounts) since(before map[string]uint64) map[string]uint64 {
	now := w.snapshot()
	for k, v := range before {
		now[k] -= v
		if now[k] == 0 {
			delete(now, k)
		}
	}
	return now
}

// wrapStores puts counting wrappers around the device's stores.
func (s *benchStore) wrapStores(d *store.Device) {
	w := &writeCounts{commits: s.commits, n: map[string]uint64{}}
	s.writes = w
	d.Identities = cIdentities{d.Identities, w}
	d.Sessions = cSessions{d.Sessions, w}
	d.PreKeys = cPreKeys{d.PreKeys, w}
	d.SenderKeys = cSenderKeys{d.SenderKeys, w}
	d.AppStateKeys = cAppStateKeys{d.AppStateKeys, w}
	d.AppState = cAppState{d.AppState, w}
	d.Contacts = cContacts{d.Contacts, w}
	d.ChatSettings = cChatSettings{d.ChatSettings, w}
	d.MsgSecrets = cMsgSecrets{d.MsgSecrets, w}
	d.PrivacyTokens = cPrivacyTokens{d.PrivacyTokens, w}
	d.NCTSalt = cNCTSalt{d.NCTSalt, w}
	d.EventBuffer = cEventBuffer{d.EventBuffer, w}
	d.LIDs = cLIDs{d.LIDs, w}
	d.Container = cContainer{d.Container, w}
}

type cIdentities struct {
	store.IdentityStore
	w *writeCounts
}

func (c cIdentities) PutIdentity(ctx context.Context, address string, key [32]byte) error {
	defer c.w.track("PutIdentity")()
	return c.IdentityStore.PutIdentity(ctx, address, key)
}

func (c cIdentities) DeleteAllIdentities(ctx context.Context, phone string) error {
	defer c.w.track("DeleteAllIdentities")()
	return c.IdentityStore.DeleteAllIdentities(ctx, phone)
}

func (c cIdentities) DeleteIdentity(ctx context.Context, address string) error {
	defer c.w.track("DeleteIdentity")()
	return c.IdentityStore.DeleteIdentity(ctx, address)
}

type cSessions struct {
	store.SessionStore
	w *writeCounts
}

func (c cSessions) PutSession(ctx context.Context, address string, session []byte) error {
	defer c.w.track("PutSession")()
	return c.SessionStore.PutSession(ctx, address, session)
}

func (c cSessions) PutManySessions(ctx context.Context, sessions map[string][]byte) error {
	defer c.w.track("PutManySessions")()
	return c.SessionStore.PutManySessions(ctx, sessions)
}

func (c cSessions) DeleteAllSessions(ctx context.Context, phone string) error {
	defer c.w.track("DeleteAllSessions")()
	return c.SessionStore.DeleteAllSessions(ctx, phone)
}

func (c cSessions) DeleteSession(ctx context.Context, address string) error {
	defer c.w.track("DeleteSession")()
	return c.SessionStore.DeleteSession(ctx, address)
}

func (c cSessions) MigratePNToLID(ctx context.Context, pn, lid types.JID) error {
	defer c.w.track("MigratePNToLID")()
	return c.SessionStore.MigratePNToLID(ctx, pn, lid)
}

type cPreKeys struct {
	store.PreKeyStore
	w *writeCounts
}

func (c cPreKeys) GetOrGenPreKeys(ctx context.Context, count uint32) ([]*keys.PreKey, error) {
	defer c.w.track("GetOrGenPreKeys")()
	return c.PreKeyStore.GetOrGenPreKeys(ctx, count)
}

func (c cPreKeys) GenOnePreKey(ctx context.Context) (*keys.PreKey, error) {
	defer c.w.track("GenOnePreKey")()
	return c.PreKeyStore.GenOnePreKey(ctx)
}

func (c cPreKeys) RemovePreKey(ctx context.Context, id uint32) error {
	defer c.w.track("RemovePreKey")()
	return c.PreKeyStore.RemovePreKey(ctx, id)
}

func (c cPreKeys) MarkPreKeysAsUploaded(ctx context.Context, upToID uint32) error {
	defer c.w.track("MarkPreKeysAsUploaded")()
	return c.PreKeyStore.MarkPreKeysAsUploaded(ctx, upToID)
}

type cSenderKeys struct {
	store.SenderKeyStore
	w *writeCounts
}

func (c cSenderKeys) PutSenderKey(ctx context.Context, group, user string, session []byte) error {
	defer c.w.track("PutSenderKey")()
	return c.SenderKeyStore.PutSenderKey(ctx, group, user, session)
}

type cAppStateKeys struct {
	store.AppStateSyncKeyStore
	w *writeCounts
}

func (c cAppStateKeys) PutAppStateSyncKey(ctx context.Context, id []byte, key store.AppStateSyncKey) error {
	defer c.w.track("PutAppStateSyncKey")()
	return c.AppStateSyncKeyStore.PutAppStateSyncKey(ctx, id, key)
}

type cAppState struct {
	store.AppStateStore
	w *writeCounts
}

func (c cAppState) PutAppStateVersion(ctx context.Context, name string, version uint64, hash [128]byte) error {
	defer c.w.track("PutAppStateVersion")()
	return c.AppStateStore.PutAppStateVersion(ctx, name, version, hash)
}

func (c cAppState) PutAppStateMutationMACs(ctx context.Context, name string, version uint64, mutations []store.AppStateMutationMAC) error {
	defer c.w.track("PutAppStateMutationMACs")()
	return c.AppStateStore.PutAppStateMutationMACs(ctx, name, version, mutations)
}

type cContacts struct {
	store.ContactStore
	w *writeCounts
}

func (c cContacts) PutPushName(ctx context.Context, user types.JID, pushName string) (bool, string, error) {
	defer c.w.track("PutPushName")()
	return c.ContactStore.PutPushName(ctx, user, pushName)
}

func (c cContacts) PutBusinessName(ctx context.Context, user types.JID, name string) (bool, string, error) {
	defer c.w.track("PutBusinessName")()
	return c.ContactStore.PutBusinessName(ctx, user, name)
}

func (c cContacts) PutManyRedactedPhones(ctx context.Context, entries []store.RedactedPhoneEntry) error {
	defer c.w.track("PutManyRedactedPhones")()
	return c.ContactStore.PutManyRedactedPhones(ctx, entries)
}

type cChatSettings struct {
	store.ChatSettingsStore
	w *writeCounts
}

type cMsgSecrets struct {
	store.MsgSecretStore
	w *writeCounts
}

func (c cMsgSecrets) PutMessageSecrets(ctx context.Context, inserts []store.MessageSecretInsert) error {
	defer c.w.track("PutMessageSecrets")()
	return c.MsgSecretStore.PutMessageSecrets(ctx, inserts)
}

func (c cMsgSecrets) PutMessageSecret(ctx context.Context, chat, sender types.JID, id types.MessageID, secret []byte) error {
	defer c.w.track("PutMessageSecret")()
	return c.MsgSecretStore.PutMessageSecret(ctx, chat, sender, id, secret)
}

type cPrivacyTokens struct {
	store.PrivacyTokenStore
	w *writeCounts
}

func (c cPrivacyTokens) PutPrivacyTokens(ctx context.Context, tokens ...store.PrivacyToken) error {
	defer c.w.track("PutPrivacyTokens")()
	return c.PrivacyTokenStore.PutPrivacyTokens(ctx, tokens...)
}

func (c cPrivacyTokens) DeleteExpiredPrivacyTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	defer c.w.track("DeleteExpiredPrivacyTokens")()
	return c.PrivacyTokenStore.DeleteExpiredPrivacyTokens(ctx, cutoff)
}

type cNCTSalt struct {
	store.NCTSaltStore
	w *writeCounts
}

func (c cNCTSalt) PutNCTSalt(ctx context.Context, salt []byte) error {
	defer c.w.track("PutNCTSalt")()
	return c.NCTSaltStore.PutNCTSalt(ctx, salt)
}

type cEventBuffer struct {
	store.EventBuffer
	w *writeCounts
}

func (c cEventBuffer) PutBufferedEvent(ctx context.Context, hash [32]byte, plaintext []byte, ts time.Time) error {
	defer c.w.track("PutBufferedEvent")()
	return c.EventBuffer.PutBufferedEvent(ctx, hash, plaintext, ts)
}

func (c cEventBuffer) DoDecryptionTxn(ctx context.Context, fn func(context.Context) error) error {
	defer c.w.track("DoDecryptionTxn")()
	return c.EventBuffer.DoDecryptionTxn(ctx, fn)
}

func (c cEventBuffer) ClearBufferedEventPlaintext(ctx context.Context, hash [32]byte) error {
	defer c.w.track("ClearBufferedEventPlaintext")()
	return c.EventBuffer.ClearBufferedEventPlaintext(ctx, hash)
}

func (c cEventBuffer) DeleteOldBufferedHashes(ctx context.Context) error {
	defer c.w.track("DeleteOldBufferedHashes")()
	return c.EventBuffer.DeleteOldBufferedHashes(ctx)
}

func (c cEventBuffer) AddOutgoingEvent(ctx context.Context, chat types.JID, id types.MessageID, format string, plaintext []byte) error {
	defer c.w.track("AddOutgoingEvent")()
	return c.EventBuffer.AddOutgoingEvent(ctx, chat, id, format, plaintext)
}

func (c cEventBuffer) DeleteOldOutgoingEvents(ctx context.Context) error {
	defer c.w.track("DeleteOldOutgoingEvents")()
	return c.EventBuffer.DeleteOldOutgoingEvents(ctx)
}

type cLIDs struct {
	store.LIDStore
	w *writeCounts
}

func (c cLIDs) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	defer c.w.track("PutManyLIDMappings")()
	return c.LIDStore.PutManyLIDMappings(ctx, mappings)
}

func (c cLIDs) PutLIDMapping(ctx context.Context, lid, pn types.JID) error {
	defer c.w.track("PutLIDMapping")()
	return c.LIDStore.PutLIDMapping(ctx, lid, pn)
}

type cContainer struct {
	store.DeviceContainer
	w *writeCounts
}

func (c cContainer) PutDevice(ctx context.Context, d *store.Device) error {
	defer c.w.track("PutDevice")()
	return c.DeviceContainer.PutDevice(ctx, d)
}
