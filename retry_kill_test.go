package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// TestRetryReceiptAfterKill: the real `leadmaster serve` is SIGKILLed right
// after an envío became enviado, started again on the same data file (it
// logs in with its stored device, no QR), and then the recipient's phone
// sends a retry receipt for that message ("waiting for this message"). The
// new process has no memory of the message: only whatsmeow's retry store in
// our bbolt device store (UseRetryMessageStore, engine/wa/session.go) can
// answer, and it must answer with the same id and the same text, readable by
// the phone. The envío stays enviado, with one enviado record in the
// journal, and the recipient got one message id, once.
func TestRetryReceiptAfterKill(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sim := startBinarySim(t, dir)

	const n = 2
	importCrashCampaign(t, dir, data, n)

	const token = "retry-kill-admin-token-0123456789"
	serveArgs := []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--wasim", sim.addr,
		"--log-format", "json", "--number-check-every", "50ms", "--send-timeout", "10s"}
	srv := startServeProc(t, filepath.Join(dir, "serve-1.log"), token, serveArgs)
	srv.api(t, "PATCH", "/campaigns/"+crashCampaign, map[string]any{
		"plantilla": crashTemplate,
		"ritmo":     engine.Rate{MinDelay: 0, MaxDelay: time.Millisecond, HourlyCap: 1 << 30, DailyCap: 1 << 30, MaxAttempts: 8},
	}, nil)
	jid := pairBinary(t, srv, sim)

	// Kill right after the first envío is enviado: its ack is in, the
	// transition committed (the engine publishes after the commit).
	events := (&browserStack{url: srv.base, token: token}).events(t, crashCliente)
	srv.api(t, "POST", "/campaigns/"+crashCampaign+"/start", nil, nil)
	sent := waitEnvioEvent(t, events, crashCampaign, engine.Enviado, 30*time.Second)
	srv.kill(t)
	killedAt := time.Since(start)
	cursor := sim.lastSeq(t, 0)

	srv = startServeProc(t, filepath.Join(dir, "serve-2.log"), token, serveArgs)
	waitSessionReady(t, srv, 30*time.Second)
	var qrs []wasim.Event
	sim.get(t, "/sim/events?"+url.Values{"after": {strconv.FormatUint(cursor, 10)}, "kind": {string(wasim.EventQRRefs)}}.Encode(), &qrs)
	if len(qrs) != 0 {
		t.Fatalf("the restarted serve was shown a QR: %+v", qrs)
	}
	if e, ok := sim.waitEvent(t, cursor, wasim.EventLoggedIn, jid, 0); !ok {
		t.Fatalf("READY without a login of %s at the simulator", jid)
	} else if e.JID != jid {
		t.Fatalf("logged in as %s, paired as %s", e.JID, jid)
	}

	envio := envioBySeq(t, srv, sent)
	if envio.State != engine.Enviado || envio.MsgID == "" || envio.Mensaje == "" {
		t.Fatalf("after the restart the killed envío is %+v, want enviado with its id and text", envio)
	}
	cursor = sim.lastSeq(t, cursor)
	sim.post(t, "/sim/retry", map[string]string{"recipient": envio.Telefono, "sender": jid, "id": envio.MsgID})
	if _, ok := sim.waitEvent(t, cursor, wasim.EventRetryResent, jid, 20*time.Second); !ok {
		t.Fatalf("no resend of %s within 20s of the retry receipt\n%s", envio.MsgID, srv.logTail())
	}
	srv.waitTerminada(t, 30*time.Second)

	// The ledger: the resend is the message, and nothing else reached that
	// recipient.
	var ledger []wasim.LedgerEntry
	sim.get(t, "/sim/ledger", &ledger)
	var mine []wasim.LedgerEntry
	for _, e := range ledger {
		if e.From == jid && e.PN == strings.TrimPrefix(envio.Telefono, "+")+"@s.whatsapp.net" {
			mine = append(mine, e)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("the recipient %s has %d ledger entries from %s, want 1: %+v", envio.Telefono, len(mine), jid, mine)
	}
	le := mine[0]
	switch {
	case le.ID != envio.MsgID:
		t.Errorf("ledger id %s, envío id %s", le.ID, envio.MsgID)
	case le.Arrivals != 1 || le.Acks != 1:
		t.Errorf("ledger %+v: want the message sent once and acked once (the resend is no new arrival)", le)
	case le.RetryRequests != 1 || le.Resends != 1 || !le.ResendDecrypted || le.ResendText != envio.Mensaje || le.Text != envio.Mensaje:
		t.Errorf("ledger %+v: want one retry receipt answered by one resend, decrypted to %q", le, envio.Mensaje)
	}
	if got := delivered(t, sim)[le.PN]; got != 1 {
		t.Errorf("the recipient saw %d messages, want 1", got)
	}
	var total int
	for _, e := range ledger {
		if e.From == jid {
			total++
		}
	}
	if total != n {
		t.Errorf("%d ledger entries from %s, want %d (one per envío)", total, jid, n)
	}
	srv.stop(t)

	// The data file: still enviado, one enviado record for it, chain intact.
	if out, err := exec.Command(binary, "journal", "verify", "--data", data).CombinedOutput(); err != nil {
		t.Errorf("journal verify: %v\n%s", err, out)
	}
	out, err := exec.Command(binary, "journal", "export", "--format", "ndjson", "--data", data).Output()
	if err != nil {
		t.Fatalf("journal export: %v", err)
	}
	var toEnviado, states []string
	for line := range strings.Lines(string(out)) {
		var e engine.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal record %q: %v", line, err)
		}
		if e.Kind == engine.KindTransition && e.Campaign == crashCampaign && e.Envio == sent {
			states = append(states, fmt.Sprintf("%s->%s", e.From, e.To))
			if e.To == engine.Enviado {
				toEnviado = append(toEnviado, e.MsgID)
			}
		}
	}
	if len(toEnviado) != 1 || toEnviado[0] != envio.MsgID {
		t.Errorf("envío %d: enviado records with ids %v, want one with %s (transitions %v)", sent, toEnviado, envio.MsgID, states)
	}
	t.Logf("killed %v after the start, right after envío %d was enviado; restarted without a QR; the retry receipt for %s was answered from the device store with the same text (%d-envío campaign, %v in all)",
		killedAt.Round(time.Millisecond), sent, envio.MsgID, n, time.Since(start).Round(time.Millisecond))
}

// startBinarySim builds the standalone simulator and starts it in dir
// (stopped when the test ends).
func startBinarySim(t *testing.T, dir string) *crashSim {
	t.Helper()
	bin := filepath.Join(dir, "wasim")
	if out, err := exec.Command("go", "build", "-o", bin, "./wasim/cmd/wasim").CombinedOutput(); err != nil {
		t.Fatalf("build wasim: %v\n%s", err, out)
	}
	return startCrashSim(t, bin, dir)
}

// pairBinary pairs the cliente of srv: the admin API's QR, scanned by the
// simulated phone of crashSender. It returns the device JID.
func pairBinary(t *testing.T, srv *serveProc, sim *crashSim) string {
	t.Helper()
	var qr struct{ QR string }
	srv.api(t, "GET", "/session/qr?format=json&timeout=30s", nil, &qr)
	var paired struct{ JID string }
	sim.postOut(t, "/sim/scan", map[string]string{"qr": qr.QR, "phone": crashSender}, &paired)
	return paired.JID
}

// waitEvent waits, on the simulator's event log, for the first event of kind
// from jid after cursor; within 0 looks only at what already happened.
func (s *crashSim) waitEvent(t *testing.T, after uint64, kind wasim.EventKind, jid string, within time.Duration) (wasim.Event, bool) {
	t.Helper()
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "kind": {string(kind)}, "jid": {jid}}
	if within > 0 {
		q.Set("wait", within.String())
	}
	var es []wasim.Event
	if code := s.get(t, "/sim/events?"+q.Encode(), &es); code != http.StatusOK && code != http.StatusGatewayTimeout {
		t.Fatalf("wasim /sim/events: %d", code)
	}
	if len(es) == 0 {
		return wasim.Event{}, false
	}
	return es[0], true
}

func delivered(t *testing.T, sim *crashSim) map[string]int {
	t.Helper()
	m := map[string]int{}
	sim.get(t, "/sim/delivered", &m)
	return m
}

// waitEnvioEvent waits on the admin event stream for an envío of campaign
// to reach state, and returns its sequence number.
func waitEnvioEvent(t *testing.T, events <-chan engine.Event, campaign string, state engine.State, limit time.Duration) uint64 {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the event stream ended before an envío was %s", state)
			}
			if ev.Type == "envio" && ev.Campaign == campaign && ev.To == state {
				return ev.Envio
			}
		case <-timer.C:
			t.Fatalf("no envío of %s became %s within %v", campaign, state, limit)
		}
	}
}

// waitSessionReady waits, on the admin event stream, for the cliente's
// session to be READY.
func waitSessionReady(t *testing.T, srv *serveProc, limit time.Duration) {
	t.Helper()
	events := (&browserStack{url: srv.base, token: srv.token}).events(t, crashCliente)
	var s engine.SessionEvent
	srv.api(t, "GET", "/session", nil, &s)
	if s.State == engine.SessionReady {
		return
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended before READY")
			}
			if ev.Type == "session" && ev.Session != nil && ev.Session.State == engine.SessionReady {
				return
			}
		case <-timer.C:
			srv.api(t, "GET", "/session", nil, &s)
			t.Fatalf("session not READY within %v: %+v\n%s", limit, s, srv.logTail())
		}
	}
}

// envioBySeq is one envío of crashCampaign, from the admin API.
func envioBySeq(t *testing.T, srv *serveProc, seq uint64) engine.Envio {
	t.Helper()
	var list struct {
		Items []struct {
			Seq uint64 `json:"seq"`
			engine.Envio
		} `json:"items"`
	}
	srv.api(t, "GET", fmt.Sprintf("/campaigns/%s/envios?after=%d&limit=1", crashCampaign, seq-1), nil, &list)
	if len(list.Items) != 1 || list.Items[0].Seq != seq {
		t.Fatalf("envío %d not listed: %+v", seq, list.Items)
	}
	return list.Items[0].Envio
}
