package wasim

import (
	"context"
	"net"
	"net/http"
	"sync"

	"go.mau.fi/whatsmeow"
)

// HTTPClient returns an *http.Client whose every connection goes to addr (a simulator's
// host:port), whatever URL is asked for. whatsmeow dials wss://web.whatsapp.com/ws/chat;
// coder/websocket turns it into an https request, and because DialTLSContext hands back a
// plain TCP connection net/http treats it as already past TLS and speaks HTTP/1.1 to it.
func HTTPClient(addr string) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:       dial,
		DialTLSContext:    dial,
		ForceAttemptHTTP2: false,
	}}
}

// Client returns what a whatsmeow client needs to talk to this server: an HTTP client that
// dials it, and the root public key to put in whatsmeow.WACertPubKey. Configure does both.
func (s *Server) Client() (*http.Client, [32]byte) {
	return HTTPClient(s.Addr()), *s.root.Pub
}

// Configure points cli at this server: both of its HTTP clients (pre-login and websocket,
// or the reconnect after pairing would leave loopback) and the process-wide certificate root.
func (s *Server) Configure(cli *whatsmeow.Client) {
	hc, root := s.Client()
	ConfigureClient(cli, hc, root)
}

var certMu sync.Mutex

// ConfigureClient points cli at a simulator reached through hc whose root public key is root
// (RootPublicKey() for the default). Use it for a simulator in another process:
//
//	wasim.ConfigureClient(cli, wasim.HTTPClient("127.0.0.1:7780"), wasim.RootPublicKey())
//
// whatsmeow.WACertPubKey is a process-wide global: it is written only when it differs, so
// clients configured concurrently for simulators sharing a root do not race; a process cannot
// talk to the real WhatsApp and a simulator at once.
func ConfigureClient(cli *whatsmeow.Client, hc *http.Client, root [32]byte) {
	certMu.Lock()
	if whatsmeow.WACertPubKey != root {
		whatsmeow.WACertPubKey = root
	}
	certMu.Unlock()
	cli.SetPreLoginHTTPClient(hc)
	cli.SetWebsocketHTTPClient(hc)
}
