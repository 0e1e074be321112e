package admin_test

import (
	"strings"
	"testing"

	"leadmaster/admin"
	"leadmaster/assets"
)

// TestPage: the embedded page is served at / (index.html) and its assets
// under their names, without a token, with the security headers; unknown
// /api paths stay JSON 404s.
func TestPage(t *testing.T) {
	h := newHarness(t, func(o *admin.Options) { o.UI = assets.FS })
	r := h.must(200, h.do("GET", "/", "", nil))
	if !strings.Contains(string(r.Body), "app.js") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("index: %v %.200s", r.Header, r.Body)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || r.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("headers: %v", r.Header)
	}
	h.must(200, h.do("GET", "/app.js", "", nil))
	h.must(200, h.do("GET", "/style.css", "", nil))
	if r := h.do("GET", "/api/nothing", adminTok, nil); r.Status != 404 || r.errCode() != "not_found" {
		t.Fatalf("api 404: %d %s", r.Status, r.Body)
	}
	h.must(401, h.do("GET", "/api/nothing", "", nil))
}
