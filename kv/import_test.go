package kv_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"leadmaster/engine"
	"leadmaster/engine/importer"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

func newCampaign(t *testing.T, db *kv.DB, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Cliente(ctx, "c1"); err != nil {
		if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1", DefaultRegion: "AR"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateCampaign(ctx, engine.Campaign{ID: id, Cliente: "c1"}); err != nil {
		t.Fatal(err)
	}
}

func TestImportFile_DuplicatesSuppressedAndRejects(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	newCampaign(t, db, "k")
	if err := db.Suppress(ctx, "c1", "+5491155550003", "BAJA"); err != nil {
		t.Fatal(err)
	}
	csv := "\ufeffnombre;telefono;producto\n" +
		"Ana;+54 9 11 5555-0001;zapatos\n" +
		"Beto;+54 9 11 5555 0002;medias\n" +
		"Ana otra vez;54 9 11 5555 0001;\n" + // same phone, other spelling
		"Caro;+54 9 11 5555 0003;gorra\n" + // suppressed
		"Dani;no tengo;x\n" + // invalid phone
		"Eli;0054 9 11 5555-0004;\n"
	rep, err := db.ImportFile(ctx, "k", kv.UploadCSV, strings.NewReader(csv), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 3 || rep.Duplicates != 1 || rep.Suppressed != 1 || rep.RejectedCount != 1 {
		t.Fatalf("report %+v, want 3 accepted, 1 duplicate, 1 suppressed, 1 rejected", rep)
	}
	if rep.Rejected[0].Line != 6 || rep.Skipped[0].Line != 4 || rep.Skipped[0].Reason != kv.SkipDuplicate {
		t.Fatalf("line numbers: rejected %+v skipped %+v", rep.Rejected, rep.Skipped)
	}
	envios, _ := db.Envios(ctx, "k", 0, 10, "")
	if len(envios) != 3 || envios[0].Telefono != "+5491155550001" || envios[0].Variables["producto"] != "zapatos" {
		t.Fatalf("envíos %+v", envios)
	}
	// A second import into the same campaign dedups against the first.
	rep, err = db.ImportFile(ctx, "k", kv.UploadJSON, strings.NewReader(`[{"telefono":"+5491155550002","nombre":"B"},{"telefono":"+5491155550009"}]`), nil)
	if err != nil || rep.Accepted != 1 || rep.Duplicates != 1 || rep.FirstSeq != 4 {
		t.Fatalf("second import: %+v %v", rep, err)
	}
	if c, _ := db.Counts(ctx, "k"); c[engine.Pendiente] != 4 {
		t.Fatalf("counts %v", c)
	}
}

// A file-level failure after thousands of staged rows leaves nothing.
func TestImportFile_FileErrorLeavesNothing(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	newCampaign(t, db, "k")
	var b strings.Builder
	b.WriteString("telefono,nombre\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "+54911%08d,x\n", 55000000+i)
	}
	b.WriteString("+5491100000000,\x00garbage\n")
	_, err := db.ImportFile(ctx, "k", kv.UploadCSV, strings.NewReader(b.String()), nil)
	var fe *importer.FileError
	if !errors.As(err, &fe) || !errors.Is(err, importer.ErrEncoding) {
		t.Fatalf("err = %v, want an encoding FileError", err)
	}
	if envios, _ := db.Envios(ctx, "k", 0, 10, ""); len(envios) != 0 {
		t.Fatalf("half an import is visible: %d envíos", len(envios))
	}
	if c, _ := db.Counts(ctx, "k"); c.Total() != 0 {
		t.Fatalf("counts %v", c)
	}
	// The campaign takes a good import afterwards, numbered from 1.
	rep, err := db.ImportFile(ctx, "k", kv.UploadCSV, strings.NewReader("telefono\n+5491155550001\n"), nil)
	if err != nil || rep.FirstSeq != 1 {
		t.Fatalf("import after failure: %+v %v", rep, err)
	}
}

func TestImport_OneAtATimePerCampaign(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	newCampaign(t, db, "k")
	imp, err := db.BeginImport(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer imp.Abort()
	if _, err := db.BeginImport(ctx, "k"); !errors.Is(err, kv.ErrImportRunning) {
		t.Fatalf("second import: %v, want ErrImportRunning", err)
	}
}
