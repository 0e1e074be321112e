package wasim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/wasim"
)

// TestMain lets the test binary double as the standalone simulator: with WASIM_MAIN=1 it runs
// wasim.Main with the flags in WASIM_ARGS instead of the tests (a process the test can
// SIGKILL, as the crash tests will do with the appliance).
func TestMain(m *testing.M) {
	if os.Getenv("WASIM_MAIN") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := wasim.Main(ctx, strings.Fields(os.Getenv("WASIM_ARGS")), os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	code := m.Run()
	removeFixture()
	os.Exit(code)
}

// simProcess is a standalone simulator in a child process.
type simProcess struct {
	cmd  *exec.Cmd
	url  string // control API base, "http://127.0.0.1:PORT"
	done chan struct{}
}

// startSimProcess runs the simulator in a child process and waits for its "listening" line.
func startSimProcess(t *testing.T, args ...string) *simProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WASIM_MAIN=1", "WASIM_ARGS="+strings.Join(args, " "))
	cmd.Stderr = io.Discard
	if testing.Verbose() && os.Getenv("WASIM_TRACE") == "1" {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &simProcess{cmd: cmd, done: make(chan struct{})}
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("simulator process printed nothing: %v", lines.Err())
	}
	first := lines.Text()
	p.url, _ = strings.CutPrefix(first, "wasim listening on ")
	if p.url == first {
		t.Fatalf("unexpected first line %q", first)
	}
	go func() {
		defer close(p.done)
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

// stop signals the process and waits for it to exit (idempotent).
func (p *simProcess) stop(sig os.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	<-p.done
}

func (p *simProcess) addr() string { return strings.TrimPrefix(p.url, "http://") }

// control calls the control API and decodes the JSON answer into out (if not nil).
func control(t *testing.T, hc *http.Client, method, url string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(testCtx(t), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s", method, url, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, data)
		}
	}
}

func TestStandaloneSurvivesKill(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	snap := filepath.Join(dir, "wasim.json")
	p := startSimProcess(t, "-listen", "127.0.0.1:0", "-snapshot", snap)
	addr := p.addr()
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)

	tc := newTestClientFor(t, filepath.Join(dir, "client.db"), func(cli *whatsmeow.Client) {
		wasim.ConfigureClient(cli, wasim.HTTPClient(addr), wasim.RootPublicKey())
	})
	ctx := testCtx(t)
	qrs, err := tc.cli.GetQRChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.cli.Connect(); err != nil {
		t.Fatal(err)
	}
	item := <-qrs
	var scanned struct{ JID string }
	control(t, hc, "POST", p.url+"/sim/scan", map[string]string{"qr": item.Code, "phone": "15550004444"}, &scanned)
	waitFor[*events.PairSuccess](tc)
	waitFor[*events.Connected](tc)
	if got := fmt.Sprint(tc.cli.Store.ID); got != scanned.JID {
		t.Fatalf("client ID %s, control API said %s", got, scanned.JID)
	}
	// The prekey upload is the last registry change of a login: wait until it is on disk.
	var evs []wasim.Event
	control(t, hc, "GET", p.url+"/sim/events?kind=prekeys&wait=10s&jid="+scanned.JID, nil, &evs)

	p.stop(syscall.SIGKILL)
	waitFor[*events.Disconnected](tc)
	p2 := startSimProcess(t, "-listen", addr, "-snapshot", snap)
	// The client's first automatic reconnect was refused (nothing listened); the next one,
	// 2 s later, reaches the restarted simulator, which knows the device from its snapshot.
	waitFor[*events.Connected](tc)
	if n := countOf[*events.QR](tc); n != 1 {
		t.Errorf("client saw %d QR events, want only the first pairing's", n)
	}
	var accs []wasim.AccountInfo
	control(t, hc, "GET", p2.url+"/sim/accounts", nil, &accs)
	if len(accs) != 1 || len(accs[0].Devices) != 1 || accs[0].Devices[0].JID != scanned.JID || !accs[0].Devices[0].LoggedIn {
		t.Errorf("restarted simulator accounts = %+v, want %s logged in", accs, scanned.JID)
	}

	// Part 2 through the control API: a recipient, a fault, the ledger as NDJSON.
	control(t, hc, "POST", p2.url+"/sim/users", map[string]any{"phone": "15550002222", "name": "Bob"}, nil)
	bob := types.NewJID("15550002222", types.DefaultUserServer)
	if _, err := tc.cli.SendMessage(ctx, bob, text("hola"), whatsmeow.SendRequestExtra{ID: "3EB0000000000000000ST1"}); err != nil {
		t.Fatal(err)
	}
	control(t, hc, "POST", p2.url+"/sim/faults", map[string]any{"phone": "15550004444", "faults": wasim.Faults{AckError: 463}}, nil)
	_, err = tc.cli.SendMessage(ctx, bob, text("otra"), whatsmeow.SendRequestExtra{ID: "3EB0000000000000000ST2"})
	if !errors.Is(err, whatsmeow.ErrServerReturnedError) {
		t.Errorf("with ack_error 463 through the control API: err = %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", p2.url+"/sim/ledger?format=ndjson", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lines []wasim.LedgerEntry
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		var e wasim.LedgerEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("ndjson line %q: %v", sc.Text(), err)
		}
		lines = append(lines, e)
	}
	resp.Body.Close()
	if len(lines) != 2 || lines[0].Text != "hola" || lines[0].Acks != 1 || lines[1].AckError != 463 {
		t.Errorf("ledger = %+v", lines)
	}
	// The client's privacy-token IQ after its first send to bob runs in the background.
	control(t, hc, "GET", p2.url+"/sim/events?kind=client_token&wait=10s&jid="+scanned.JID, nil, &evs)
	tc.sync()
	tc.close()
	tc.assertCleanLog(readErr, "Error reconnecting after autoreconnect sleep")
	p2.stop(syscall.SIGTERM)
}
