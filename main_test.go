package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the real leadmaster, built once for the tests that need a
// second process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "leadmaster-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "leadmaster")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCLI_ImportVerifyExport(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := run(t, "import", "--data", data, "--create", "--cliente", "demo", "--campaign", "k", "examples/contactos.csv")
	if code != 0 || !strings.Contains(out, "18 aceptadas") || !strings.Contains(out, "línea 21: rechazada") {
		t.Fatalf("import: %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := run(t, "journal", "verify", "--data", data); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify: %d %s", code, out)
	}
	code, out, _ = run(t, "journal", "export", "--format", "csv", "--data", data)
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.HasPrefix(out, "seq,time,kind") {
		t.Fatalf("export: %d\n%s", code, out)
	}
	// Flags from the environment; flags given win.
	t.Setenv("LEADMASTER_DATA", data)
	t.Setenv("LEADMASTER_FORMAT", "ndjson")
	if code, out, _ := run(t, "journal", "export"); code != 0 || strings.Count(out, "\n") != 3 || !strings.HasPrefix(out, `{"seq":1`) {
		t.Fatalf("export from env: %d\n%s", code, out)
	}
}

func TestCLI_BadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"nope"},
		{"import", "--data", t.TempDir(), "file.csv"},           // no cliente/campaign
		{"journal", "rewrite", "--data", t.TempDir()},           // unknown subcommand
		{"serve", "--log-format", "xml", "--data", t.TempDir()}, // bad flag value
		{"serve", "--backoff-base", "0s", "--data", t.TempDir()},
		{"serve", "--backoff-base", "1h", "--backoff-max", "1m", "--data", t.TempDir()},
		{"serve", "--breaker-failures", "-1", "--data", t.TempDir()},
		{"import", "--cliente", "NO SPACES", "--campaign", "k", "--create", "--data", t.TempDir(), "examples/contactos.csv"},
	} {
		if code, _, errOut := run(t, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errOut)
		}
	}
	if code, _, errOut := run(t, "import", "--cliente", "x", "--campaign", "k", "--data", t.TempDir(), "examples/contactos.csv"); code != 1 || !strings.Contains(errOut, "--create") {
		t.Errorf("missing cliente: exit %d %q", code, errOut)
	}
}

// tamperJournalRecord changes one byte of journal record seq in a copy of
// a data file: in every copy of it, since freed pages may still hold old
// copies of the live one.
func tamperJournalRecord(t *testing.T, raw []byte, seq int) []byte {
	t.Helper()
	marker := []byte(fmt.Sprintf(`{"seq":%d,"time":"`, seq))
	n := 0
	for off := 0; ; n++ {
		i := bytes.Index(raw[off:], marker)
		if i < 0 {
			break
		}
		off += i + len(marker)
		raw[off+3] ^= 1 // a digit of the year
	}
	if n == 0 {
		t.Fatalf("journal record %d not found", seq)
	}
	return raw
}

func TestCLI_VerifyNamesTamperedRecord(t *testing.T) {
	data := t.TempDir()
	if code, out, errOut := run(t, "import", "--data", data, "--create", "--cliente", "demo", "--campaign", "k", "examples/contactos.csv"); code != 0 {
		t.Fatal(out, errOut)
	}
	path := filepath.Join(data, "leadmaster.db")
	raw, _ := os.ReadFile(path)
	os.WriteFile(path, tamperJournalRecord(t, raw, 2), 0o600)
	code, out, _ := run(t, "journal", "verify", "--data", data)
	if code != 1 || !strings.Contains(out, "FAILED at record 2") {
		t.Fatalf("verify: %d %s", code, out)
	}
}

// A second process on the same data dir gets a clear error within a
// second, while the first is serving.
func TestCLI_SecondProcessFailsFast(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, binary, "serve", "--data", data, "--log-format", "json")
	stderr, _ := serve.StderrPipe()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "leadmaster serving") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	start := time.Now()
	out, err := exec.CommandContext(ctx, binary, "import", "--data", data, "--create", "--cliente", "c", "--campaign", "k", "examples/contactos.csv").CombinedOutput()
	took := time.Since(start)
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second process: err %v, output %q", err, out)
	}
	if took > 2*time.Second {
		t.Fatalf("second process took %v to fail", took)
	}
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
}

// Every setting of the example env file is a flag of serve, so the file
// configures what it says.
func TestExampleEnvFileMatchesServeFlags(t *testing.T) {
	raw, err := os.ReadFile("examples/leadmaster.env")
	if err != nil {
		t.Fatal(err)
	}
	var set []string
	for _, line := range strings.Split(string(raw), "\n") {
		if name, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(name, "LEADMASTER_") {
			set = append(set, name)
		}
	}
	if len(set) < 5 {
		t.Fatalf("found only %v", set)
	}
	code, _, help := run(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: %d", code)
	}
	for _, name := range set {
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "LEADMASTER_"), "_", "-"))
		if !strings.Contains(help, "-"+flagName+" ") && !strings.Contains(help, "-"+flagName+"\n") {
			t.Errorf("%s sets --%s, which serve does not have", name, flagName)
		}
	}
}

// A send engine that cannot start (here: the journal's tail does not
// decode, so the recent sends behind the caps are unknown) stops serve with
// an error that names the fix, instead of serving a page while nothing sends.
func TestServe_StopsWhenTheEngineCannotStart(t *testing.T) {
	data := t.TempDir()
	if code, out, errOut := run(t, "import", "--data", data, "--create", "--cliente", "demo", "--campaign", "k", "examples/contactos.csv"); code != 0 {
		t.Fatal(out, errOut)
	}
	db, err := bolt.Open(filepath.Join(data, "leadmaster.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("app.journal"))
		k, v := b.Cursor().Last()
		v = bytes.Clone(v)
		v[32] = 'x' // the payload's opening brace, after the 32-byte hash
		return b.Put(bytes.Clone(k), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := Main(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--log-format", "text"}, strings.NewReader(""), &out, &errOut)
	if ctx.Err() != nil || code == 0 || !strings.Contains(errOut.String(), "journal verify") {
		t.Fatalf("serve: exit %d after %v (deadline hit: %v)\n%s", code, ctx.Err(), ctx.Err() != nil, errOut.String())
	}
}
