package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"leadmaster/engine"
	"leadmaster/wasim"
)

// TestBrowserReachLock: WhatsApp locks the cliente's number out of new
// chats in the middle of a campaign (the standalone simulator's reach plan:
// the third cold send starts a one-hour timelock and is refused with 463).
// The page of the real `leadmaster serve` shows the lock as it happens
// (#reach-lock, on the SSE reach event) and after a reload (GET …/session's
// nuevos_contactos), naming the end the server gave; when the server ends
// the lock the banner goes away by itself, and the held envíos go out.
func TestBrowserReachLock(t *testing.T) {
	parallel(t)
	b := newBrowser(t)
	start := time.Now()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sim := startBinarySim(t, dir)

	// Four cold recipients; the number may start two new chats, the third
	// send starts the lock. The plan is removed before the lock ends, so
	// the rest go out and nothing locks again.
	const n, allowed = 4, 2
	sim.post(t, "/sim/reach", map[string]any{"phone": crashSender, "reach": wasim.Reach{
		TimelockAfterColdSends: allowed, TimelockFor: time.Hour, EnforcementType: "RESTRICT_ALL_COMPANIONS",
	}})
	importCrashCampaign(t, dir, data, n)
	const token = "reach-browser-admin-token-0123456789"
	srv := startServeProc(t, filepath.Join(dir, "serve.log"), token, []string{"serve", "--data", data,
		"--listen", "127.0.0.1:0", "--wasim", sim.addr, "--log-format", "json", "--number-check-every", "50ms", "--send-timeout", "10s"})
	srv.api(t, "PATCH", "/campaigns/"+crashCampaign, map[string]any{
		"plantilla": crashTemplate,
		"ritmo":     engine.Rate{MinDelay: 0, MaxDelay: time.Millisecond, HourlyCap: 1 << 30, DailyCap: 1 << 30, MaxAttempts: 8},
	}, nil)
	pairBinary(t, srv, sim)

	within := func(name string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		began := time.Now()
		ctx, cancel := context.WithTimeout(b.ctx, d)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			b.fail(name, err.Error())
		}
		t.Logf("ok   %-64s %5dms", name, time.Since(began).Milliseconds())
	}
	// The page opens on a READY session, with its event stream connected,
	// before anything locks. (app.js selectCliente loads the session while
	// its EventSource is still connecting, so a change in between is not
	// seen until the next event: this test stays out of that window.)
	waitSessionReady(t, srv, 30*time.Second)
	within("open the page: READY, live, no reach lock", 30*time.Second,
		chromedp.Navigate(srv.base+"/#token="+token),
		chromedp.WaitVisible(`#clientes button[data-cliente="`+crashCliente+`"][aria-current="true"]`),
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
		chromedp.WaitVisible(`#conn[data-live="on"]`),
		chromedp.WaitNotVisible(`#reach-lock`),
	)

	events := (&browserStack{url: srv.base, token: token}).events(t, crashCliente)
	srv.api(t, "POST", "/campaigns/"+crashCampaign+"/start", nil, nil)
	held := waitLockAndHeld(t, events, 30*time.Second)

	var tl wasim.Timelock
	sim.get(t, "/sim/timelock?phone="+crashSender, &tl)
	if !tl.Active || tl.Ends.IsZero() {
		t.Fatalf("simulator's timelock %+v, want an active one with an end", tl)
	}
	var sess struct {
		Estado string            `json:"estado"`
		Reach  *engine.ReachLock `json:"nuevos_contactos"`
	}
	srv.api(t, "GET", "/session", nil, &sess)
	switch r := sess.Reach; {
	case r == nil || !r.Active:
		t.Fatalf("GET …/session during the lock: %+v, want nuevos_contactos.activo", sess)
	case r.Source != engine.ReachTimelock || r.Enforcement != tl.EnforcementType || r.Until.Unix() != tl.Ends.Unix():
		t.Errorf("nuevos_contactos %+v, want origen %q, tipo %q, hasta the server's end %v", r, engine.ReachTimelock, tl.EnforcementType, tl.Ends)
	}

	// The banner names the lock's end as the page formats times.
	bannerNamesEnd := fmt.Sprintf(`(() => {
  const p = document.querySelector('#reach-lock'), want = new Date(%q);
  const shown = want.toLocaleString(document.documentElement.lang === 'es' ? 'es-AR' : 'en-US', {dateStyle: 'short', timeStyle: 'medium'});
  return !p.hidden && new Date(p.dataset.until).getTime() === want.getTime() && p.textContent.includes(shown);
})()`, sess.Reach.Until.Format(time.RFC3339Nano))
	within("the reach lock shows, live, with its end", 20*time.Second,
		chromedp.WaitVisible(`#reach-lock`),
		waitJS(bannerNamesEnd),
	)
	banner := b.evalString(`document.querySelector('#reach-lock').textContent`)
	within("reloaded, the page shows it from GET …/session", 30*time.Second,
		chromedp.Reload(),
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
		chromedp.WaitVisible(`#reach-lock`),
		waitJS(bannerNamesEnd),
	)

	// While the lock holds the held envío is not sent again.
	st := srv.stats(t)
	if st.Counts[engine.Enviado] != allowed || st.Counts[engine.Pendiente] != n-allowed {
		t.Errorf("during the lock: counts %v, want %d enviado and %d pendiente", st.Counts, allowed, n-allowed)
	}

	sim.post(t, "/sim/reach", map[string]any{"phone": crashSender, "reach": wasim.Reach{}})
	var ended struct{ Ended bool }
	sim.postOut(t, "/sim/timelock/end", map[string]string{"phone": crashSender}, &ended)
	if !ended.Ended {
		t.Fatal("POST /sim/timelock/end: no lock was active")
	}
	waitReachEvent(t, events, false, 20*time.Second)
	within("the lock ended: the banner hides by itself", 20*time.Second,
		chromedp.WaitNotVisible(`#reach-lock`),
		waitJS(`document.querySelector('#reach-lock').textContent === ''`),
	)
	sess.Reach = nil // absent (omitempty) leaves the field as it was
	srv.api(t, "GET", "/session", nil, &sess)
	if sess.Reach != nil {
		t.Errorf("GET …/session after the lock: nuevos_contactos %+v, want none", sess.Reach)
	}
	srv.waitTerminada(t, 30*time.Second)
	if st := srv.stats(t); st.Counts[engine.Enviado] != n {
		t.Errorf("after the lock: counts %v, want all %d enviado", st.Counts, n)
	}
	var ledger []wasim.LedgerEntry
	sim.get(t, "/sim/ledger", &ledger)
	for _, e := range ledger {
		if e.Acks463 > 0 && (e.RetriesInLock != 0 || e.Acks != 1 || !e.Decrypted) {
			t.Errorf("the refused message %s: %+v, want no retry in the lock and one delivery after it", e.ID, e)
		}
	}
	srv.stop(t)
	if t.Failed() {
		jo, _ := exec.Command(binary, "journal", "export", "--format", "ndjson", "--data", data).Output()
		var recs []string
		for line := range strings.Lines(string(jo)) {
			if strings.Contains(line, `"reach"`) || strings.Contains(line, "ack_463") {
				recs = append(recs, strings.TrimSpace(line))
			}
		}
		t.Logf("the journal's reach and 463 records:\n%s\nserve log:\n%s", strings.Join(recs, "\n"), srv.logTail())
	}
	t.Logf("reach lock shown (%q), then hidden; envío %d held through it; %v in all", banner, held, time.Since(start).Round(time.Millisecond))
}

// waitLockAndHeld waits on the admin event stream, in whatever order they
// come, for the reach lock the server's timelock notification opened and
// for an envío of crashCampaign back to pendiente with reason ack_463 (the
// send that started the lock, held). The 463's own lock is stored before
// that envío goes back, so once both are seen every change of this lock is
// in. It returns the held envío's sequence number.
func waitLockAndHeld(t *testing.T, events <-chan engine.Event, limit time.Duration) (held uint64) {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var notified bool
	for !notified || held == 0 {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended before the reach lock")
			}
			switch {
			case ev.Type == "reach" && ev.Reach != nil && ev.Reach.Active && ev.Reach.Source == engine.ReachTimelock:
				notified = true
			case ev.Type == "envio" && ev.Campaign == crashCampaign && ev.To == engine.Pendiente:
				if ev.Reason != "ack_463" {
					t.Fatalf("envío %d back to pendiente with reason %q, want ack_463", ev.Envio, ev.Reason)
				}
				held = ev.Envio
			}
		case <-timer.C:
			t.Fatalf("within %v: timelock notified %v, envío held %d", limit, notified, held)
		}
	}
	return held
}

// waitReachEvent waits on the admin event stream for a reach event whose
// lock is active (or ended), and returns its lock.
func waitReachEvent(t *testing.T, events <-chan engine.Event, active bool, limit time.Duration) engine.ReachLock {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended before the reach event")
			}
			if ev.Type == "reach" && ev.Reach != nil && ev.Reach.Active == active {
				return *ev.Reach
			}
		case <-timer.C:
			t.Fatalf("no reach event with activo=%v within %v", active, limit)
		}
	}
}
