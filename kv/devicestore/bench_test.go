package devicestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
)

// Benchmarks of Signal session put/get and prekey generation, bbolt store
// against whatsmeow's sqlstore on the same machine. Every write is a durable
// commit on both (bbolt fsyncs; SQLite in its default rollback-journal mode
// with synchronous=FULL). "sqlstore-wal" is the common WAL +
// synchronous=NORMAL setup, which is faster but may lose the last commits on
// power loss.
//
//	go test -run '^$' -bench . -benchtime 2000x ./kv/devicestore/

type benchBackend struct {
	name string
	open func(b *testing.B) (*store.Device, func())
}

func benchDevice(b *testing.B, c container) *store.Device {
	d := c.NewDevice()
	j := types.NewADJID("111", 0, 7)
	d.ID, d.Account = &j, testAccount()
	mustOK(b, c.PutDevice(context.Background(), d))
	return d
}

func openSQLBench(pragmas string) func(b *testing.B) (*store.Device, func()) {
	return func(b *testing.B) (*store.Device, func()) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "wa.db")+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(5000)"+pragmas)
		mustOK(b, err)
		c := sqlstore.NewWithDB(db, "sqlite", nil)
		mustOK(b, c.Upgrade(context.Background()))
		return benchDevice(b, c), func() { _ = c.Close() }
	}
}

var benchBackends = []benchBackend{
	{"sqlstore", openSQLBench("")},
	{"sqlstore-wal", openSQLBench("&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")},
	{"bbolt", func(b *testing.B) (*store.Device, func()) {
		o := openBolt(b, b.TempDir())
		return benchDevice(b, o.c), o.close
	}},
	{"bbolt-nogroupcommit", func(b *testing.B) (*store.Device, func()) {
		o := openBolt(b, b.TempDir())
		o.bolt.NoBatch = true
		return benchDevice(b, o.c), o.close
	}},
}

// sessionBlob is the size of a typical serialized Signal session record.
var sessionBlob = fill(1500, 7)

func BenchmarkSessionPut(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			d, done := bb.open(b)
			defer done()
			b.ResetTimer()
			for i := range b.N {
				if err := d.Sessions.PutSession(ctx, fmt.Sprintf("%d:0", i%500), sessionBlob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSessionPutParallel is many goroutines (whatsmeow's send and
// receive paths, several sessions) writing at once; failed calls are
// reported, not fatal, because SQLite's lock errors are the point.
func BenchmarkSessionPutParallel(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			d, done := bb.open(b)
			defer done()
			var n, failed atomic.Int64
			b.SetParallelism(4) // 4 x GOMAXPROCS writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if err := d.Sessions.PutSession(ctx, fmt.Sprintf("%d:0", i%500), sessionBlob); err != nil {
						failed.Add(1)
					}
				}
			})
			b.ReportMetric(float64(failed.Load()), "failed")
		})
	}
}

func BenchmarkSessionGet(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			d, done := bb.open(b)
			defer done()
			sessions := map[string][]byte{}
			for i := range 500 {
				sessions[fmt.Sprintf("%d:0", i)] = sessionBlob
			}
			mustOK(b, d.Sessions.PutManySessions(ctx, sessions))
			b.ResetTimer()
			for i := range b.N {
				s, err := d.Sessions.GetSession(ctx, fmt.Sprintf("%d:0", i%500))
				if err != nil || len(s) != len(sessionBlob) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPreKeyGen is one whatsmeow prekey refill: generate 50 prekeys,
// then mark them uploaded.
func BenchmarkPreKeyGen(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			d, done := bb.open(b)
			defer done()
			b.ResetTimer()
			for range b.N {
				ks, err := d.PreKeys.GetOrGenPreKeys(ctx, 50)
				if err != nil {
					b.Fatal(err)
				}
				if err := d.PreKeys.MarkPreKeysAsUploaded(ctx, ks[len(ks)-1].KeyID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecryptionTxn is what one incoming message costs with whatsmeow's
// decrypted-event buffer on: one transaction that reads and stores the
// session, stores the identity, consumes a prekey and buffers the plaintext.
func BenchmarkDecryptionTxn(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			d, done := bb.open(b)
			defer done()
			b.ResetTimer()
			for i := range b.N {
				addr := fmt.Sprintf("%d:0", i%500)
				err := d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
					if _, err := d.Sessions.GetSession(ctx, addr); err != nil {
						return err
					}
					if err := d.Sessions.PutSession(ctx, addr, sessionBlob); err != nil {
						return err
					}
					if err := d.Identities.PutIdentity(ctx, addr, [32]byte{byte(i)}); err != nil {
						return err
					}
					if err := d.PreKeys.RemovePreKey(ctx, uint32(i)); err != nil {
						return err
					}
					return d.EventBuffer.PutBufferedEvent(ctx, [32]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}, []byte("plaintext"), time.Unix(int64(i), 0))
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// outgoingBlob is a marshalled text message, what whatsmeow keeps per send.
var outgoingBlob = fill(300, 9)

// sendKeep is what whatsmeow's addRecentMessage does on every send with
// UseRetryMessageStore: AddOutgoingEvent, then DeleteOldOutgoingEvents (its
// lastRetryStoreClear is never set, so that runs every time too).
func sendKeep(d *store.Device, i int64) error {
	chat := types.NewJID(fmt.Sprint(90000+i%5000), types.HiddenUserServer)
	if err := d.EventBuffer.AddOutgoingEvent(ctx, chat, types.MessageID(fmt.Sprintf("3EB0%016X", i)), "wa", outgoingBlob); err != nil {
		return err
	}
	return d.EventBuffer.DeleteOldOutgoingEvents(ctx)
}

// BenchmarkOutgoingEventPerSend is the retry buffer's cost on one client's
// send path (whatsmeow serialises a client's sends).
func BenchmarkOutgoingEventPerSend(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			d, done := bb.open(b)
			defer done()
			b.ResetTimer()
			for i := range b.N {
				if err := sendKeep(d, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOutgoingEventPerSendDevices is 16 clients on one file sending
// at once, as the appliance runs them: on the bbolt store their writes are
// coalesced by the group committer (commits/send < 1).
func BenchmarkOutgoingEventPerSendDevices(b *testing.B) {
	const devices = 16
	for _, name := range []string{"bbolt", "bbolt-nogroupcommit"} {
		b.Run(name, func(b *testing.B) {
			o := openBolt(b, b.TempDir())
			defer o.close()
			o.bolt.NoBatch = name == "bbolt-nogroupcommit"
			devs := make([]*store.Device, devices)
			for i := range devs {
				d := o.c.NewDevice()
				j := types.NewADJID(fmt.Sprint(300+i), 0, 1)
				d.ID, d.Account = &j, testAccount()
				mustOK(b, o.c.PutDevice(ctx, d))
				devs[i] = d
			}
			var txBefore int
			mustOK(b, o.db.View(func(tx *bbolt.Tx) error { txBefore = tx.ID(); return nil }))
			var next, n atomic.Int64
			b.SetParallelism((devices + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				d := devs[next.Add(1)%devices] // one goroutine per client, roughly
				for pb.Next() {
					if err := sendKeep(d, n.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			var txAfter int
			mustOK(b, o.db.View(func(tx *bbolt.Tx) error { txAfter = tx.ID(); return nil }))
			b.ReportMetric(float64(txAfter-txBefore)/float64(b.N), "commits/send")
		})
	}
}
