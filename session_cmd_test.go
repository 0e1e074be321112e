package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	waLog "go.mau.fi/whatsmeow/util/log"

	"leadmaster/kv"

	_ "modernc.org/sqlite"
)

// A device kept by another whatsmeow tool moves into the data file and
// becomes the cliente's session.
func TestCLI_SessionImport(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "wuzapi.db")
	sdb, err := sql.Open("sqlite", "file:"+src+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	container := sqlstore.NewWithDB(sdb, "sqlite", waLog.Noop)
	if err := container.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	dev := container.NewDevice()
	jid := types.JID{User: "5491100000001", Device: 7, Server: types.DefaultUserServer}
	dev.ID, dev.PushName = &jid, "Tienda"
	dev.Account = &waAdv.ADVSignedDeviceIdentity{
		Details: []byte("details"), AccountSignature: make([]byte, 64), AccountSignatureKey: make([]byte, 32), DeviceSignature: make([]byte, 64),
	}
	if err := container.PutDevice(ctx, dev); err != nil {
		t.Fatal(err)
	}
	sdb.Close()

	data := t.TempDir()
	if code, out, errOut := run(t, "session", "import", "--data", data, "--sqlstore", src, "--cliente", "tienda"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Fatalf("unknown cliente: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := run(t, "import", "--data", data, "--create", "--cliente", "tienda", "--campaign", "k", "examples/contactos.csv"); code != 0 {
		t.Fatal(out, errOut)
	}
	code, out, errOut := run(t, "session", "import", "--data", data, "--sqlstore", src, "--cliente", "tienda")
	if code != 0 || !strings.Contains(out, jid.String()) {
		t.Fatalf("session import: %d\n%s\n%s", code, out, errOut)
	}
	db, err := kv.Open(data, kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if cl, _ := db.Cliente(ctx, "tienda"); cl.DeviceJID != jid.String() {
		t.Fatalf("cliente device = %q, want %s", cl.DeviceJID, jid)
	}
	db.Close()
	if code, _, errOut := run(t, "session", "import", "--data", data, "--sqlstore", src, "--cliente", "tienda"); code == 0 || !strings.Contains(errOut, "already has") {
		t.Fatalf("second import: %d %s", code, errOut)
	}
}
