package kv_test

import (
	"context"
	"errors"
	"testing"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/kvtest"
)

func TestUpdateCliente(t *testing.T) {
	db, _ := kvtest.MustOpen(t, kv.Options{})
	ctx := context.Background()
	if _, err := db.UpdateCliente(ctx, "c1", func(*engine.Cliente) error { return nil }); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := db.CreateCliente(ctx, engine.Cliente{ID: "c1", Name: "a", DefaultRegion: "AR"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDevice(ctx, "c1", "1@s.whatsapp.net"); err != nil {
		t.Fatal(err)
	}
	before, _ := db.Cliente(ctx, "c1")
	got, err := db.UpdateCliente(ctx, "c1", func(c *engine.Cliente) error {
		c.ID, c.Name, c.DefaultRegion, c.DeviceJID = "zz", "b", "UY", ""
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := db.Cliente(ctx, "c1")
	if got != stored || stored.Name != "b" || stored.DefaultRegion != "UY" || stored.ID != "c1" || stored.DeviceJID != before.DeviceJID || !stored.CreatedAt.Equal(before.CreatedAt) {
		t.Fatalf("stored %+v, returned %+v", stored, got)
	}
	refuse := errors.New("no")
	if _, err := db.UpdateCliente(ctx, "c1", func(c *engine.Cliente) error { c.Name = "x"; return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("refused: %v", err)
	}
	if c, _ := db.Cliente(ctx, "c1"); c.Name != "b" {
		t.Fatalf("refused edit written: %+v", c)
	}
}
