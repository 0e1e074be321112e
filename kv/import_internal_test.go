package kv

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// smallBatches makes every import batch tiny so that a few hundred rows go
// through many chunks, index runs and index transactions.
func smallBatches(t *testing.T) {
	chunk, run, ichunk := importChunk, indexRun, indexChunk
	importChunk, indexRun, indexChunk = 7, 23, 5
	t.Cleanup(func() { importChunk, indexRun, indexChunk = chunk, run, ichunk })
}

func openTestDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if rep, err := db.Verify(context.Background(), nil); err != nil || !rep.OK {
			t.Errorf("verify: %+v %v", rep, err)
		}
		db.Close()
	})
	return db
}

// beginImport creates cliente c1 and its campaign k and begins an import
// into k.
func beginImport(t *testing.T, db *DB, ctx context.Context) *Import {
	t.Helper()
	if err := db.CreateCliente(context.Background(), engine.Cliente{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCampaign(context.Background(), engine.Campaign{ID: "k", Cliente: "c1"}); err != nil {
		t.Fatal(err)
	}
	imp, err := db.BeginImport(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	return imp
}

// addRows adds n rows, row i with phone(i), to imp.
func addRows(t *testing.T, ctx context.Context, imp *Import, n int, phone func(int) string) {
	t.Helper()
	for i := range n {
		if err := imp.Add(ctx, NewEnvio{Line: i + 2, Telefono: phone(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// phoneIndex returns every entry of a cliente's phone index.
func phoneIndex(t *testing.T, db *DB, cliente string) []string {
	t.Helper()
	var keys []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b, _ := sub(tx, bucketPhones, cliente, false)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			phone, campaign, seq, err := parsePhoneKey(k)
			keys = append(keys, fmt.Sprintf("%s %s %d", phone, campaign, seq))
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Imports in many chunks and index runs dedup exactly like a simple model:
// within the import, across runs, against an earlier import, with
// suppressed phones skipped first; the phone index ends with one entry per
// accepted envío.
func TestImport_RunsDedupLikeAModel(t *testing.T) {
	smallBatches(t)
	db := openTestDB(t)
	ctx := context.Background()
	if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	// Another campaign's entries interleave with this one's in the index.
	for _, id := range []string{"k", "other"} {
		if err := db.CreateCampaign(ctx, engine.Campaign{ID: id, Cliente: "c1"}); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 120)
	for i := range pool {
		// Lengths 4..15 digits; some are prefixes of others.
		pool[i] = "+549" + fmt.Sprint(1e9 + rng.IntN(1e9))[:1+rng.IntN(10)]
	}
	pool[1] = pool[0] + "7"
	suppressed := map[string]bool{pool[5]: true, pool[6]: true}
	for p := range suppressed {
		if err := db.Suppress(ctx, "c1", p, "BAJA"); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var want []string
	importRows := func(campaign string, n int, model bool) engine.ImportReport {
		t.Helper()
		imp, err := db.BeginImport(ctx, campaign)
		if err != nil {
			t.Fatal(err)
		}
		var dups, supp int
		for i := range n {
			p := pool[rng.IntN(len(pool))]
			if err := imp.Add(ctx, NewEnvio{Line: i + 2, Telefono: p}); err != nil {
				t.Fatal(err)
			}
			if !model {
				continue
			}
			switch {
			case suppressed[p]:
				supp++
			case seen[p]:
				dups++
			default:
				seen[p] = true
				want = append(want, p)
			}
		}
		rep, err := imp.Commit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if model && (rep.Duplicates != dups || rep.Suppressed != supp) {
			t.Fatalf("report %+v, model: %d duplicates, %d suppressed", rep, dups, supp)
		}
		return rep
	}
	importRows("other", 150, false)
	importRows("k", 400, true)
	importRows("k", 200, true)
	envios, err := db.Envios(ctx, "k", 0, 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range envios {
		got = append(got, e.Telefono)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("envíos\n got %v\nwant %v", got, want)
	}
	var idx []string
	for _, k := range phoneIndex(t, db, "c1") {
		if strings.Contains(k, " k ") {
			idx = append(idx, k)
		}
	}
	if len(idx) != len(want) {
		t.Fatalf("phone index has %d entries for k, want %d", len(idx), len(want))
	}
	for _, e := range envios {
		byPhone, err := db.EnviosByPhone(ctx, "c1", e.Telefono)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, b := range byPhone {
			if b.Ref.Campaign == "k" {
				n++
				if b.Ref != e.Ref {
					t.Fatalf("%s indexed as %s, stored as %s", e.Telefono, b.Ref, e.Ref)
				}
			}
		}
		if n != 1 {
			t.Fatalf("%s found %d times in k", e.Telefono, n)
		}
	}
}

// An import aborted after some index runs were written leaves neither rows
// nor index entries.
func TestImport_AbortRemovesWrittenIndexRuns(t *testing.T) {
	smallBatches(t)
	db := openTestDB(t)
	ctx := context.Background()
	imp := beginImport(t, db, ctx)
	addRows(t, ctx, imp, 100, func(i int) string { return fmt.Sprintf("+5491155%06d", i*7919%1000) })
	if len(phoneIndex(t, db, "c1")) == 0 {
		t.Fatal("no index run was written: the test does not test anything")
	}
	imp.Abort()
	if idx := phoneIndex(t, db, "c1"); len(idx) != 0 {
		t.Fatalf("aborted import left index entries: %v", idx)
	}
	if envios, _ := db.Envios(ctx, "k", 0, 10, ""); len(envios) != 0 {
		t.Fatalf("aborted import left envíos: %v", envios)
	}
}

func TestImport_RefusesNonE164(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	imp := beginImport(t, db, ctx)
	defer imp.Abort()
	for _, p := range []string{"", "+", "5491155550001", "+0541", "+54 9", "+5491155550001234"} {
		if err := imp.Add(ctx, NewEnvio{Line: 2, Telefono: p}); err == nil {
			t.Errorf("Add(%q) accepted", p)
		}
	}
}

// phoneNum keeps the phones' string order, the order of the index keys.
func TestPhoneNum_OrderAndRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	phone := func() string {
		return "+" + fmt.Sprint(1+rng.IntN(9)) + fmt.Sprint(1e15 + rng.Uint64()%1e15)[:rng.IntN(15)]
	}
	for range 20000 {
		a, b := phone(), phone()
		na, oka := parsePhoneNum(a)
		nb, okb := parsePhoneNum(b)
		if !oka || !okb {
			t.Fatalf("parse %q %v, %q %v", a, oka, b, okb)
		}
		if string(na.appendTo(nil)) != a {
			t.Fatalf("round trip %q -> %q", a, na.appendTo(nil))
		}
		want := bytes.Compare(phoneKey(a, "k", 1), phoneKey(b, "k", 1))
		if got := cmp.Compare(na, nb); got != want {
			t.Fatalf("order of %q, %q: %d, keys say %d", a, b, got, want)
		}
	}
}

// A chunk that fails to stage in the background fails the import: a later
// Add or the Commit returns the error and nothing becomes visible.
func TestImport_BackgroundStagingErrorFailsTheImport(t *testing.T) {
	smallBatches(t)
	db := openTestDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	imp := beginImport(t, db, ctx)
	var addErr error
	for i := 0; i < 1000 && addErr == nil; i++ {
		if i == 30 {
			cancel()
		}
		addErr = imp.Add(ctx, NewEnvio{Line: i + 2, Telefono: fmt.Sprintf("+54911%08d", i)})
	}
	if addErr == nil {
		t.Fatal("Add kept accepting rows after staging failed")
	}
	if _, err := imp.Commit(context.Background()); err == nil {
		t.Fatal("Commit of a failed import succeeded")
	}
	if envios, _ := db.Envios(context.Background(), "k", 0, 10, ""); len(envios) != 0 {
		t.Fatalf("failed import left %d envíos", len(envios))
	}
	if idx := phoneIndex(t, db, "c1"); len(idx) != 0 {
		t.Fatalf("failed import left index entries: %v", idx)
	}
	imp, err := db.BeginImport(context.Background(), "k")
	if err != nil {
		t.Fatalf("campaign not importable after a failed import: %v", err)
	}
	if err := imp.Add(context.Background(), NewEnvio{Line: 2, Telefono: "+5491100000001"}); err != nil {
		t.Fatal(err)
	}
	if rep, err := imp.Commit(context.Background()); err != nil || rep.Accepted != 1 || rep.FirstSeq != 1 {
		t.Fatalf("import after failure: %+v %v", rep, err)
	}
}

// phoneTable behaves as a set of phones, through growth, and drains sorted.
func TestPhoneTable_LikeAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tab phoneTable
	model := map[phoneNum]uint64{}
	for i := range 5000 {
		p, _ := parsePhoneNum(fmt.Sprintf("+%d", 1+rng.IntN(3000)))
		if tab.has(p) != (model[p] != 0) {
			t.Fatalf("has(%d) = %v, model %v", p, tab.has(p), model[p] != 0)
		}
		if model[p] == 0 {
			model[p] = uint64(i + 1)
			tab.add(phoneEntry{p, uint64(i + 1)})
		}
		if tab.len() != len(model) {
			t.Fatalf("len %d, model %d", tab.len(), len(model))
		}
	}
	out := tab.drain()
	if len(out) != len(model) || tab.len() != 0 || tab.has(out[0].phone) {
		t.Fatalf("drained %d of %d; table left with %d", len(out), len(model), tab.len())
	}
	for i, e := range out {
		if model[e.phone] != e.seq || i > 0 && out[i-1].phone >= e.phone {
			t.Fatalf("drained entry %d %+v out of order or wrong seq", i, e)
		}
	}
}

// A journal record that claims to import far more envíos than the stored
// campaign has (chained correctly, as a forger with the code would write
// it) fails Verify by name instead of making the replay allocate for them.
func TestVerify_RefusesAnImportBeyondTheCampaign(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	imp := beginImport(t, db, ctx)
	if err := imp.Add(ctx, NewEnvio{Line: 2, Telefono: "+5491155550001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := imp.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	err = db.write(ctx, func(w *wtx) error {
		return abort(w.appendEntry(engine.Entry{Kind: engine.KindImport, Cliente: "c1", Campaign: "k", FirstSeq: 2, LastSeq: 1 << 40}))
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := db.Verify(ctx, nil)
	if err != nil || rep.OK || !strings.Contains(rep.Problem, "does not have") {
		t.Fatalf("verify = %+v %v, want the forged import named", rep, err)
	}
}

// An import into a campaign cancelled while its file was read is refused at
// the commit: its envíos would stay pendiente for ever.
func TestImport_CommitRefusesACampaignCancelledMeanwhile(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	imp := beginImport(t, db, ctx)
	if err := imp.Add(ctx, NewEnvio{Line: 2, Telefono: "+5491155550001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateCampaign(ctx, "k", func(c *engine.Campaign) error { c.Status = engine.Cancelada; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := imp.Commit(ctx); !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("commit into a cancelled campaign: %v, want ErrConflict", err)
	}
	if c, _ := db.Counts(ctx, "k"); c.Total() != 0 {
		t.Fatalf("counts %v after a refused import", c)
	}
	if idx := phoneIndex(t, db, "c1"); len(idx) != 0 {
		t.Fatalf("refused import left index entries: %v", idx)
	}
}

// When an Abort could not remove its rows (a failed write), the next import
// into the campaign removes them first instead of inheriting their phone
// index entries.
func TestBeginImport_RemovesWhatAFailedAbortLeft(t *testing.T) {
	smallBatches(t)
	db := openTestDB(t)
	ctx := context.Background()
	imp := beginImport(t, db, ctx)
	addRows(t, ctx, imp, 60, func(i int) string { return fmt.Sprintf("+5491166%06d", i) })
	if err := imp.wait(); err != nil {
		t.Fatal(err)
	}
	if len(phoneIndex(t, db, "c1")) == 0 {
		t.Fatal("no index run was written: the test does not test anything")
	}
	// What Abort does when dropStaged fails: the import is over, its rows stay.
	imp.done = true
	db.imports.Delete("k")

	imp, err := db.BeginImport(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	addRows(t, ctx, imp, 5, func(i int) string { return fmt.Sprintf("+5491177%06d", i) })
	if rep, err := imp.Commit(ctx); err != nil || rep.Accepted != 5 {
		t.Fatalf("import after a failed abort: %+v %v", rep, err)
	}
	if idx := phoneIndex(t, db, "c1"); len(idx) != 5 {
		t.Fatalf("phone index has %d entries for 5 envíos: %v", len(idx), idx)
	}
	if got, _ := db.EnviosByPhone(ctx, "c1", "+5491166000001"); len(got) != 0 {
		t.Fatalf("a phone of the failed import finds %v", got)
	}
}
