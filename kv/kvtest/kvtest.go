// Package kvtest holds test helpers for code that uses kv.
package kvtest

import (
	"context"
	"fmt"
	"testing"

	"leadmaster/engine"
	"leadmaster/kv"
)

// MustOpen opens a fresh data dir in t.TempDir(). At cleanup it closes the
// file and checks that the journal verifies (chain, replay, counters).
func MustOpen(tb testing.TB, opts kv.Options) (*kv.DB, string) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := kv.Open(dir, opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		rep, err := db.Verify(context.Background(), nil)
		if err != nil || !rep.OK {
			tb.Errorf("journal verify at cleanup: %+v %v", rep, err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return db, dir
}

// MustCampaign creates cliente "c1" (if needed) and a campaign with n envíos
// to distinct phones +5491100000001.. and returns the campaign id.
func MustCampaign(tb testing.TB, db *kv.DB, id string, n int) string {
	tb.Helper()
	ctx := context.Background()
	if _, err := db.Cliente(ctx, "c1"); err != nil {
		if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1", Name: "Cliente uno", DefaultRegion: "AR"}); err != nil {
			tb.Fatalf("create cliente: %v", err)
		}
	}
	if err := db.CreateCampaign(ctx, engine.Campaign{ID: id, Cliente: "c1", Name: id, Template: "Hola {{nombre}}"}); err != nil {
		tb.Fatalf("create campaign: %v", err)
	}
	imp, err := db.BeginImport(ctx, id)
	if err != nil {
		tb.Fatalf("begin import: %v", err)
	}
	for i := 1; i <= n; i++ {
		if err := imp.Add(ctx, kv.NewEnvio{Line: i + 1, Telefono: fmt.Sprintf("+54911%08d", i), Nombre: fmt.Sprintf("N%d", i)}); err != nil {
			tb.Fatalf("add: %v", err)
		}
	}
	if _, err := imp.Commit(ctx); err != nil {
		tb.Fatalf("commit import: %v", err)
	}
	return id
}
