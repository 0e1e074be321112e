package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI_BackupRestore(t *testing.T) {
	data, backup := t.TempDir(), filepath.Join(t.TempDir(), "snap.db")
	if code, out, errOut := run(t, "import", "--data", data, "--create", "--cliente", "demo", "--campaign", "k", "examples/contactos.csv"); code != 0 {
		t.Fatal(out, errOut)
	}
	if code, _, errOut := run(t, "backup", "--data", data, "-o", backup); code != 0 {
		t.Fatalf("backup: %d %s", code, errOut)
	}
	target := t.TempDir()
	code, out, errOut := run(t, "restore", "--data", target, backup)
	if code != 0 || !strings.Contains(out, "18 envíos") {
		t.Fatalf("restore: %d %s %s", code, out, errOut)
	}
	if code, out, _ := run(t, "journal", "verify", "--data", target); code != 0 {
		t.Fatalf("verify restored: %s", out)
	}
	// An existing file is only replaced with --force, and kept aside.
	if code, _, errOut := run(t, "restore", "--data", target, backup); code == 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("restore over a file: %d %s", code, errOut)
	}
	if code, _, errOut := run(t, "restore", "--force", "--data", target, backup); code != 0 {
		t.Fatalf("restore --force: %s", errOut)
	}
	if _, err := os.Stat(filepath.Join(target, "leadmaster.db.bak")); err != nil {
		t.Fatal("the replaced file was not kept")
	}
	// Garbage, or a file whose journal does not verify, is refused and leaves nothing.
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(garbage, []byte(strings.Repeat("x", 8192)), 0o600)
	empty := t.TempDir()
	if code, _, errOut := run(t, "restore", "--data", empty, garbage); code == 0 || !strings.Contains(errOut, "not a leadmaster data file") {
		t.Fatalf("garbage: %d %s", code, errOut)
	}
	raw, _ := os.ReadFile(backup)
	raw = tamperJournalRecord(t, raw, 2)
	tampered := filepath.Join(t.TempDir(), "tampered.db")
	os.WriteFile(tampered, raw, 0o600)
	if code, _, errOut := run(t, "restore", "--data", empty, tampered); code == 0 || !strings.Contains(errOut, "record 2") {
		t.Fatalf("tampered: %d %s", code, errOut)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("a refused restore left %v", entries)
	}
}
