package devicestore_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"leadmaster/kv/devicestore"
)

// The crash test runs a child process (this test binary) that loops over
// whatsmeow's decryption transaction, DoDecryptionTxn{ load and store the
// session, store the identity, consume a prekey, buffer the plaintext }, and
// prints each index after its commit returns, with other goroutines doing
// batched writes meanwhile. The parent kills it with SIGKILL at a random
// point, reopens the file and checks: bbolt's consistency check passes;
// everything the child reported committed is there; the session ratchet and
// the buffered plaintexts agree (no transaction is half applied); nothing
// beyond the last commit is visible. Three kill/restart rounds.

const crashEnv = "DEVICESTORE_CRASH_DB"

func crashHash(i int) [32]byte { return sha256.Sum256([]byte(strconv.Itoa(i))) }

// crashSession is large enough to make the file grow and pages split.
func crashSession(i int) []byte {
	b := make([]byte, 1024+i%3000)
	copy(b, strconv.Itoa(i)+":")
	return b
}

func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrash_SIGKILLDuringDecryptionTxn")
	}
	db := mustOpenBolt(t, path)
	c, err := devicestore.New(db, nil)
	mustOK(t, err)
	d, err := c.GetDevice(ctx, dev1)
	mustOK(t, err)
	if d == nil {
		d = addDevice(t, c, dev1)
		_, err := d.PreKeys.GetOrGenPreKeys(ctx, 100)
		mustOK(t, err)
	}
	start := 1
	if s, err := d.Sessions.GetSession(ctx, "peer:0"); err == nil && s != nil {
		n, _ := strconv.Atoi(string(s[:indexByte(s, ':')]))
		start = n + 1
	}
	for g := range 4 { // background batched writers
		go func() {
			for i := 0; ; i++ {
				if err := d.Identities.PutIdentity(ctx, fmt.Sprintf("bg%d-%d:0", g, i%500), [32]byte{byte(i)}); err != nil {
					fmt.Printf("error %v\n", err)
					os.Exit(3)
				}
			}
		}()
	}
	for i := start; ; i++ {
		err := d.EventBuffer.DoDecryptionTxn(ctx, func(ctx context.Context) error {
			if _, err := d.Sessions.GetSession(ctx, "peer:0"); err != nil {
				return err
			}
			if err := d.Sessions.PutSession(ctx, "peer:0", crashSession(i)); err != nil {
				return err
			}
			if err := d.Identities.PutIdentity(ctx, "peer:0", [32]byte{byte(i)}); err != nil {
				return err
			}
			if err := d.PreKeys.RemovePreKey(ctx, uint32(i)); err != nil {
				return err
			}
			return d.EventBuffer.PutBufferedEvent(ctx, crashHash(i), []byte("plaintext "+strconv.Itoa(i)), time.Unix(int64(i), 0))
		})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("committed %d\n", i) // unbuffered: the parent sees it once the commit returned
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return len(b)
}

func TestCrash_SIGKILLDuringDecryptionTxn(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(1)
	if s := os.Getenv("DEVICESTORE_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set DEVICESTORE_CRASH_SEED for other kill points)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(t.TempDir(), "crash.db")
	acked := 0
	for round := range 3 {
		killAfter := 20 + rng.IntN(300)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		out, err := cmd.StdoutPipe()
		mustOK(t, err)
		cmd.Stderr = os.Stderr
		mustOK(t, cmd.Start())
		sc := bufio.NewScanner(out)
		seen := 0
		for sc.Scan() {
			var i int
			if _, err := fmt.Sscanf(sc.Text(), "committed %d", &i); err != nil {
				continue // test framework output or an error line
			}
			if i != acked+1 {
				t.Fatalf("round %d: child committed %d after %d", round, i, acked)
			}
			acked = i
			if seen++; seen == killAfter {
				mustOK(t, cmd.Process.Signal(syscall.SIGKILL))
				// Keep reading: lines already in the pipe were committed too.
			}
		}
		_ = cmd.Wait()
		if seen < killAfter {
			t.Fatalf("round %d: child stopped after %d commits without being killed", round, seen)
		}
		acked = verifyAfterCrash(t, path, acked)
		t.Logf("round %d: killed after %d reported commits this round, %d in total survived", round, seen, acked)
	}
}

// verifyAfterCrash returns the index of the last committed transaction.
func verifyAfterCrash(t *testing.T, path string, acked int) int {
	t.Helper()
	db := mustOpenBolt(t, path)
	defer db.Close()
	checkBolt(t, db)
	c, err := devicestore.New(db, nil)
	mustOK(t, err)
	d, err := c.GetDevice(ctx, dev1)
	mustOK(t, err)
	s, err := d.Sessions.GetSession(ctx, "peer:0")
	mustOK(t, err)
	last, _ := strconv.Atoi(string(s[:indexByte(s, ':')]))
	if last < acked || last > acked+1 {
		t.Fatalf("session is at %d; child reported %d committed", last, acked)
	}
	eq(t, "session bytes", s, crashSession(last))
	for i := 1; i <= last+1; i++ {
		ev, err := d.EventBuffer.GetBufferedEvent(ctx, crashHash(i))
		mustOK(t, err)
		if i == last+1 {
			if ev != nil {
				t.Fatalf("event %d visible beyond the last committed session %d", i, last)
			}
			break
		}
		if ev == nil || string(ev.Plaintext) != "plaintext "+strconv.Itoa(i) {
			t.Fatalf("event %d missing or wrong after crash: %+v", i, ev)
		}
	}
	ok, err := d.Identities.IsTrustedIdentity(ctx, "peer:0", [32]byte{byte(last)})
	mustOK(t, err)
	eq(t, "identity of the last transaction", ok, true)
	if last < 100 {
		pk, err := d.PreKeys.GetPreKey(ctx, uint32(last+1))
		mustOK(t, err)
		eq(t, "prekey after the last transaction unused", pk != nil, true)
	}
	pk, err := d.PreKeys.GetPreKey(ctx, uint32(last))
	mustOK(t, err)
	eq(t, "prekey of the last transaction consumed", pk == nil, true)
	return last
}
