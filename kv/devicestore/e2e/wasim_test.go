package e2e_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/kv/devicestore"
	"leadmaster/wasim"
)

const waitTimeout = 20 * time.Second

// client is a whatsmeow client on a bbolt device store, with its events
// recorded in order.
type client struct {
	t   *testing.T
	db  *bbolt.DB
	c   *devicestore.Container
	cli *whatsmeow.Client
	// closedByServer: the server ended the connection (a logout), so
	// close must not call Disconnect: whatsmeow's own teardown of that
	// socket may still run, and the two race inside whatsmeow
	// (NoiseSocket.Stop writes FrameSocket.OnDisconnect while
	// FrameSocket.Close reads it).
	closedByServer bool

	mu      sync.Mutex
	evs     []any
	changed chan struct{}
	cursor  int
}

func openClient(t *testing.T, sim *wasim.Server, path string) *client {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	c, err := devicestore.New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := c.GetFirstDevice(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cl := attach(t, sim, c, dev)
	cl.db = db
	return cl
}

// attach makes a client for dev, a device of c (stored or new). The client
// closes the bbolt file only if it opened it (openClient).
func attach(t *testing.T, sim *wasim.Server, c *devicestore.Container, dev *store.Device) *client {
	t.Helper()
	cl := &client{t: t, c: c, changed: make(chan struct{})}
	cl.cli = whatsmeow.NewClient(dev, nil)
	// As the appliance runs it: each decrypted message is one bbolt
	// transaction (session, prekey, identity and plaintext together).
	cl.cli.EnableDecryptedEventBuffer = true
	sim.Configure(cl.cli)
	cl.cli.AddEventHandler(cl.record)
	t.Cleanup(cl.close)
	return cl
}

func (cl *client) record(evt any) {
	cl.mu.Lock()
	cl.evs = append(cl.evs, evt)
	close(cl.changed)
	cl.changed = make(chan struct{})
	cl.mu.Unlock()
}

// close disconnects and closes the bbolt file (idempotent): a stopped appliance.
func (cl *client) close() {
	if cl.cli == nil {
		return
	}
	if !cl.closedByServer {
		cl.cli.Disconnect()
	}
	if cl.db != nil {
		if err := cl.db.Close(); err != nil {
			cl.t.Errorf("close bbolt: %v", err)
		}
	}
	cl.cli = nil
}

func waitFor[T any](cl *client) T {
	cl.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		cl.mu.Lock()
		for cl.cursor < len(cl.evs) {
			e := cl.evs[cl.cursor]
			cl.cursor++
			if v, ok := e.(T); ok {
				cl.mu.Unlock()
				return v
			}
		}
		ch := cl.changed
		cl.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			var zero T
			cl.t.Fatalf("timed out waiting for %s; events: %s", reflect.TypeOf(zero), cl.summary())
			return zero
		}
	}
}

func (cl *client) summary() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var names []string
	for _, e := range cl.evs {
		names = append(names, reflect.TypeOf(e).String())
	}
	return strings.Join(names, " ")
}

func countOf[T any](cl *client) int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	n := 0
	for _, e := range cl.evs {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

func waitSim(t *testing.T, sim *wasim.Server, after uint64, kind wasim.EventKind, jid string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := sim.WaitEvent(ctx, after, wasim.Is(kind, jid)); err != nil {
		t.Fatalf("waiting for simulator event %s %s: %v", kind, jid, err)
	}
}

func pairByQR(t *testing.T, sim *wasim.Server, cl *client, phone string) types.JID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	qrs, err := cl.cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qrs
	if item.Event != whatsmeow.QRChannelEventCode {
		t.Fatalf("QR channel: %+v", item)
	}
	jid, err := sim.ScanQR(ctx, item.Code, phone)
	if err != nil {
		t.Fatalf("ScanQR: %v", err)
	}
	waitFor[*events.PairSuccess](cl)
	waitFor[*events.Connected](cl)
	return jid
}

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

// A real whatsmeow client paired against wasim with the bbolt store, stopped
// and started again, logs in from the stored keys without a new QR and
// without uploading prekeys again.
func TestWasim_RestartLogsInFromBboltWithoutQR(t *testing.T) {
	sim := startSim(t)
	path := filepath.Join(t.TempDir(), "leadmaster.db")
	cl := openClient(t, sim, path)
	jid := pairByQR(t, sim, cl, "15550001111")
	uploaded, err := cl.cli.Store.PreKeys.UploadedPreKeyCount(context.Background())
	if err != nil || uploaded == 0 {
		t.Fatalf("after pairing: %d uploaded prekeys, err %v; want the first upload stored", uploaded, err)
	}
	cl.close()

	seq := sim.LastEvent()
	cl2 := openClient(t, sim, path) // same bbolt file: a restarted appliance
	if cl2.cli.Store.ID == nil || *cl2.cli.Store.ID != jid {
		t.Fatalf("reopened store has ID %v, want %s", cl2.cli.Store.ID, jid)
	}
	if err := cl2.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor[*events.Connected](cl2)
	waitSim(t, sim, seq, wasim.EventLoggedIn, jid.String())
	if n := countOf[*events.QR](cl2); n != 0 {
		t.Errorf("restarted client got %d QR events, want 0", n)
	}
	for _, e := range sim.Events(seq) {
		if e.Kind == wasim.EventPreKeys {
			t.Error("restarted client uploaded prekeys again")
		}
	}
	if !cl2.cli.IsLoggedIn() {
		t.Fatal("not logged in after restart")
	}
}

// A logout from the server goes through whatsmeow's own Store.Delete: the
// device and all of its data leave the bbolt file and the app's delete hook
// runs in the same transaction.
func TestWasim_LogoutDeletesDeviceAndRunsHook(t *testing.T) {
	if raceEnabled {
		t.Skip("the server's close of a logged-out socket makes whatsmeow race with itself (FrameSocket.closed, OnDisconnect); make test runs this without -race")
	}
	sim := startSim(t)
	path := filepath.Join(t.TempDir(), "leadmaster.db")
	cl := openClient(t, sim, path)
	hooked := make(chan types.JID, 1)
	cl.c.OnDeleteDevice = func(tx *bbolt.Tx, jid types.JID) error {
		b, err := tx.CreateBucketIfNotExists([]byte("app.logouts"))
		if err != nil {
			return err
		}
		hooked <- jid
		return b.Put([]byte(jid.String()), []byte("logged out"))
	}
	jid := pairByQR(t, sim, cl, "15550002222")
	seq := sim.LastEvent()
	if err := sim.Logout(jid); err != nil {
		t.Fatal(err)
	}
	lo := waitFor[*events.LoggedOut](cl)
	if lo.Reason != events.ConnectFailureLoggedOut {
		t.Errorf("LoggedOut = %+v", lo)
	}
	waitSim(t, sim, seq, wasim.EventConnClosed, jid.String())
	cl.closedByServer = true
	select {
	case got := <-hooked:
		if got != jid {
			t.Errorf("hook got %s, want %s", got, jid)
		}
	default:
		t.Fatal("delete hook did not run")
	}
	devs, err := cl.c.GetAllDevices(context.Background())
	if err != nil || len(devs) != 0 {
		t.Fatalf("after logout: %d devices, err %v", len(devs), err)
	}
	err = cl.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte("app.logouts")).Get([]byte(jid.String())); string(v) != "logged out" {
			t.Errorf("app write of the hook: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
