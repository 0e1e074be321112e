package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"leadmaster/engine"
)

// TestBrowserDiskFloor: the data disk has less free space than serve's
// floor (--min-free-mb larger than any disk). Sending pauses before any
// write-ahead, and the operator is told so everywhere: the page says it in
// plain words (#send-state), GET …/session names the reason, /readyz
// answers 503 and /metrics has the blocked gauge; nothing is written ahead
// or sent. (Resuming when space returns is shown by the admin and engine
// tests, which can change the free space under a running engine.)
func TestBrowserDiskFloor(t *testing.T) {
	parallel(t)
	b := newBrowser(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sim := startBinarySim(t, dir)
	importCrashCampaign(t, dir, data, 3)
	const token = "disk-browser-admin-token-0123456789"
	srv := startServeProc(t, filepath.Join(dir, "serve.log"), token, []string{"serve", "--data", data,
		"--listen", "127.0.0.1:0", "--wasim", sim.addr, "--log-format", "json", "--min-free-mb", "1000000000"})
	srv.api(t, "PATCH", "/campaigns/"+crashCampaign, map[string]any{"plantilla": crashTemplate}, nil)
	pairBinary(t, srv, sim)
	waitSessionReady(t, srv, 30*time.Second)
	srv.api(t, "POST", "/campaigns/"+crashCampaign+"/start", nil, nil)

	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.base+"/#token="+token),
		chromedp.WaitVisible(`#session-badge[data-state="READY"]`),
		chromedp.WaitVisible(`#send-state[data-reason="`+engine.BlockDiskLow+`"]`),
		waitJS(`document.querySelector('#send-state').textContent.includes('espacio')`),
	)
	if err != nil {
		b.fail("the page names the full disk", err.Error())
	}

	var sess struct {
		Envios *engine.SendState `json:"envios"`
	}
	srv.api(t, "GET", "/session", nil, &sess)
	if s := sess.Envios; s == nil || s.Estado != engine.SendingPaused || s.Motivo != engine.BlockDiskLow {
		t.Errorf("GET …/session envios = %+v, want pausado %s", s, engine.BlockDiskLow)
	}
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", srv.base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := get("/readyz", ""); code != 503 {
		t.Errorf("/readyz = %d %s, want 503 while the disk is below the floor", code, body)
	}
	if _, body := get("/metrics", token); !strings.Contains(body, `leadmaster_send_blocked{cliente="`+crashCliente+`",reason="`+engine.BlockDiskLow+`"} 1`) {
		t.Errorf("/metrics lacks the blocked gauge")
	}
	if st := srv.stats(t); st.Counts[engine.Enviando] != 0 || st.Counts[engine.Enviado] != 0 {
		t.Errorf("counts %v: written ahead or sent below the floor", st.Counts)
	}
	srv.stop(t)
}
