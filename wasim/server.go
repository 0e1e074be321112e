package wasim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Options configure a Server. The zero value is usable: a listener on 127.0.0.1:0, no
// snapshot, no logging, the default root key.
type Options struct {
	// Addr is the TCP address to listen on; default "127.0.0.1:0".
	Addr string
	// SnapshotPath, if set, is a JSON file holding the account registry: loaded by Start and
	// rewritten (atomically) after every change, so a killed simulator restarts with its
	// accounts and linked devices.
	SnapshotPath string
	// RootKey is the private key of the certificate root; nil means DefaultRootKey. Clients
	// must trust its public half (whatsmeow.WACertPubKey, a process-wide global), so every
	// simulator a process talks to should share one root.
	RootKey *[32]byte
	// Logger receives the simulator's own log (stanzas at Debug); nil discards it.
	Logger *slog.Logger
	// OnEvent, if set, is called synchronously for every event, sometimes with the server's
	// lock held: it must not block or call the Server.
	OnEvent func(Event)
	// Platform is the primary phone's platform sent in pair-success; default "android".
	Platform string
	// StrictNumbers makes only known accounts (paired, or added with AddUser) be "on
	// WhatsApp". By default every number is: an account is made on first lookup.
	StrictNumbers bool
}

// DefaultRootKey is the private key of the root certificate every simulator uses unless told
// otherwise. It is a fixed, public value: a simulator is not a security boundary.
var DefaultRootKey = sha256.Sum256([]byte("leadmaster wasim root key v1"))

// RootPublicKey returns the public key of DefaultRootKey: the value whatsmeow.WACertPubKey
// must hold for a client to accept any simulator that uses the default root.
func RootPublicKey() [32]byte { return *rootKeyPair(&DefaultRootKey).Pub }

func rootKeyPair(priv *[32]byte) *keys.KeyPair {
	p := *priv
	p[0] &= 248
	p[31] &= 127
	p[31] |= 64
	return keys.NewKeyPairFromPrivateKey(p)
}

// Server is a WhatsApp multi-device server on loopback. Create it with New, then Start it;
// Close stops it and waits for every goroutine it started.
type Server struct {
	opts   Options
	log    *slog.Logger
	root   *keys.KeyPair
	chain  *certChain
	events eventLog

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	ln     net.Listener
	hs     *http.Server
	wg     sync.WaitGroup // connection handlers and helper goroutines

	// mu guards everything below. Lock order: mu before a phoneDevice's mu and before the
	// event log's; goTracked and conn.close(true) take mu, so never call them with mu held.
	mu          sync.Mutex
	closed      bool
	reg         *registry
	conns       map[uint64]*conn
	nextConn    uint64
	live        map[types.JID]*conn // device (phone JID with device id) -> its login connection
	pendingQR   map[string]*conn    // pair-device ref -> fresh connection showing it
	pendingCode map[string]*codePairing
	refuseUntil time.Time

	// part 2: messages
	ledger    ledger
	faults    map[string]Faults // by sending phone; "" = global
	chaos     *Chaos
	behaviors map[string]Behavior           // by recipient phone; "" = default
	received  map[string]int                // "recipient|sender" -> messages read, for Behavior.ReplyTo
	offline   map[types.JID][]waBinary.Node // stanzas for linked devices that are not connected

	// part 3: reach-out rules
	reachPlans map[string]Reach       // by sending phone; "" = default
	locks      map[string]*reachState // by sending phone
}

// New returns a server configured by opts; it does not listen until Start.
func New(opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Platform == "" {
		opts.Platform = "android"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rootPriv := opts.RootKey
	if rootPriv == nil {
		rootPriv = &DefaultRootKey
	}
	s := &Server{
		opts:        opts,
		log:         log,
		root:        rootKeyPair(rootPriv),
		conns:       map[uint64]*conn{},
		live:        map[types.JID]*conn{},
		pendingQR:   map[string]*conn{},
		pendingCode: map[string]*codePairing{},
	}
	s.events.hook = opts.OnEvent
	return s
}

// Start loads the snapshot (if any), listens on Options.Addr and serves in the background.
// ctx bounds only the start itself; use Close to stop.
func (s *Server) Start(ctx context.Context) error {
	reg := newRegistry()
	if s.opts.SnapshotPath != "" {
		var err error
		if reg, err = loadSnapshot(s.opts.SnapshotPath); err != nil {
			return err
		}
	}
	chain, err := newCertChain(s.root)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("wasim: listen: %w", err)
	}
	s.mu.Lock()
	s.reg, s.chain, s.ln = reg, chain, ln
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.hs = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("wasim: serve", "err", err)
		}
	}()
	s.log.Info("wasim: listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the host:port the server listens on (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL of the control API, e.g. "http://127.0.0.1:40123".
func (s *Server) URL() string { return "http://" + s.Addr() }

// Handler returns the HTTP handler: the WhatsApp websocket at /ws/chat and the control API
// under /sim/ (see control.go).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/chat", s.handleWS)
	s.controlRoutes(mux)
	return s.tracked(mux)
}

// tracked counts running handlers so Close can wait for them.
func (s *Server) tracked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "wasim: closed", http.StatusServiceUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		h.ServeHTTP(w, r)
	})
}

// goTracked runs f in a goroutine that Close waits for.
func (s *Server) goTracked(f func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Close stops listening, drops every connection and waits for all goroutines of the server.
// The snapshot on disk stays as last written.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed || s.hs == nil {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	err := s.hs.Close()
	for _, c := range conns {
		c.close(false)
	}
	s.wg.Wait()
	return err
}

func (s *Server) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.nextConn++
	c.id = s.nextConn
	s.conns[c.id] = c
	return true
}

func (s *Server) removeConn(c *conn) {
	_ = c.ws.CloseNow()
	c.cancel()
	s.mu.Lock()
	delete(s.conns, c.id)
	if s.live[c.jid] == c {
		delete(s.live, c.jid)
	}
	for ref, rc := range s.pendingQR {
		if rc == c {
			delete(s.pendingQR, ref)
		}
	}
	for phone, p := range s.pendingCode {
		if p.conn == c {
			delete(s.pendingCode, phone)
		}
	}
	s.mu.Unlock()
	e := Event{Kind: EventConnClosed, Conn: c.id}
	if !c.jid.IsEmpty() {
		e.JID, e.Phone = c.jid.String(), c.jid.User
	}
	s.events.add(e)
}

// refusing reports whether new connections are refused right now.
func (s *Server) refusing() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refuseUntil, time.Now().Before(s.refuseUntil)
}

// handleNode dispatches one node from the client, on the connection's reader goroutine.
func (s *Server) handleNode(c *conn, n *waBinary.Node) {
	if c.silent.Load() {
		return
	}
	switch n.Tag {
	case "iq":
		switch n.AttrGetter().OptionalString("type") {
		case "result", "error":
			if !c.deliverResponse(n) {
				s.log.Debug("wasim: unsolicited iq response", "conn", c.id, "id", n.Attrs["id"])
			}
		default:
			s.handleIQ(c, n)
		}
	case "ack":
		c.deliverResponse(n)
	case "message":
		s.handleMessage(c, n)
	case "receipt":
		if !c.deliverResponse(n) {
			id, _ := n.Attrs["id"].(string)
			s.events.add(Event{Kind: EventClientReceipt, Conn: c.id, JID: jidString(c.jid), Phone: c.jid.User,
				Detail: strings.TrimSpace(id + " " + n.AttrGetter().OptionalString("type"))})
		}
	default:
		// message, receipt, presence, chatstate... are the second half of the simulator.
		s.log.Debug("wasim: unhandled stanza", "conn", c.id, "tag", n.Tag)
	}
}
