package admin_test

import (
	"bytes"
	"context"
	"image/png"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"leadmaster/admin"
	"leadmaster/engine"
	"leadmaster/engine/wa"
	"leadmaster/kv"
	"leadmaster/kv/devicestore"
	"leadmaster/kv/kvtest"
	"leadmaster/wasim"
)

// inbound forwards the session manager's reports to the engine, which is
// built after the manager (the manager is the engine's gateway).
type inbound struct{ e *engine.Engine }

func (i *inbound) SessionChanged(ev engine.SessionEvent) { i.e.SessionChanged(ev) }
func (i *inbound) Receipt(r engine.Receipt)              { i.e.Receipt(r) }
func (i *inbound) Reply(r engine.Reply)                  { i.e.Reply(r) }
func (i *inbound) ReachChanged(n engine.ReachNotice)     { i.e.ReachChanged(n) }

// TestWasimQRPairAndSend runs the admin API over the real whatsmeow session
// manager (engine/wa) against the simulator: on a fresh cliente the QR
// route answers with a PNG of the first QR the client shows (the manager's
// WaitQR sleeps on the session's change channel; nothing polls); the
// simulated phone scans it through the demo route; the session is READY
// (and the QR route 409); a campaign uploaded and started through the API
// is sent, acked and delivered.
func TestWasimQRPairAndSend(t *testing.T) {
	sim := wasim.New(wasim.Options{})
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sim.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	})
	db, _ := kvtest.MustOpen(t, kv.Options{})
	in := &inbound{}
	devices, err := devicestore.New(db.Bolt(), wa.StoreLog(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := wa.NewManager(db, devices, in, wa.Options{Configure: sim.Configure, BackoffMin: 200 * time.Millisecond, BackoffMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(db, m, engine.Config{Logger: slog.New(slog.DiscardHandler), Rand: rand.New(rand.NewPCG(1, 2))})
	in.e = eng
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { eng.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; m.Close() })
	const phone = "15550001111"
	h := &harness{t: t, db: db, eng: eng, spool: filepath.Join(t.TempDir(), "uploads")}
	srv, err := admin.New(admin.Options{Engine: eng, Data: db, Sessions: m, Logger: slog.New(slog.DiscardHandler), AdminToken: adminTok, SpoolDir: h.spool,
		DemoScan: func(ctx context.Context, cliente string) error {
			qr, err := m.WaitQR(ctx, cliente)
			if err != nil {
				return err
			}
			_, err = sim.ScanQR(ctx, qr, phone)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	t.Cleanup(func() { srv.Close() })

	h.must(201, h.do("POST", "/api/clientes", adminTok, map[string]string{"id": "c1", "region": "AR"}))
	events, unsub := eng.Events().Subscribe(4096)
	defer unsub()
	seq := sim.LastEvent()
	start := time.Now()
	r := h.must(200, h.do("GET", "/api/clientes/c1/session/qr?format=png&timeout=20s", adminTok, nil))
	if _, err := png.Decode(bytes.NewReader(r.Body)); err != nil || r.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("not a PNG (%v): %v", r.Header, err)
	}
	t.Logf("first QR as PNG after %v on a fresh cliente", time.Since(start))
	var qj map[string]string
	h.must(200, h.do("GET", "/api/clientes/c1/session/qr?format=json", adminTok, nil)).json(t, &qj)
	var st engine.SessionEvent
	h.must(200, h.do("GET", "/api/clientes/c1/session", adminTok, nil)).json(t, &st)
	if st.State != engine.SessionQRRequired || st.QR != qj["qr"] {
		t.Fatalf("session %+v, json qr %q", st, qj["qr"])
	}
	// The simulated phone scans the current QR.
	h.must(200, h.do("POST", "/api/demo/scan", adminTok, map[string]string{"cliente": "c1"}))
	for ev := range events {
		if ev.Type == "session" && ev.Session.State == engine.SessionReady {
			break
		}
	}
	h.must(200, h.do("GET", "/api/clientes/c1/session", adminTok, nil)).json(t, &st)
	if st.State != engine.SessionReady || st.JID == "" {
		t.Fatalf("after scan: %+v", st)
	}
	if _, err := sim.WaitEvent(ctxFor(t), seq, wasim.Is(wasim.EventPreKeys, st.JID)); err != nil {
		t.Fatal(err)
	}
	h.must(409, h.do("GET", "/api/clientes/c1/session/qr", adminTok, nil))

	// A campaign through the API, sent by the real client.
	for _, p := range []string{"5491123456701", "5491123456702"} {
		sim.AddUser(p, "user "+p)
		sim.SetBehavior(p, wasim.Behavior{Deliver: true})
	}
	h.must(201, h.do("POST", "/api/clientes/c1/campaigns", adminTok, map[string]any{"id": "k1", "plantilla": "Hola {{nombre}}",
		"ritmo": map[string]any{"min_delay": "1ms", "max_delay": "2ms"}}))
	v := h.upload("c1", "k1", adminTok, "telefono,nombre\n+5491123456701,Ana\n+5491123456702,Beto\n")
	if v["state"] != "done" {
		t.Fatalf("import: %v", v)
	}
	h.must(200, h.do("POST", "/api/clientes/c1/campaigns/k1/start", adminTok, nil))
	delivered := 0
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for delivered < 2 {
		select {
		case ev := <-events:
			if ev.Type == "envio" && ev.To == engine.Entregado {
				delivered++
			}
		case <-deadline.C:
			t.Fatal("campaign not delivered")
		}
	}
	var stats engine.Stats
	h.must(200, h.do("GET", "/api/clientes/c1/campaigns/k1/stats", adminTok, nil)).json(t, &stats)
	if stats.Counts[engine.Entregado] != 2 {
		t.Fatalf("stats %+v", stats)
	}
	if got := len(sim.Ledger()); got != 2 {
		t.Fatalf("simulator ledger has %d messages", got)
	}

	// Logout through the API: LOGGED_OUT, and a new QR is offered.
	h.must(200, h.do("POST", "/api/clientes/c1/session/logout", adminTok, nil)).json(t, &st)
	if st.State != engine.SessionLoggedOut {
		t.Fatalf("after logout: %+v", st)
	}
	h.must(200, h.do("GET", "/api/clientes/c1/session/qr?format=json&timeout=20s", adminTok, nil))

	// Pairing by code on a second cliente: the phone types the code.
	h.must(201, h.do("POST", "/api/clientes", adminTok, map[string]string{"id": "c2", "region": "US"}))
	const phone2 = "15550002222"
	var pc map[string]string
	h.must(200, h.do("POST", "/api/clientes/c2/session/pair", adminTok, map[string]string{"phone": "+" + phone2})).json(t, &pc)
	if len(pc["code"]) < 8 {
		t.Fatalf("pair code %v", pc)
	}
	seq2 := sim.LastEvent()
	jid2, err := sim.EnterPairCode(ctxFor(t), phone2, pc["code"])
	if err != nil {
		t.Fatalf("EnterPairCode: %v", err)
	}
	for ev := range events {
		if ev.Type == "session" && ev.Session.Cliente == "c2" && ev.Session.State == engine.SessionReady {
			break
		}
	}
	if _, err := sim.WaitEvent(ctxFor(t), seq2, wasim.Is(wasim.EventPreKeys, jid2.String())); err != nil {
		t.Fatal(err)
	}
	h.must(200, h.do("GET", "/api/clientes/c2/session", adminTok, nil)).json(t, &st)
	if st.State != engine.SessionReady {
		t.Fatalf("c2 after pair code: %+v", st)
	}
	h.must(409, h.do("POST", "/api/clientes/c2/session/pair", adminTok, map[string]string{"phone": "+" + phone2}))
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
