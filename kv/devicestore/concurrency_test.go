package devicestore_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// concurrentDevices is the load: 10 devices writing sessions,
// prekeys and identities at once, as 10 whatsmeow clients sending at once
// do. Every store call must succeed: whatsmeow only logs a failed store
// call, and a lost session write is a message its recipient cannot decrypt.
const (
	concurrentDevices = 10
	opsPerWriter      = 60
)

func runConcurrentLoad(t *testing.T, e *env) (calls, failures int64, firstErr error) {
	devs := make([]*store.Device, concurrentDevices)
	for i := range devs {
		devs[i] = e.add(types.NewADJID(fmt.Sprint(500+i), 0, 1))
	}
	var nCalls, nFail atomic.Int64
	var mu sync.Mutex
	check := func(err error) {
		nCalls.Add(1)
		if err != nil {
			nFail.Add(1)
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Go(func() { // send path: sessions one by one and in bulk
			for i := range opsPerWriter {
				check(d.Sessions.PutSession(ctx, fmt.Sprintf("%d:0", i), fmt.Appendf(nil, "session-%d", i)))
				if i%10 == 0 {
					check(d.Sessions.PutManySessions(ctx, map[string][]byte{fmt.Sprintf("%d:1", i): []byte("a"), fmt.Sprintf("%d:2", i): []byte("b")}))
				}
			}
		})
		wg.Go(func() { // receive path: decrypt in one transaction
			for i := range opsPerWriter {
				check(d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
					if _, err := d.Sessions.GetSession(ctx, fmt.Sprintf("r%d:0", i)); err != nil {
						return err
					}
					if err := d.Sessions.PutSession(ctx, fmt.Sprintf("r%d:0", i), []byte("ratchet")); err != nil {
						return err
					}
					if err := d.Identities.PutIdentity(ctx, fmt.Sprintf("r%d:0", i), [32]byte{byte(i)}); err != nil {
						return err
					}
					return d.EventBuffer.PutBufferedEvent(ctx, [32]byte{byte(i), 1}, []byte("pt"), time.Unix(int64(i), 0))
				}))
			}
		})
		wg.Go(func() { // identities
			for i := range opsPerWriter {
				check(d.Identities.PutIdentity(ctx, fmt.Sprintf("%d:0", i), [32]byte{byte(i)}))
			}
		})
		wg.Go(func() { // prekeys: upload cycle, retry-receipt prekeys, consumption
			for i := range opsPerWriter / 10 {
				ks, err := d.PreKeys.GetOrGenPreKeys(ctx, 20)
				check(err)
				if err == nil {
					check(d.PreKeys.MarkPreKeysAsUploaded(ctx, ks[len(ks)-1].KeyID))
				}
				_, err = d.PreKeys.GenOnePreKey(ctx)
				check(err)
				check(d.PreKeys.RemovePreKey(ctx, uint32(i+1)))
			}
		})
	}
	wg.Wait()
	return nCalls.Load(), nFail.Load(), firstErr
}

// sqliteLoad also runs the load against sqlstore, to show why this store
// exists (slow: SQLite's busy timeout makes it take a minute or more).
var sqliteLoad = flag.Bool("sqlite-load", false, "also run TestConcurrentDevices against sqlstore and log its failures")

func TestConcurrentDevices_NoStoreCallFails(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if !b.bolt && !*sqliteLoad {
				t.Skip("pass -sqlite-load to compare with sqlstore")
			}
			e := newEnv(t, b)
			calls, failures, firstErr := runConcurrentLoad(t, e)
			if !b.bolt {
				// sqlstore is the reference for semantics, not for this
				// property: log how it fares under the same load.
				t.Logf("sqlstore on SQLite: %d of %d store calls failed (first: %v)", failures, calls, firstErr)
				return
			}
			if failures != 0 {
				t.Fatalf("%d of %d store calls failed; first: %v", failures, calls, firstErr)
			}
			t.Logf("bbolt: %d store calls, 0 failed", calls)
			e.reopen()
			for i := range concurrentDevices {
				d := e.get(types.NewADJID(fmt.Sprint(500+i), 0, 1))
				addrs := []string{}
				for j := range opsPerWriter {
					addrs = append(addrs, fmt.Sprintf("%d:0", j), fmt.Sprintf("r%d:0", j))
				}
				got, err := d.Sessions.GetManySessions(ctx, addrs)
				mustOK(t, err)
				for j := range opsPerWriter {
					eq(t, "session", string(got[fmt.Sprintf("%d:0", j)]), fmt.Sprintf("session-%d", j))
					eq(t, "decrypted session", string(got[fmt.Sprintf("r%d:0", j)]), "ratchet")
				}
				n, err := d.PreKeys.UploadedPreKeyCount(ctx)
				mustOK(t, err)
				// 6 rounds: 20 uploaded + 1 retry-receipt key each; IDs 1..6 consumed.
				eq(t, "uploaded prekeys", n, 6*21-6)
			}
		})
	}
}
