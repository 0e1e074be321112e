package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

// legalNext lists, for a random walk, the transitions a worker may try.
var legalNext = map[engine.State][]engine.State{
	engine.Pendiente: {engine.Enviando, engine.Enviando, engine.Enviando, engine.Omitido, engine.Cancelado},
	engine.Enviando:  {engine.Enviado, engine.Enviado, engine.Pendiente, engine.Fallido},
	engine.Enviado:   {engine.Entregado, engine.Leido},
	engine.Entregado: {engine.Leido},
}

// randomRun applies n transitions from workers concurrent callers, each
// picking random envíos and legal moves; conflicts between workers are
// expected and retried with another pick. It returns the applied count.
func randomRun(t testing.TB, db *kv.DB, camp string, envios, n, workers int, seed uint64) int {
	t.Helper()
	var mu sync.Mutex
	applied := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			ctx := context.Background()
			for idle := 0; ; {
				if idle > 100_000 {
					t.Error("no legal move left: too few envíos for the walk")
					return
				}
				mu.Lock()
				done := applied >= n
				mu.Unlock()
				if done {
					return
				}
				r := engine.Ref{Campaign: camp, Seq: 1 + rng.Uint64N(uint64(envios))}
				e, err := db.Envio(ctx, r)
				if err != nil {
					t.Error(err)
					return
				}
				opts := legalNext[e.State]
				if len(opts) == 0 {
					idle++
					continue
				}
				to := opts[rng.IntN(len(opts))]
				err = db.Apply(ctx, engine.Transition{Envio: r, From: e.State, To: to, Text: "hola", MsgID: engine.MessageID(db.Secret(), r), Reason: "random"})
				if errors.Is(err, engine.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				applied++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return applied
}

func TestJournal_RandomConcurrentRunReplaysToStoredState(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed: %d", seed)
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	camp := kvtest.MustCampaign(t, db, "random", 6000)
	applied := randomRun(t, db, camp, 6000, 10_000, 64, seed)
	if applied < 10_000 {
		t.Fatalf("applied %d transitions, want 10000", applied)
	}
	rep, err := db.Verify(ctx, nil)
	if err != nil || !rep.OK {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// The replay equals the stored state; independently, the counters equal
	// a count of the envíos.
	counts, _ := db.Counts(ctx, camp)
	got := kv.Counts{}
	all, _ := db.Envios(ctx, camp, 0, 1<<20, "")
	for _, e := range all {
		got[e.State]++
	}
	for _, s := range engine.States {
		if got[s] != counts[s] {
			t.Fatalf("counter %s = %d, envíos say %d", s, counts[s], got[s])
		}
	}
	if rep.Records < uint64(applied) {
		t.Fatalf("journal has %d records for %d transitions", rep.Records, applied)
	}
}

// TestJournal_OneByteChangedIsNamed flips one byte of one record in a copy
// of the file and expects verify to name that record.
func TestJournal_OneByteChangedIsNamed(t *testing.T) {
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	camp := kvtest.MustCampaign(t, db, "k", 20)
	randomRun(t, db, camp, 20, 40, 2, 1)
	page, _ := db.JournalPage(context.Background(), 0, 1000)
	db.Close()
	raw, err := os.ReadFile(filepath.Join(dir, kv.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []uint64{1, uint64(len(page) / 2), uint64(len(page))} {
		t.Run(fmt.Sprint("seq", target), func(t *testing.T) {
			needle := []byte(fmt.Sprintf(`{"seq":%d,"time":"`, target))
			i := bytes.Index(raw, needle)
			if i < 0 || bytes.Count(raw, needle) != 1 {
				t.Fatalf("record %d not found once in the file", target)
			}
			bad := bytes.Clone(raw)
			bad[i+len(needle)+2] ^= 0x01 // a digit of the year
			cdir := t.TempDir()
			if err := os.WriteFile(filepath.Join(cdir, kv.FileName), bad, 0o600); err != nil {
				t.Fatal(err)
			}
			cdb, err := kv.Open(cdir, kv.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer cdb.Close()
			rep, err := cdb.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.BadSeq != target {
				t.Fatalf("verify = %+v, want a failure naming seq %d", rep, target)
			}
		})
	}
	// The untouched file verifies.
	odb, err := kv.Open(dir, kv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer odb.Close()
	if rep, err := odb.Verify(context.Background(), nil); err != nil || !rep.OK {
		t.Fatalf("original: %+v %v", rep, err)
	}
}

func TestVerify_DetectsRewrittenState(t *testing.T) {
	// A state rewritten behind the journal's back (here: a counter moved by
	// hand-made transitions that skip the journal cannot be made through
	// the API, so we rewrite an imported phone) is found by the digest.
	dir := t.TempDir()
	db, err := kv.Open(dir, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kvtest.MustCampaign(t, db, "k", 5)
	db.Close()
	path := filepath.Join(dir, kv.FileName)
	raw, _ := os.ReadFile(path)
	// The stored envío holds the phone behind its length (14 bytes).
	old := []byte("\x0e+5491100000003")
	if bytes.Count(raw, old) != 1 {
		t.Fatalf("phone not found once")
	}
	os.WriteFile(path, bytes.Replace(raw, old, []byte("\x0e+5491100000009"), 1), 0o600)
	db, err = kv.Open(dir, kv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := db.Verify(context.Background(), nil)
	if err != nil || rep.OK {
		t.Fatalf("verify = %+v %v, want the rewritten envío found", rep, err)
	}
}

func TestExport_CSVNeutralizesFormulas(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Suppress(ctx, "c1", "+5491100000001", "=HYPERLINK(\"x\")"); err != nil {
		t.Fatal(err)
	}
	var csvOut, ndjson bytes.Buffer
	if err := db.ExportJournal(ctx, &csvOut, kv.FormatCSV, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(csvOut.Bytes(), []byte(",=HYPERLINK")) || !bytes.Contains(csvOut.Bytes(), []byte(`'=HYPERLINK`)) {
		t.Fatalf("formula not neutralized:\n%s", csvOut.String())
	}
	if !bytes.Contains(csvOut.Bytes(), []byte(",'+5491100000001,")) {
		t.Fatalf("phone cell not neutralized:\n%s", csvOut.String())
	}
	if err := db.ExportJournal(ctx, &ndjson, kv.FormatNDJSON, 0); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(ndjson.Bytes(), []byte("\n")); n != 2 {
		t.Fatalf("ndjson has %d lines, want 2", n)
	}
	if err := db.ExportJournal(ctx, &ndjson, "xml", 0); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("unknown format: %v", err)
	}
}
