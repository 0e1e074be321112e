package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/wasim"
)

// TestCrash is the crash test with the real binary (DESIGN.md "Proof"): a
// standalone wasim, `leadmaster serve` running a campaign against it, and
// SIGKILL at random moments (each after a seeded random number of further
// acked sends, right when a message arrives at the server, right after its
// ack, or right after a login), with a restart after each kill, until the
// campaign is terminada. Then, against wasim's ledger (what WhatsApp
// received) and the data file:
//
//   - every envío is final;
//   - every enviado/entregado/leido has a ledger ack of its message id, from
//     our number, to its phone, and its recipient decrypted exactly its text;
//   - no recipient read two message ids (a resend after a crash is the same
//     id, which the server dedups);
//   - `leadmaster journal verify` passes.
//
// In `make test` it is small (a few hundred envíos, 12 kills, no faults).
// `make chaos` (LEADMASTER_CHAOS=1) runs 10,000 envíos, 20 kills and wasim's
// seeded chaos (drops before the ack, error acks, acks that never come, slow
// acks). LEADMASTER_CRASH_SEED=N replays a seed (the kill schedule and the
// fault sequence; the timing of a real process is not replayable).
func TestCrash(t *testing.T) {
	cfg := crashConfig{envios: 400, kills: 12, sendTimeout: 10 * time.Second, wait: 90 * time.Second, finish: 5 * time.Minute}
	if os.Getenv("LEADMASTER_CHAOS") == "1" {
		cfg = crashConfig{envios: 10000, kills: 20, chaos: true, sendTimeout: 5 * time.Second, wait: 15 * time.Minute, finish: 50 * time.Minute}
	} else if testing.Short() {
		cfg.envios, cfg.kills = 120, 10
	}
	if v := os.Getenv("LEADMASTER_CRASH_ENVIOS"); v != "" {
		cfg.envios, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("LEADMASTER_CRASH_KILLS"); v != "" {
		cfg.kills, _ = strconv.Atoi(v)
	}
	cfg.seed = time.Now().UnixNano()
	if v := os.Getenv("LEADMASTER_CRASH_SEED"); v != "" {
		var err error
		if cfg.seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("LEADMASTER_CRASH_SEED=%q: %v", v, err)
		}
	}
	t.Logf("crash test: seed %d (replay with LEADMASTER_CRASH_SEED=%d), %d envíos, %d kills, chaos %v",
		cfg.seed, cfg.seed, cfg.envios, cfg.kills, cfg.chaos)
	runCrash(t, cfg)
}

type crashConfig struct {
	envios, kills int
	chaos         bool
	seed          int64
	sendTimeout   time.Duration
	wait          time.Duration // longest wait for progress (chaos: retries wait for their backoff)
	finish        time.Duration // longest wait, after the last kill, for the campaign to end
}

const (
	crashCliente  = "crash"
	crashCampaign = "k"
	crashSender   = "5491100000001" // the number the appliance's device is linked to
	crashTemplate = "Hola {{nombre}}, este mensaje es para {{telefono}}."
)

// crashPhone is the i-th recipient (E.164, Buenos Aires mobile).
func crashPhone(i int) string { return fmt.Sprintf("+54911%08d", 50000000+i) }

// Every 50th recipient is not on WhatsApp (the number check omits its
// envío), every 4th reads what it gets, the others only deliver.
func crashUnregistered(i int) bool { return i%50 == 7 }

func runCrash(t *testing.T, cfg crashConfig) {
	start := time.Now()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), 0x6c6d))

	// The simulator, standalone: it outlives every appliance process.
	wasimBin := filepath.Join(dir, "wasim")
	if out, err := exec.Command("go", "build", "-o", wasimBin, "./wasim/cmd/wasim").CombinedOutput(); err != nil {
		t.Fatalf("build wasim: %v\n%s", err, out)
	}
	sim := startCrashSim(t, wasimBin, dir)
	sim.post(t, "/sim/behavior", map[string]any{"phone": "", "behavior": wasim.Behavior{Deliver: true}})
	for i := range cfg.envios {
		switch {
		case crashUnregistered(i):
			sim.post(t, "/sim/registered", map[string]any{"phone": crashPhone(i), "registered": false})
		case i%4 == 1:
			sim.post(t, "/sim/behavior", map[string]any{"phone": crashPhone(i), "behavior": wasim.Behavior{Deliver: true, Read: true, ReadAfter: 20 * time.Millisecond}})
		}
	}
	if cfg.chaos {
		sim.post(t, "/sim/chaos", wasim.Chaos{Seed: cfg.seed, DropRate: 0.01, ErrorRate: 0.01, ErrorCode: 479, NoAckRate: 0.005, SlowRate: 0.02, SlowAck: time.Second})
	}

	// The campaign, imported while no serve runs (one process per data file).
	importCrashCampaign(t, dir, data, cfg.envios)

	token := "crash-admin-token-" + strconv.FormatInt(cfg.seed, 36)
	serveArgs := []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--wasim", sim.addr,
		"--log-format", "json", "--number-check-every", "50ms", "--send-timeout", cfg.sendTimeout.String()}
	runs := 0
	startServe := func() *serveProc {
		runs++
		return startServeProc(t, filepath.Join(dir, fmt.Sprintf("serve-%02d.log", runs)), token, serveArgs)
	}
	srv := startServe()

	srv.api(t, "PATCH", "/campaigns/"+crashCampaign, map[string]any{
		"plantilla": crashTemplate,
		"ritmo":     engine.Rate{MinDelay: 0, MaxDelay: time.Millisecond, HourlyCap: 1 << 30, DailyCap: 1 << 30, MaxAttempts: 8},
	}, nil)
	// Pair: the page's QR, scanned by the simulated phone.
	var qr struct{ QR string }
	srv.api(t, "GET", "/session/qr?format=json&timeout=30s", nil, &qr)
	var paired struct{ JID string }
	sim.postOut(t, "/sim/scan", map[string]string{"qr": qr.QR, "phone": crashSender}, &paired)
	t.Logf("paired %s", paired.JID)
	srv.api(t, "POST", "/campaigns/"+crashCampaign+"/start", nil, nil)

	// The kills.
	type killRecord struct {
		after  int
		moment string
	}
	var kills []killRecord
	cursor := uint64(0)
	done := false
	unregistered := 0
	for i := range cfg.envios {
		if crashUnregistered(i) {
			unregistered++
		}
	}
	// toSend is how many acks may still come: the open envíos but the
	// phones not on WhatsApp, which the number check omits unsent.
	toSend := cfg.envios - unregistered
	for len(kills) < cfg.kills && !done {
		// Spread the kills over the campaign: on average 1/(kills left + 1)
		// of what is still to send goes out before the next kill, and
		// never all of it (the kill's own moment must still come).
		further := rng.IntN(max(1, 2*toSend/(cfg.kills-len(kills)+1)))
		moment := []string{"message", "ack", "logged_in"}[rng.IntN(3)]
		if moment == "logged_in" {
			further = 0 // the next login of the device: kill during recovery and reconnection
		}
		for n := 0; n <= further && !done; n++ {
			kind := "ack"
			if n == further {
				kind = moment
			}
			var e wasim.Event
			e, done = sim.waitProgress(t, srv, cursor, kind, cfg.wait)
			cursor = max(cursor, e.Seq)
		}
		if done {
			break
		}
		srv.kill(t)
		kills = append(kills, killRecord{further, moment})
		cursor = sim.lastSeq(t, cursor)
		srv = startServe()
		st := srv.stats(t)
		toSend = int(st.Open) - (unregistered - int(st.Counts[engine.Omitido]))
		if cfg.chaos || testing.Verbose() {
			t.Logf("kill %d at %v (%d further acks, then %s): %d of %d envíos final", len(kills),
				time.Since(start).Round(time.Second), further, moment, st.Total-st.Open, st.Total)
		}
	}
	if len(kills) < cfg.kills {
		t.Fatalf("the campaign ended after %d of %d kills: make it larger (seed %d)", len(kills), cfg.kills, cfg.seed)
	}
	srv.waitTerminada(t, cfg.finish)
	srv.stop(t)
	elapsed := time.Since(start)

	// The invariants.
	verify, err := exec.Command(binary, "journal", "verify", "--data", data).CombinedOutput()
	if err != nil {
		t.Errorf("journal verify: %v\n%s", err, verify)
	}
	db, err := kv.Open(data, kv.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	envios, err := db.Envios(context.Background(), crashCampaign, 0, cfg.envios+1, "")
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ledger []wasim.LedgerEntry
	sim.get(t, "/sim/ledger", &ledger)
	var accounts []wasim.AccountInfo
	sim.get(t, "/sim/accounts", &accounts)
	lidOf := map[string]string{} // E.164 phone -> its account's LID JID, where DMs go since whatsmeow 2026-07
	for _, a := range accounts {
		lidOf["+"+a.Phone] = a.LID + "@lid"
	}
	rep := checkCrashInvariants(t, cfg, envios, ledger, lidOf)

	recovered := 0
	var recoveredBy []string
	for i := 2; i <= runs; i++ {
		n := recoveredIn(filepath.Join(dir, fmt.Sprintf("serve-%02d.log", i)))
		recovered += n
		recoveredBy = append(recoveredBy, strconv.Itoa(n))
	}
	if recovered == 0 {
		t.Errorf("no kill caught an envío in enviando: the write-ahead window was not exercised (seed %d)", cfg.seed)
	}
	var moments []string
	for _, k := range kills {
		moments = append(moments, fmt.Sprintf("%d+%s", k.after, k.moment))
	}
	t.Logf("kills (further acks + moment): %s", strings.Join(moments, " "))
	t.Logf("envíos recovered from enviando by each restart: %s (total %d)", strings.Join(recoveredBy, " "), recovered)
	t.Logf(`crash test invariants (seed %d, %d envíos, %d kills, chaos %v, %v):
  states:                                %s
  every envío final:                     %s
  sent with a ledger ack, decrypted, same text: %d of %d sent  %s
  recipients that read 2+ message ids:   %d  %s
  arrivals of an id already received (resends deduplicated by id): %d (ids with 2+ arrivals: %d)
  faults applied by wasim:               %s
  received but not enviado (unknown outcome, attempts exhausted): %d
  journal verify:                        %s`,
		cfg.seed, cfg.envios, len(kills), cfg.chaos, elapsed.Round(time.Second),
		rep.states, okWord(rep.open == 0), rep.sentOK, rep.sent, okWord(rep.sentOK == rep.sent),
		rep.dupRecipients, okWord(rep.dupRecipients == 0), rep.resends, rep.multiArrival,
		rep.faults, rep.receivedNotSent, strings.TrimSpace(string(verify)))
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

type crashReport struct {
	states                string
	open, sent, sentOK    int
	dupRecipients         int
	resends, multiArrival int
	receivedNotSent       int
	faults                string
}

// checkCrashInvariants compares the data file's envíos with wasim's ledger.
func checkCrashInvariants(t *testing.T, cfg crashConfig, envios []engine.Envio, ledger []wasim.LedgerEntry, lidOf map[string]string) crashReport {
	t.Helper()
	var rep crashReport
	if len(envios) != cfg.envios {
		t.Errorf("%d envíos in the data file, want %d", len(envios), cfg.envios)
	}
	byID := map[string]wasim.LedgerEntry{}
	readBy := map[string][]string{} // recipient -> decrypted ids
	faults := map[string]int{}
	for _, e := range ledger {
		if !strings.HasPrefix(e.From, crashSender+":") && !strings.HasPrefix(e.From, crashSender+"@") {
			continue
		}
		byID[e.ID] = e
		if e.Decrypted {
			readBy[e.To] = append(readBy[e.To], e.ID)
		}
		rep.resends += e.Arrivals - 1
		if e.Arrivals > 1 {
			rep.multiArrival++
		}
		for _, f := range e.Faults {
			if f != "" {
				faults[f]++
			}
		}
	}
	counts := map[engine.State]int{}
	envioOf := map[string]engine.Envio{} // msg id -> envío
	unregistered := map[string]bool{}
	for i := range cfg.envios {
		if crashUnregistered(i) {
			unregistered[crashPhone(i)] = true
		}
	}
	for _, e := range envios {
		counts[e.State]++
		switch {
		case unregistered[e.Telefono] && e.State.Sent():
			t.Errorf("envío %s to %s, not on WhatsApp, is %s", e.Ref, e.Telefono, e.State)
		case !unregistered[e.Telefono] && e.Reason == engine.ReasonNotOnWhatsApp:
			t.Errorf("envío %s to %s, on WhatsApp, ended %s %s", e.Ref, e.Telefono, e.State, e.Reason)
		}
		if e.MsgID != "" {
			envioOf[e.MsgID] = e
		}
		if !e.State.Final() {
			rep.open++
			if rep.open <= 5 {
				t.Errorf("envío %s (%s) is %s at the end: want a final state", e.Ref, e.Telefono, e.State)
			}
		}
		if !e.State.Sent() {
			if l, ok := byID[e.MsgID]; ok && e.MsgID != "" && l.Decrypted {
				rep.receivedNotSent++
				if !cfg.chaos {
					t.Errorf("envío %s (%s) is %s (%s) but its recipient read %s (ledger %+v)", e.Ref, e.Telefono, e.State, e.Reason, e.MsgID, l)
				}
			}
			continue
		}
		rep.sent++
		l, ok := byID[e.MsgID]
		to := lidOf[e.Telefono]
		switch {
		case e.MsgID == "" || !ok:
			t.Errorf("envío %s (%s) is %s with msg id %q, which wasim never received", e.Ref, e.Telefono, e.State, e.MsgID)
		case l.Acks == 0:
			t.Errorf("envío %s (%s) is %s but wasim never acked %s: %+v", e.Ref, e.Telefono, e.State, e.MsgID, l)
		case !l.Decrypted:
			t.Errorf("envío %s (%s) is %s but its recipient could not decrypt %s: %s", e.Ref, e.Telefono, e.State, e.MsgID, l.Error)
		case l.To != to || l.Text != e.Mensaje:
			t.Errorf("envío %s: ledger has %q to %s, the envío says %q to %s", e.Ref, l.Text, l.To, e.Mensaje, to)
		default:
			rep.sentOK++
		}
	}
	if open := rep.open; open > 5 {
		t.Errorf("... %d envíos not final in all", open)
	}
	for to, ids := range readBy {
		if len(ids) > 1 {
			rep.dupRecipients++
			t.Errorf("recipient %s read %d message ids: %v", to, len(ids), ids)
		}
		for _, id := range ids {
			if e, ok := envioOf[id]; !ok || lidOf[e.Telefono] != to {
				t.Errorf("recipient %s read %s, which is no envío of theirs", to, id)
			}
		}
	}
	var parts []string
	for _, s := range engine.States {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	rep.states = strings.Join(parts, ", ")
	parts = parts[:0]
	for f, n := range faults {
		parts = append(parts, fmt.Sprintf("%s %d", f, n))
	}
	sort.Strings(parts)
	rep.faults = strings.Join(parts, ", ")
	if rep.faults == "" {
		rep.faults = "none"
	}
	return rep
}

// crashSim is the standalone simulator process and its control API.
type crashSim struct {
	addr string // host:port
	url  string
}

func startCrashSim(t *testing.T, bin, dir string) *crashSim {
	t.Helper()
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-snapshot", filepath.Join(dir, "wasim.json"))
	logf, err := os.Create(filepath.Join(dir, "wasim.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		_ = cmd.Process.Kill()
		t.Fatalf("wasim printed nothing: %v", sc.Err())
	}
	line := sc.Text()
	u, ok := strings.CutPrefix(line, "wasim listening on ")
	if !ok {
		_ = cmd.Process.Kill()
		t.Fatalf("wasim: unexpected first line %q", line)
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	return &crashSim{addr: strings.TrimPrefix(u, "http://"), url: u}
}

func (s *crashSim) post(t *testing.T, path string, body any) { s.postOut(t, path, body, nil) }

func (s *crashSim) postOut(t *testing.T, path string, body, out any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("wasim %s: %v", path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("wasim %s %s: %d %s", path, raw, resp.StatusCode, got)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatalf("wasim %s: %v", path, err)
		}
	}
}

func (s *crashSim) get(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatalf("wasim %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("wasim %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// waitProgress waits for the next event of kind from our number after
// cursor. done reports that the campaign ended instead (checked whenever
// nothing happened for a while: retries may be waiting for their backoff).
func (s *crashSim) waitProgress(t *testing.T, srv *serveProc, after uint64, kind string, limit time.Duration) (e wasim.Event, done bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var es []wasim.Event
		q := url.Values{"after": {strconv.FormatUint(after, 10)}, "kind": {kind}, "jid": {crashSender}, "wait": {"5s"}}
		if s.get(t, "/sim/events?"+q.Encode(), &es) == http.StatusOK && len(es) > 0 {
			return es[0], false
		}
		if st := srv.stats(t); st.Status == engine.Terminada {
			return wasim.Event{}, true
		} else if st.Status != engine.Activa {
			t.Fatalf("campaign is %s while waiting for %s: %+v (log %s)", st.Status, kind, st, srv.logTail())
		}
	}
	t.Fatalf("no %s event from %s within %v; stats %+v; serve log:\n%s", kind, crashSender, limit, srv.stats(t), srv.logTail())
	return wasim.Event{}, false
}

// lastSeq returns the newest event's sequence number after cursor.
func (s *crashSim) lastSeq(t *testing.T, after uint64) uint64 {
	var es []wasim.Event
	s.get(t, "/sim/events?after="+strconv.FormatUint(after, 10), &es)
	for _, e := range es {
		after = max(after, e.Seq)
	}
	return after
}

// serveProc is one `leadmaster serve` process.
type serveProc struct {
	cmd     *exec.Cmd
	token   string
	base    string // http://addr
	logPath string
	exited  chan struct{}
	err     error // cmd.Wait's, once exited is closed
}

func startServeProc(t *testing.T, logPath, token string, args []string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "LEADMASTER_ADMIN_TOKEN="+token)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, token: token, logPath: logPath, exited: make(chan struct{})}
	t.Cleanup(func() { p.kill(t) })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(line)
			logf.Write([]byte{'\n'})
			var l struct{ Msg, Addr string }
			if json.Unmarshal(line, &l) == nil && l.Msg == "leadmaster serving" {
				addr <- l.Addr
			}
		}
		logf.Close()
		p.err = cmd.Wait()
		close(p.exited)
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.exited:
		t.Fatalf("serve exited before serving: %v\n%s", p.err, p.logTail())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not log \"leadmaster serving\" within 60s\n%s", p.logTail())
	}
	return p
}

// kill SIGKILLs the process (if still running) and waits for it.
func (p *serveProc) kill(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop sends SIGTERM and wants exit status 0.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.kill(t)
		t.Fatalf("serve did not stop within 60s of SIGTERM\n%s", p.logTail())
	}
	if p.err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", p.err, p.logTail())
	}
}

func (p *serveProc) logTail() string {
	raw, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

var apiClient = &http.Client{Timeout: 60 * time.Second}

// api calls the admin API under /api/clientes/crash.
func (p *serveProc) api(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, p.base+"/api/clientes/"+crashCliente+path, r)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

func (p *serveProc) stats(t *testing.T) engine.Stats {
	t.Helper()
	var st engine.Stats
	p.api(t, "GET", "/campaigns/"+crashCampaign+"/stats", nil, &st)
	return st
}

// waitTerminada waits, on the admin API's event stream, for the campaign to
// be terminada.
func (p *serveProc) waitTerminada(t *testing.T, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/api/events?cliente="+crashCliente, nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() { // "retry: …": subscribed from here on
		t.Fatalf("events: %v", sc.Err())
	}
	if st := p.stats(t); st.Status == engine.Terminada {
		return
	}
	for sc.Scan() {
		if sc.Text() == ": heartbeat" { // events may be dropped for a slow reader: look now and then
			if st := p.stats(t); st.Status == engine.Terminada {
				return
			}
		}
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev engine.Event
		if json.Unmarshal([]byte(data), &ev) == nil && ev.Type == "campaign" && ev.Campaign == crashCampaign {
			switch engine.CampaignStatus(ev.Status) {
			case engine.Terminada:
				return
			case engine.Activa:
			default:
				t.Fatalf("campaign went %s (%s)", ev.Status, ev.Reason)
			}
		}
	}
	err = sc.Err()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = ctx.Err()
	}
	t.Fatalf("campaign not terminada within %v (%v); stats %+v\n%s", limit, err, p.stats(t), p.logTail())
}

// recoveredIn reads how many envíos a serve process returned from enviando
// to pendiente at its start.
func recoveredIn(logPath string) int {
	f, err := os.Open(logPath)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg   string
			Count int
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && strings.HasPrefix(l.Msg, "recovered envíos left in enviando") {
			return l.Count // logged by kv.Open (and by the engine if it finds more)
		}
	}
	return 0
}

// importCrashCampaign imports crashPhone(0..n-1) into crashCampaign of
// crashCliente (both made) in the data dir, with the binary, while no serve
// runs (one process per data file); every row must be accepted.
func importCrashCampaign(t *testing.T, dir, data string, n int) {
	t.Helper()
	csv := filepath.Join(dir, "envios.csv")
	var b strings.Builder
	b.WriteString("telefono,nombre\n")
	for i := range n {
		fmt.Fprintf(&b, "%s,Cliente %d\n", crashPhone(i), i)
	}
	if err := os.WriteFile(csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "import", "--data", data, "--create", "--cliente", crashCliente, "--campaign", crashCampaign, "--region", "AR", csv).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("%d aceptadas", n)) {
		t.Fatalf("import: %v\n%s", err, out)
	}
}
