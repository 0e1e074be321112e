package wa

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	waLog "go.mau.fi/whatsmeow/util/log"

	"leadmaster/engine"
	"leadmaster/kv/devicestore"
)

// Directory is what the manager reads of the product's catalog: the
// clientes and the device each one's session runs on. The manager never
// writes it: the engine records a pairing or a logout when it journals the
// session event (engine.Inbound.SessionChanged) that the manager reports.
type Directory interface {
	Cliente(ctx context.Context, id string) (engine.Cliente, error)
	Clientes(ctx context.Context) ([]engine.Cliente, error)
}

// ErrClosed is returned by calls on a closed Manager.
var ErrClosed = errors.New("wa: session manager closed")

// Options tune a Manager. The zero value is usable (it talks to the real
// WhatsApp).
type Options struct {
	// Logger receives the manager's log and whatsmeow's (as debug, info,
	// warn, error). Default: discard.
	Logger *slog.Logger
	// Configure, if set, is called on every new whatsmeow client before it
	// connects (tests and the demo point it at wasim with sim.Configure).
	Configure func(*whatsmeow.Client)
	// ConnectConcurrency bounds how many clients dial and handshake at once.
	// Default 8.
	ConnectConcurrency int
	// SendTimeout bounds one Send (the server's ack included) on top of the
	// caller's context. Default 60 s.
	SendTimeout time.Duration
	// BackoffMin and BackoffMax bound the manager's own reconnect delay,
	// doubled per failed attempt. Default 2 s and 60 s.
	BackoffMin, BackoffMax time.Duration
	// HandOverAfter is how many failed automatic reconnects whatsmeow makes
	// (its delay grows by 2 s each, without bound) before the manager's
	// backoff takes over. Default 3.
	HandOverAfter int
	// PairClientName is the name the phone shows for a device paired by
	// code. Default "Chrome (Linux)".
	PairClientName string
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ConnectConcurrency <= 0 {
		o.ConnectConcurrency = 8
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 60 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 2 * time.Second
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(60*time.Second, o.BackoffMin)
	}
	if o.HandOverAfter <= 0 {
		o.HandOverAfter = 3
	}
	if o.PairClientName == "" {
		o.PairClientName = "Chrome (Linux)"
	}
}

// Manager runs one whatsmeow client per cliente on the devices of its
// device store. Create it with NewManager, connect the stored sessions with
// StartAll, and Close it to disconnect everything.
type Manager struct {
	dir   Directory
	in    engine.Inbound
	opts  Options
	log   *slog.Logger
	store *devicestore.Container
	sem   chan struct{} // bounds concurrent connects

	ctx    context.Context // canceled by Close: every client and goroutine stops
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards the fields below. Lock order: session.mu before m.mu.
	mu       sync.Mutex
	closed   bool
	sessions map[string]*session
}

var _ engine.Sessions = (*Manager)(nil)

// NewManager runs sessions on the devices of store, for the clientes of
// dir. inbound receives session changes, receipts and replies as they
// happen; it must not call back into the Manager synchronously for the
// same cliente's session control (Logout, WaitQR…) or it waits on itself.
func NewManager(dir Directory, store *devicestore.Container, inbound engine.Inbound, opts Options) (*Manager, error) {
	if dir == nil || store == nil || inbound == nil {
		return nil, errors.New("wa: NewManager needs a Directory, a device store and an engine.Inbound")
	}
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		dir: dir, in: inbound, opts: opts, log: opts.Logger.With("component", "wa"), store: store,
		sem:      make(chan struct{}, opts.ConnectConcurrency),
		ctx:      ctx,
		cancel:   cancel,
		sessions: map[string]*session{},
	}, nil
}

// StoreLog adapts l to the device store's logger, as the manager logs
// whatsmeow (main opens the device store with it).
func StoreLog(l *slog.Logger) waLog.Logger { return newWALog(l.With("component", "wa"), "store") }

// Store is the device store the manager uses (for tests and tools).
func (m *Manager) Store() *devicestore.Container { return m.store }

// StartAll connects the session of every cliente that has a stored device,
// at most Options.ConnectConcurrency at a time, and returns once each has
// made its first connection attempt (the login completes asynchronously:
// READY reaches the Inbound). A cliente whose device is missing from the
// store is marked LOGGED_OUT and its mapping forgotten. A session that
// cannot start is logged and reported in the joined error; the others
// start anyway.
func (m *Manager) StartAll(ctx context.Context) error {
	cs, err := m.dir.Clientes(ctx)
	if err != nil {
		return fmt.Errorf("list clientes: %w", err)
	}
	var firsts []<-chan struct{}
	var errs []error
	for _, c := range cs {
		if c.DeviceJID == "" {
			continue
		}
		s, err := m.session(ctx, c.ID)
		if errors.Is(err, ErrClosed) {
			return err
		}
		var cn *conn
		if err == nil {
			s.mu.Lock()
			cn, err = s.startLocked(ctx, false)
			s.mu.Unlock()
		}
		if err != nil { // one bad session does not keep the others off
			m.log.Error("start session", "cliente", c.ID, "err", err)
			errs = append(errs, fmt.Errorf("start session of %s: %w", c.ID, err))
			continue
		}
		if cn != nil {
			firsts = append(firsts, cn.first)
		}
	}
	for _, f := range firsts {
		select {
		case <-f:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Close disconnects every client and waits for every goroutine the manager
// started (pending session events reach the Inbound first). It does not close
// the device store.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	ss := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		ss = append(ss, s)
	}
	m.mu.Unlock()
	for _, s := range ss {
		s.mu.Lock()
		c := s.c
		s.c = nil
		s.closeGateLocked()
		s.mu.Unlock()
		if c != nil {
			c.stop()
		}
	}
	m.cancel()
	m.wg.Wait()
	return nil
}

// goTracked runs f in a goroutine Close waits for; false once closed.
func (m *Manager) goTracked(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

// session returns the cliente's session, creating its entry (not its
// client) if needed. ErrNotFound for an unknown cliente.
func (m *Manager) session(ctx context.Context, cliente string) (*session, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	s := m.sessions[cliente]
	m.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if _, err := m.dir.Cliente(ctx, cliente); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.sessions[cliente]; s == nil {
		s = newSession(m, cliente)
		m.sessions[cliente] = s
	}
	return s, nil
}

// lookup returns the cliente's session or nil; it never creates one.
func (m *Manager) lookup(cliente string) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[cliente]
}

// Start connects the cliente's session if it is not running: its stored
// device logs in, or a new device shows a QR. It does not wait for either.
func (m *Manager) Start(ctx context.Context, cliente string) error {
	s, err := m.session(ctx, cliente)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err = s.startLocked(ctx, true)
	return err
}

// State is the session's current state; INITIALIZING for a cliente whose
// session never started.
func (m *Manager) State(cliente string) engine.SessionEvent {
	s := m.lookup(cliente)
	if s == nil {
		return engine.SessionEvent{Cliente: cliente, State: engine.SessionInitializing}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Ready is the live gate: the cliente's client got events.Connected and
// nothing since said the connection or the login is gone.
func (m *Manager) Ready(cliente string) bool {
	s := m.lookup(cliente)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live && s.c != nil
}

// WaitQR starts the session if it is not running and returns the current QR
// code as soon as there is one (concurrent callers share the client and
// its QR). It returns engine.ErrAlreadyConnected when the session is (or
// becomes) READY, ctx's error when ctx ends first, and an error carrying
// the state when the session stops (ERROR, REPLACED, LOGGED_OUT) after
// this call started it.
func (m *Manager) WaitQR(ctx context.Context, cliente string) (string, error) {
	ev, err := m.waitQRState(ctx, cliente)
	if err != nil {
		return "", err
	}
	return ev.QR, nil
}

// waitQRState waits as WaitQR does and returns the event with the QR.
func (m *Manager) waitQRState(ctx context.Context, cliente string) (engine.SessionEvent, error) {
	s, err := m.session(ctx, cliente)
	if err != nil {
		return engine.SessionEvent{}, err
	}
	started := false
	for {
		s.mu.Lock()
		cur := s.cur
		switch {
		case cur.State == engine.SessionReady && s.c != nil:
			s.mu.Unlock()
			return cur, engine.ErrAlreadyConnected
		case cur.State == engine.SessionQRRequired && cur.QR != "" && s.c != nil:
			s.mu.Unlock()
			return cur, nil
		case s.c == nil && started:
			s.mu.Unlock()
			return cur, stateError(cur)
		case s.c == nil:
			if _, err := s.startLocked(ctx, true); err != nil {
				s.mu.Unlock()
				return cur, err
			}
			started = true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return engine.SessionEvent{}, ctx.Err()
		case <-m.ctx.Done():
			return engine.SessionEvent{}, ErrClosed
		}
	}
}

// stateError describes a session that stopped.
func stateError(ev engine.SessionEvent) error {
	if ev.Err != "" {
		return fmt.Errorf("session %s: %s", ev.State, ev.Err)
	}
	return fmt.Errorf("session %s", ev.State)
}

// PairPhone starts the session if needed, waits until its unpaired client
// is connected (the moment it shows a QR) and asks the server for a
// pairing code for phone (E.164) to type on that phone. The QR stays valid
// as well. engine.ErrAlreadyConnected when READY.
func (m *Manager) PairPhone(ctx context.Context, cliente, phone string) (string, error) {
	if _, err := m.waitQRState(ctx, cliente); err != nil {
		return "", err
	}
	s := m.lookup(cliente)
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return "", fmt.Errorf("%w: session stopped before pairing", engine.ErrSessionDown)
	}
	code, err := c.cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, m.opts.PairClientName)
	if err != nil {
		return "", fmt.Errorf("pair by code: %w", mapErr(err))
	}
	return code, nil
}

// Logout unlinks the cliente's device: the server is told when the session
// is connected (whatsmeow's Logout), the device is deleted from the store
// either way, the mapping forgotten, LOGGED_OUT journaled and published.
// It returns after all of that. A new QR is available at once (WaitQR).
func (m *Manager) Logout(ctx context.Context, cliente string) error {
	s, err := m.session(ctx, cliente)
	if err != nil {
		return err
	}
	s.mu.Lock()
	c, live := s.c, s.live
	s.mu.Unlock()
	reason := "operator (local only: not connected, the phone still lists the device)"
	if c != nil && live {
		reason = "operator"
		if err := c.cli.Logout(ctx); err != nil {
			// The device stays listed on the phone until removed there;
			// ours is gone all the same.
			m.log.Warn("logout request failed; removing the device locally", "cliente", cliente, "err", err)
			reason = "operator (local only: " + err.Error() + ")"
		}
	}
	done := make(chan struct{})
	s.mu.Lock()
	if s.c != nil && s.c != c { // a new client started meanwhile: log that one out too
		c = s.c
	}
	jid := ""
	if c != nil {
		jid = c.jidString()
	} else if cl, err := m.dir.Cliente(ctx, cliente); err == nil {
		jid = cl.DeviceJID
	}
	s.loggedOutLocked(c, jid, reason, done)
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publish hands ev to the Inbound.
func (m *Manager) publish(ev engine.SessionEvent) { m.in.SessionChanged(ev) }
