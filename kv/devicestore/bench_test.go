package devicestore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

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
