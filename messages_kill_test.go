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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// TestMessagesKill is issue 20's proof of transactional messages with the
// real binary and a standalone wasim: 1,000 POST …/mensajes from 8
// concurrent callers, 100 of them repeating an idempotency key already
// used (answered before the kill, across it, or after it), a third with
// ?esperar=10s, and a SIGKILL of `leadmaster serve` in the middle, while
// a message is at the server and posts are in flight; those fail with a
// connection error and are posted again, same key, to the restarted
// process. Then, against wasim's ledger:
//
//   - exactly 900 message ids from the cliente's number, each decrypted
//     once by the phone of its key, with its key's text (no key made two
//     ids, no id reached its recipient twice);
//   - every id the API answered for a key (first post, repeat, retry) is
//     that ledger id, every repeat says Idempotent-Replayed;
//   - every ?esperar answer 200 is sent, with enviado_en = the ledger's
//     ack time of its id;
//   - `leadmaster journal verify` passes.
//
// Then a recipient answers "BAJA": a POST to that phone is 409 opted_out
// and wasim receives nothing more for it.
func TestMessagesKill(t *testing.T) {
	cfg := msgKillConfig{keys: 900, repeats: 100, posters: 8, seed: time.Now().UnixNano()}
	if testing.Short() {
		cfg.keys, cfg.repeats = 180, 20
	}
	if v := os.Getenv("LEADMASTER_MSGKILL_SEED"); v != "" {
		var err error
		if cfg.seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("LEADMASTER_MSGKILL_SEED=%q: %v", v, err)
		}
	}
	t.Logf("messages kill test: seed %d (replay the plan with LEADMASTER_MSGKILL_SEED=%d), %d keys, %d repeats, %d posters",
		cfg.seed, cfg.seed, cfg.keys, cfg.repeats, cfg.posters)
	runMessagesKill(t, cfg)
}

type msgKillConfig struct {
	keys, repeats, posters int
	seed                   int64
}

const (
	msgCliente = "tx"
	msgSender  = "5491100000002"
)

func msgPhone(k int) string { return fmt.Sprintf("+54911%08d", 60000000+k) }
func msgKey(k int) string   { return fmt.Sprintf("pedido-%04d", k) }
func msgText(k int) string  { return fmt.Sprintf("Tu pedido %d salió hoy (clave %s)", k, msgKey(k)) }

// msgOp is one planned POST and, once done, its answer.
type msgOp struct {
	key     int
	repeat  bool // the key was answered before, by this poster
	esperar bool

	// The answer.
	status   int
	replayed bool
	retried  int // posts lost to the kill before this answer
	gen      int // the serve process that answered (1 before the kill, 2 after)
	view     msgView
}

// msgView is the API's message view.
type msgView struct {
	ID       string    `json:"id"`
	Clave    string    `json:"clave"`
	Telefono string    `json:"telefono"`
	Texto    string    `json:"texto"`
	Estado   string    `json:"estado"`
	Motivo   string    `json:"motivo"`
	Intentos int       `json:"intentos"`
	Enviado  time.Time `json:"enviado_en"`
	Campana  string    `json:"campana"`
	Envio    uint64    `json:"envio"`
}

// msgPlan spreads keys and repeats over the posters in three phases: A
// (all answered before the kill), B (in flight around it) and C (only
// after the restart). A repeat comes after its key's first post in the same
// poster's queue; C repeats half keys of A (across the restart), half of C.
func msgPlan(cfg msgKillConfig) (phases [3][][]*msgOp) {
	rng := rand.New(rand.NewPCG(uint64(cfg.seed), 0x6d6b))
	bounds := [3]int{cfg.keys * 4 / 10, cfg.keys * 6 / 10, cfg.keys} // first keys of A: [0,b0), B: [b0,b1), C: [b1,keys)
	for p := range phases {
		phases[p] = make([][]*msgOp, cfg.posters)
	}
	phaseOf := func(k int) int {
		for p, b := range bounds {
			if k < b {
				return p
			}
		}
		panic(k)
	}
	for k := range cfg.keys {
		g := k % cfg.posters
		phases[phaseOf(k)][g] = append(phases[phaseOf(k)][g], &msgOp{key: k})
	}
	// insert puts a repeat of key k into phase p of its poster, after k's first post when that is in p.
	insert := func(p, k int) {
		g := k % cfg.posters
		q := phases[p][g]
		from := 0
		for i, op := range q {
			if op.key == k {
				from = i + 1
			}
		}
		at := from + rng.IntN(len(q)-from+1)
		q = append(q[:at], append([]*msgOp{{key: k, repeat: true}}, q[at:]...)...)
		phases[p][g] = q
	}
	used := map[int]bool{}
	pick := func(lo, hi int) int {
		for {
			if k := lo + rng.IntN(hi-lo); !used[k] {
				used[k] = true
				return k
			}
		}
	}
	r := cfg.repeats
	for range r * 4 / 10 { // A: keys of A
		insert(0, pick(0, bounds[0]))
	}
	for range r / 10 { // B: keys of A, and of B
		insert(1, pick(0, bounds[0]))
		insert(1, pick(bounds[0], bounds[1]))
	}
	for range r * 2 / 10 { // C: keys answered before the kill (A's), and keys of C
		insert(2, pick(0, bounds[0]))
		insert(2, pick(bounds[1], bounds[2]))
	}
	for p := range phases {
		for _, q := range phases[p] {
			for _, op := range q {
				op.esperar = rng.IntN(3) == 0
			}
		}
	}
	return phases
}

// msgLive is the serve process the posters talk to, across the kill.
type msgLive struct {
	mu     sync.Mutex
	srv    *serveProc
	gen    int
	killed bool          // srv is being killed: errors from it are the kill's
	next   chan struct{} // closed when the next process serves
}

func (l *msgLive) current() (*serveProc, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.srv, l.gen
}

// lost reports whether a failed post to generation gen was the kill's: if
// so it returns once the next process serves.
func (l *msgLive) lost(gen int) bool {
	l.mu.Lock()
	if l.gen > gen {
		l.mu.Unlock()
		return true
	}
	if !l.killed {
		l.mu.Unlock()
		return false
	}
	next := l.next
	l.mu.Unlock()
	<-next
	return true
}

func (l *msgLive) kill(t *testing.T) {
	l.mu.Lock()
	l.killed, l.next = true, make(chan struct{})
	srv := l.srv
	l.mu.Unlock()
	srv.kill(t)
}

func (l *msgLive) serve(srv *serveProc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.srv, l.gen, l.killed = srv, l.gen+1, false
	if l.next != nil {
		close(l.next)
	}
}

var msgClient = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// msgDo calls the admin API; err is a transport error (no answer).
func msgDo(p *serveProc, method, path string, hdr map[string]string, body any) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, p.base+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := msgClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, raw, nil
}

// msgAPI is msgDo for the test's goroutine: it wants a 2xx and decodes it.
func msgAPI(t testing.TB, p *serveProc, method, path string, body, out any) {
	t.Helper()
	code, _, raw, err := msgDo(p, method, path, nil, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if code/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, code, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// postMessage posts op until it has an answer, posting again (same key)
// to the restarted process when the kill lost it.
func postMessage(live *msgLive, op *msgOp) error {
	q := ""
	if op.esperar {
		q = "?esperar=10s"
	}
	body := map[string]string{"telefono": msgPhone(op.key), "texto": msgText(op.key)}
	for {
		srv, gen := live.current()
		code, hdr, raw, err := msgDo(srv, "POST", "/api/clientes/"+msgCliente+"/mensajes"+q, map[string]string{"Idempotency-Key": msgKey(op.key)}, body)
		if err != nil {
			if live.lost(gen) {
				op.retried++
				continue
			}
			return fmt.Errorf("POST key %s: %v", msgKey(op.key), err)
		}
		op.status, op.gen, op.replayed = code, gen, hdr.Get("Idempotent-Replayed") == "true"
		if code != http.StatusOK && code != http.StatusAccepted && !(code == http.StatusGatewayTimeout && op.esperar) {
			return fmt.Errorf("POST%s key %s: %d %s", q, msgKey(op.key), code, raw)
		}
		if err := json.Unmarshal(raw, &op.view); err != nil {
			return fmt.Errorf("POST key %s: %v: %s", msgKey(op.key), err, raw)
		}
		return nil
	}
}

func runMessagesKill(t *testing.T, cfg msgKillConfig) {
	start := time.Now()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")

	wasimBin := filepath.Join(dir, "wasim")
	if out, err := exec.Command("go", "build", "-o", wasimBin, "./wasim/cmd/wasim").CombinedOutput(); err != nil {
		t.Fatalf("build wasim: %v\n%s", err, out)
	}
	sim := startCrashSim(t, wasimBin, dir)

	token := "msgkill-admin-token-" + strconv.FormatInt(cfg.seed, 36)
	serveArgs := []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--wasim", sim.addr,
		"--log-format", "json", "--number-check=false", "--send-timeout", "10s",
		"--messages-min-delay", "1ms", "--messages-max-delay", "2ms",
		"--messages-hourly-cap", "100000", "--messages-daily-cap", "100000"}
	runs := 0
	startServe := func() *serveProc {
		runs++
		return startServeProc(t, filepath.Join(dir, fmt.Sprintf("serve-%02d.log", runs)), token, serveArgs)
	}
	live := &msgLive{}
	live.serve(startServe())
	srv, _ := live.current()

	msgAPI(t, srv, "POST", "/api/clientes", map[string]string{"id": msgCliente, "nombre": "Transaccional", "region": "AR"}, nil)
	paired := msgPair(t, sim, srv)
	t.Logf("paired %s in %v", paired, time.Since(start).Round(time.Millisecond))

	// The posts: phase A, then B while the kill comes, then C once the
	// restarted process serves.
	phases := msgPlan(cfg)
	var (
		wg, aDone sync.WaitGroup
		restarted = make(chan struct{})
		failed    atomic.Bool
		answered  atomic.Int64
	)
	postStart := time.Now()
	for g := range cfg.posters {
		wg.Add(1)
		aDone.Add(1)
		go func() {
			defer wg.Done()
			markA := sync.OnceFunc(aDone.Done)
			defer markA()
			for p := range phases {
				if p == 2 {
					<-restarted
				}
				for _, op := range phases[p][g] {
					if failed.Load() {
						return
					}
					if err := postMessage(live, op); err != nil {
						t.Error(err)
						failed.Store(true)
						return
					}
					answered.Add(1)
				}
				if p == 0 {
					markA()
				}
			}
		}()
	}
	// The kill: once every poster is done with A, right as the next
	// message reaches the server, which holds its ack back (so the kill
	// finds its envío written ahead as enviando, and the restarted process
	// sends that id again).
	aDone.Wait()
	sim.post(t, "/sim/faults", map[string]any{"phone": msgSender, "faults": wasim.Faults{NoAck: true}})
	cursor := sim.lastSeq(t, 0)
	var es []wasim.Event
	q := url.Values{"after": {strconv.FormatUint(cursor, 10)}, "kind": {"message"}, "jid": {msgSender}, "wait": {"10s"}}
	if code := sim.get(t, "/sim/events?"+q.Encode(), &es); code != http.StatusOK || len(es) == 0 {
		failed.Store(true)
		close(restarted)
		t.Fatalf("no message reached wasim within 10s after phase A (%d): serve log\n%s", code, srv.logTail())
	}
	atKill := answered.Load()
	live.kill(t)
	killedAt := time.Since(postStart)
	sim.post(t, "/sim/faults", map[string]any{"phone": msgSender, "faults": wasim.Faults{}})
	live.serve(startServe())
	restartTook := time.Since(postStart) - killedAt
	close(restarted)
	wg.Wait()
	postsTook := time.Since(postStart)
	if t.Failed() {
		srv, _ = live.current()
		t.Fatalf("posting failed; serve log:\n%s", srv.logTail())
	}
	srv, _ = live.current()

	// Wait, on the event stream, until every message is final or sent.
	campaign := engine.MessagesCampaignID(msgCliente)
	st := msgWaitSettled(t, srv, msgCliente, campaign, uint64(cfg.keys), 60*time.Second)
	settledTook := time.Since(postStart)

	// What the API answered.
	var all []*msgOp
	for p := range phases {
		for _, q := range phases[p] {
			all = append(all, q...)
		}
	}
	idOf := map[int]string{}
	var (
		repeatsByGen                         [3]int
		crossRestart                         int // repeats after the restart of a key answered before the kill
		retried, retriedOps                  int
		esperar200, esperar504, esperarOther int
		statusCount                          = map[int]int{}
		firstGen                             = map[int]int{}
	)
	for _, op := range all {
		if !op.repeat {
			firstGen[op.key] = op.gen
		}
	}
	for _, op := range all {
		statusCount[op.status]++
		retried += op.retried
		if op.retried > 0 {
			retriedOps++
		}
		if op.view.ID == "" {
			t.Errorf("key %s: answer %d without an id", msgKey(op.key), op.status)
			continue
		}
		if prev, ok := idOf[op.key]; ok && prev != op.view.ID {
			t.Errorf("key %s answered two ids: %s and %s", msgKey(op.key), prev, op.view.ID)
		}
		idOf[op.key] = op.view.ID
		if op.view.Clave != msgKey(op.key) || op.view.Telefono != msgPhone(op.key) || op.view.Texto != msgText(op.key) {
			t.Errorf("key %s: answered %+v", msgKey(op.key), op.view)
		}
		switch {
		case op.repeat:
			repeatsByGen[op.gen]++
			if op.gen == 2 && firstGen[op.key] == 1 {
				crossRestart++
			}
			if !op.replayed {
				t.Errorf("repeat of key %s (gen %d): no Idempotent-Replayed: true", msgKey(op.key), op.gen)
			}
		case op.replayed && op.retried == 0:
			t.Errorf("first post of key %s says Idempotent-Replayed", msgKey(op.key))
		}
		if op.esperar {
			switch op.status {
			case http.StatusOK:
				esperar200++
			case http.StatusGatewayTimeout:
				esperar504++
			default:
				esperarOther++
			}
		}
	}
	if len(idOf) != cfg.keys {
		t.Errorf("%d keys answered, want %d", len(idOf), cfg.keys)
	}
	if repeatsByGen[1] == 0 || repeatsByGen[2] == 0 || crossRestart == 0 {
		t.Errorf("repeats answered before the kill %d, after %d, across it %d: want some of each", repeatsByGen[1], repeatsByGen[2], crossRestart)
	}

	// The same ids, read back by key from the restarted process.
	for k := range cfg.keys {
		var v msgView
		msgAPI(t, srv, "GET", "/api/clientes/"+msgCliente+"/mensajes/"+msgKey(k), nil, &v)
		if v.ID != idOf[k] || !engine.State(v.Estado).Sent() {
			t.Errorf("GET key %s: id %s %s, the POST answered %s", msgKey(k), v.ID, v.Estado, idOf[k])
		}
	}

	// The ledger.
	ledger, lidOf := msgLedger(t, sim)
	byID := map[string]wasim.LedgerEntry{}
	resent := 0
	for _, e := range ledger {
		if _, dup := byID[e.ID]; dup {
			t.Errorf("ledger: id %s twice", e.ID)
		}
		byID[e.ID] = e
		if e.Arrivals > 1 {
			resent++
		}
	}
	if len(byID) != cfg.keys {
		t.Errorf("ledger: %d message ids from %s, want %d", len(byID), msgSender, cfg.keys)
	}
	keyOfID := map[string]int{}
	for k, id := range idOf {
		keyOfID[id] = k
		e, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("key %s: the API answered id %s, which wasim never received", msgKey(k), id)
		case !e.Decrypted || e.Acks == 0:
			t.Errorf("key %s: id %s not decrypted or not acked: %+v", msgKey(k), id, e)
		case e.To != lidOf[msgPhone(k)] || e.Text != msgText(k):
			t.Errorf("key %s: ledger has %q to %s, want %q to %s", msgKey(k), e.Text, e.To, msgText(k), lidOf[msgPhone(k)])
		}
	}
	for id := range byID {
		if _, ok := keyOfID[id]; !ok {
			t.Errorf("ledger: id %s is no key's answer", id)
		}
	}
	recovered := recoveredIn(filepath.Join(dir, "serve-02.log"))
	if recovered == 0 || resent == 0 {
		t.Errorf("the kill caught %d envíos in enviando and %d ids arrived twice: want the write-ahead window exercised", recovered, resent)
	}
	var delivered map[string]int // recipient PN JID -> distinct decrypted messages
	sim.get(t, "/sim/delivered", &delivered)
	dupRecipients := 0
	for k := range cfg.keys {
		pn := strings.TrimPrefix(msgPhone(k), "+") + "@s.whatsapp.net"
		if n := delivered[pn]; n != 1 {
			dupRecipients++
			t.Errorf("recipient %s decrypted %d messages, want 1", pn, n)
		}
	}
	ackMatch, ackMismatch := 0, 0
	for _, op := range all {
		if !op.esperar || op.status != http.StatusOK {
			continue
		}
		e := byID[op.view.ID]
		switch {
		case !engine.State(op.view.Estado).Sent():
			t.Errorf("key %s: ?esperar answered 200 %s (%s)", msgKey(op.key), op.view.Estado, op.view.Motivo)
		case op.view.Enviado.Unix() != e.Timestamp || e.Timestamp == 0:
			ackMismatch++
			t.Errorf("key %s: ?esperar answered enviado_en %v (%d), the ledger's ack of %s is %d", msgKey(op.key), op.view.Enviado, op.view.Enviado.Unix(), op.view.ID, e.Timestamp)
		default:
			ackMatch++
		}
	}
	if esperar200 == 0 {
		t.Errorf("no ?esperar post answered 200")
	}

	// Opt-out: a recipient answers BAJA; a message to it is refused and
	// nothing more reaches wasim for it.
	optK := all[0].key
	optPhone := msgPhone(optK)
	msgOptOut(t, sim, srv, paired, optPhone)
	before := msgLedgerTo(t, sim, lidOf[optPhone])
	code, _, raw, err := msgDo(srv, "POST", "/api/clientes/"+msgCliente+"/mensajes?esperar=10s", map[string]string{"Idempotency-Key": "baja-1"},
		map[string]string{"telefono": optPhone, "texto": "¿Volvés?"})
	if err != nil || code != http.StatusConflict || !bytes.Contains(raw, []byte(`"opted_out"`)) {
		t.Errorf("POST to the opted-out %s: %d %s %v, want 409 opted_out", optPhone, code, raw, err)
	}
	if code, _, raw, _ := msgDo(srv, "GET", "/api/clientes/"+msgCliente+"/mensajes/baja-1", nil, nil); code != http.StatusNotFound {
		t.Errorf("GET baja-1: %d %s, want 404 (nothing stored)", code, raw)
	}
	// A sentinel after it, acked: the worker had nothing of the refused one to send first.
	var sentinel msgView
	msgAPI(t, srv, "POST", "/api/clientes/"+msgCliente+"/mensajes?esperar=10s", map[string]string{"telefono": msgPhone(cfg.keys), "texto": "centinela"}, &sentinel)
	if !engine.State(sentinel.Estado).Sent() {
		t.Errorf("sentinel: %+v", sentinel)
	}
	after := msgLedgerTo(t, sim, lidOf[optPhone])
	if after != before || after != 1 {
		t.Errorf("ledger to the opted-out %s: %d entries before the refused post, %d after; want 1 and 1", optPhone, before, after)
	}

	srv.stop(t)
	verify, err := exec.Command(binary, "journal", "verify", "--data", data).CombinedOutput()
	if err != nil {
		t.Errorf("journal verify: %v\n%s", err, verify)
	}
	t.Logf(`messages kill test (seed %d, %v in all):
  posts:                          %d by %d posters (%d repeats of a used key), answered %v; %d answered before the kill
  kill:                           at %v (restart served after %v more), %d posts lost to it and posted again (%d ops)
  envíos recovered from enviando: %d
  answers:                        %v (of ?esperar: %d 200, %d 504, %d other)
  repeats replayed:               %d before the kill, %d after (%d of a key answered before it)
  settled (all sent):             %v after the first post; stats %s, open %d
  ledger ids from %s:      %d, want %d  %s
  keys with two ids:              0 of %d  %s
  recipients with != 1 message:   %d  %s
  ids resent (2+ arrivals):       %d (deduplicated by id)
  ?esperar enviado_en = ledger t: %d of %d  %s
  opt-out:                        409 opted_out, ledger to %s: %d before, %d after
  journal verify:                 %s`,
		cfg.seed, time.Since(start).Round(time.Millisecond),
		len(all), cfg.posters, cfg.repeats, postsTook.Round(time.Millisecond), atKill,
		killedAt.Round(time.Millisecond), restartTook.Round(time.Millisecond), retried, retriedOps,
		recovered,
		statusCount, esperar200, esperar504, esperarOther,
		repeatsByGen[1], repeatsByGen[2], crossRestart,
		settledTook.Round(time.Millisecond), msgCounts(st), st.Open,
		msgSender, len(byID), cfg.keys, okWord(len(byID) == cfg.keys),
		cfg.keys, okWord(len(idOf) == cfg.keys),
		dupRecipients, okWord(dupRecipients == 0), resent,
		ackMatch, esperar200, okWord(ackMismatch == 0 && ackMatch == esperar200),
		optPhone, before, after, strings.TrimSpace(string(verify)))
}

func msgCounts(st engine.Stats) string {
	var parts []string
	for _, s := range engine.States {
		if st.Counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, st.Counts[s]))
		}
	}
	return strings.Join(parts, ", ")
}

// msgPair pairs the cliente's session with the simulated phone msgSender
// and waits for the device's login; it returns the device JID.
func msgPair(t *testing.T, sim *crashSim, srv *serveProc) string {
	t.Helper()
	cursor := sim.lastSeq(t, 0)
	var qr struct{ QR string }
	msgAPI(t, srv, "GET", "/api/clientes/"+msgCliente+"/session/qr?format=json&timeout=30s", nil, &qr)
	var paired struct{ JID string }
	sim.postOut(t, "/sim/scan", map[string]string{"qr": qr.QR, "phone": msgSender}, &paired)
	var es []wasim.Event
	q := url.Values{"after": {strconv.FormatUint(cursor, 10)}, "kind": {"active"}, "jid": {msgSender}, "wait": {"30s"}}
	if code := sim.get(t, "/sim/events?"+q.Encode(), &es); code != http.StatusOK || len(es) == 0 {
		t.Fatalf("the device of %s did not log in within 30s (%d)\n%s", msgSender, code, srv.logTail())
	}
	return paired.JID
}

// msgLedger is wasim's ledger of what the cliente's number sent, and each
// recipient phone's LID JID (where DMs go).
func msgLedger(t *testing.T, sim *crashSim) ([]wasim.LedgerEntry, map[string]string) {
	t.Helper()
	var all []wasim.LedgerEntry
	sim.get(t, "/sim/ledger", &all)
	var mine []wasim.LedgerEntry
	for _, e := range all {
		if strings.HasPrefix(e.From, msgSender+":") || strings.HasPrefix(e.From, msgSender+"@") {
			mine = append(mine, e)
		}
	}
	var accounts []wasim.AccountInfo
	sim.get(t, "/sim/accounts", &accounts)
	lidOf := map[string]string{}
	for _, a := range accounts {
		lidOf["+"+a.Phone] = a.LID + "@lid"
	}
	return mine, lidOf
}

func msgLedgerTo(t *testing.T, sim *crashSim, to string) int {
	t.Helper()
	ledger, _ := msgLedger(t, sim)
	n := 0
	for _, e := range ledger {
		if e.To == to {
			n++
		}
	}
	return n
}

// msgOptOut makes the wasim user of phone write "BAJA" to the device and
// waits until its opt-out is in the journal (the suppression and its record
// are one transaction). The reply has an event; the suppression, written
// after it, has none, so the journal is read on the reply's event and then
// until a deadline.
func msgOptOut(t *testing.T, sim *crashSim, srv *serveProc, device, phone string) {
	t.Helper()
	var tail struct{ Items []engine.Entry }
	msgAPI(t, srv, "GET", "/api/journal?limit=1", nil, &tail)
	var after uint64
	if len(tail.Items) > 0 {
		after = tail.Items[len(tail.Items)-1].Seq
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc, closeEvents := msgEvents(ctx, t, srv, msgCliente)
	defer closeEvents()
	sim.post(t, "/sim/send", map[string]string{"from": strings.TrimPrefix(phone, "+"), "to": device, "text": "BAJA"})
	for sc.Scan() {
		if ev, ok := msgEvent(sc.Text()); ok && ev.Type == "reply" && ev.Cliente == msgCliente {
			break
		}
	}
	if ctx.Err() != nil || sc.Err() != nil {
		t.Fatalf("no reply event for the BAJA of %s: %v %v\n%s", phone, ctx.Err(), sc.Err(), srv.logTail())
	}
	for ctx.Err() == nil {
		var page struct{ Items []engine.Entry }
		msgAPI(t, srv, "GET", "/api/journal?after="+strconv.FormatUint(after, 10), nil, &page)
		for _, e := range page.Items {
			if e.Kind == engine.KindSuppress && e.Cliente == msgCliente && e.Phone == phone {
				return
			}
		}
		select { // the suppression has no event to wait on: read the journal again shortly
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the BAJA of %s was not journaled as an opt-out within 30s\n%s", phone, srv.logTail())
}

// msgEvents opens the admin event stream of the cliente, subscribed once it returns.
func msgEvents(ctx context.Context, t testing.TB, srv *serveProc, cliente string) (*bufio.Scanner, func()) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.base+"/api/events?cliente="+cliente, nil)
	req.Header.Set("Authorization", "Bearer "+srv.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() { // "retry: …": subscribed from here on
		resp.Body.Close()
		t.Fatalf("events: %v", sc.Err())
	}
	return sc, func() { resp.Body.Close() }
}

func msgEvent(line string) (engine.Event, bool) {
	data, ok := strings.CutPrefix(line, "data: ")
	if !ok {
		return engine.Event{}, false
	}
	var ev engine.Event
	return ev, json.Unmarshal([]byte(data), &ev) == nil
}

// msgWaitSettled waits, on the admin event stream, until the messages
// campaign has total envíos and none open (pendiente or enviando): the
// stats are read once subscribed, then on each of its envíos' events
// reaching a sent or final state, and on heartbeats (a slow reader may
// lose events).
func msgWaitSettled(t testing.TB, srv *serveProc, cliente, campaign string, total uint64, limit time.Duration) engine.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	sc, closeEvents := msgEvents(ctx, t, srv, cliente)
	defer closeEvents()
	stats := func() (engine.Stats, bool) {
		var st engine.Stats
		msgAPI(t, srv, "GET", "/api/clientes/"+cliente+"/campaigns/"+campaign+"/stats", nil, &st)
		return st, st.Total == total && st.Open == 0
	}
	st, done := stats()
	for !done && sc.Scan() {
		if sc.Text() == ": heartbeat" {
			st, done = stats()
			continue
		}
		if ev, ok := msgEvent(sc.Text()); ok && ev.Type == "envio" && ev.Campaign == campaign && (ev.To.Sent() || ev.To.Final()) {
			st, done = stats()
		}
	}
	if !done {
		err := sc.Err()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = ctx.Err()
		}
		t.Fatalf("messages not all sent within %v (%v): stats %+v\n%s", limit, err, st, srv.logTail())
	}
	return st
}
