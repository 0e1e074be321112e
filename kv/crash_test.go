package kv_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

const crashChildEnv = "KV_CRASH_CHILD_DIR"

// TestCrashChild is the child of TestCrash_SIGKILL: it applies random
// transitions through group commit from several goroutines and imports
// campaigns, printing each acknowledged write, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("child process of TestCrash_SIGKILL only")
	}
	ctx := context.Background()
	// Small batches: each 1000-row import stages chunks in the background
	// and writes index runs before its commit, so kills land between them.
	kv.SetImportBatches(64, 300, 50)
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		out.Unlock()
	}
	if _, err := db.Campaign(ctx, "walk"); errors.Is(err, engine.ErrNotFound) {
		kvtest.MustCampaign(t, db, "walk", 2000)
	}
	say("ready")
	go func() { // imports, one after another
		for i := 0; ; i++ {
			id := fmt.Sprintf("imp-%d-%d", os.Getpid(), i)
			if err := db.CreateCampaign(ctx, engine.Campaign{ID: id, Cliente: "c1"}); err != nil {
				say("error %v", err)
				return
			}
			imp, err := db.BeginImport(ctx, id)
			if err != nil {
				say("error %v", err)
				return
			}
			for j := range 1000 {
				imp.Add(ctx, kv.NewEnvio{Line: j + 2, Telefono: fmt.Sprintf("+54911%08d", j)})
			}
			rep, err := imp.Commit(ctx)
			if err != nil {
				say("error %v", err)
				return
			}
			say("import %s %d", id, rep.Accepted)
		}
	}()
	seed := uint64(time.Now().UnixNano())
	for w := range 16 {
		go func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				r := engine.Ref{Campaign: "walk", Seq: 1 + rng.Uint64N(2000)}
				e, err := db.Envio(ctx, r)
				if err != nil {
					say("error %v", err)
					return
				}
				opts := legalNext[e.State]
				if len(opts) == 0 {
					continue
				}
				to := opts[rng.IntN(len(opts))]
				err = db.Apply(ctx, engine.Transition{Envio: r, From: e.State, To: to, Text: "hola", MsgID: engine.MessageID(db.Secret(), r)})
				if errors.Is(err, engine.ErrConflict) {
					continue
				}
				if err != nil {
					say("error %v", err)
					return
				}
				say("ack %d %s %s", r.Seq, e.State, to)
			}
		}()
	}
	select {} // until SIGKILL
}

// TestCrash_SIGKILL kills a child that writes through group commit at
// random moments, 20 times, and checks after each kill that every
// acknowledged transition is in the journal, the journal verifies, and no
// import is half visible.
func TestCrash_SIGKILL(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip()
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed: %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	acked := map[string]int{} // "seq from to" -> times acknowledged
	imported := map[string]int{}
	for kill := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill after a random number of acknowledged writes (event-driven:
		// we read the child's output, we never sleep).
		target := 10 + rng.IntN(150)
		sc := bufio.NewScanner(stdout)
		n := 0
		deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		for n < target && sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ack "):
				acked[strings.TrimPrefix(line, "ack ")]++
				n++
			case strings.HasPrefix(line, "import "):
				f := strings.Fields(line)
				var c int
				fmt.Sscan(f[2], &c)
				imported[f[1]] = c
			case strings.HasPrefix(line, "error"):
				t.Fatalf("child: %s", line)
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		// Acks printed before the kill but not yet read are acknowledged too.
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "ack ") {
				acked[strings.TrimPrefix(line, "ack ")]++
			} else if strings.HasPrefix(line, "import ") {
				f := strings.Fields(line)
				var c int
				fmt.Sscan(f[2], &c)
				imported[f[1]] = c
			}
		}
		cmd.Wait()
		deadline.Stop()
		if n < target {
			t.Fatalf("kill %d: child stopped after %d acks, wanted %d", kill, n, target)
		}
		start := time.Now()
		checkAfterCrash(t, dir, acked, imported)
		t.Logf("kill %d after %d acks; check took %v", kill, n, time.Since(start))
	}
}

func checkAfterCrash(t *testing.T, dir string, acked map[string]int, imported map[string]int) {
	t.Helper()
	ctx := context.Background()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := db.Verify(ctx, nil)
	if err != nil || !rep.OK {
		t.Fatalf("verify after crash: %+v %v", rep, err)
	}
	journaled := map[string]int{}
	for after := uint64(0); ; {
		page, err := db.JournalPage(ctx, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			after = e.Seq
			if e.Kind == engine.KindTransition && e.Campaign == "walk" && e.Reason != engine.ReasonRecovery {
				journaled[fmt.Sprintf("%d %s %s", e.Envio, e.From, e.To)]++
			}
		}
		if len(page) < 5000 {
			break
		}
	}
	for k, n := range acked {
		if journaled[k] < n {
			t.Fatalf("acknowledged transition %q x%d, journal has it x%d", k, n, journaled[k])
		}
	}
	campaigns, _ := db.Campaigns(ctx, "c1")
	visible := 0
	for _, c := range campaigns {
		visible += int(c.Visible)
	}
	if n, err := kv.PhoneIndexLen(db, "c1"); err != nil || n != visible {
		t.Fatalf("phone index has %d entries for %d visible envíos (%v): a dead import left some", n, visible, err)
	}
	for _, c := range campaigns {
		if !strings.HasPrefix(c.ID, "imp-") {
			continue
		}
		counts, _ := db.Counts(ctx, c.ID)
		if want, ok := imported[c.ID]; ok && (c.Visible != uint64(want) || counts.Total() != uint64(want)) {
			t.Fatalf("acknowledged import %s shows %d envíos, want %d", c.ID, c.Visible, want)
		}
		if c.Visible != 0 && c.Visible != 1000 {
			t.Fatalf("import %s is half visible: %d envíos", c.ID, c.Visible)
		}
	}
}
