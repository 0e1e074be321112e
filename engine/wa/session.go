package wa

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"leadmaster/engine"
)

// session is one cliente's WhatsApp session: at most one running client
// (conn) at a time, its state, and its queue of side effects.
type session struct {
	m  *Manager
	id string

	mu       sync.Mutex
	cur      engine.SessionEvent
	live     bool            // the live gate: Connected since the last loss
	gate     context.Context // canceled when the gate closes: in-flight sends stop
	shut     context.CancelFunc
	c        *conn         // the running client, nil when stopped
	changed  chan struct{} // closed and replaced on every state change
	effects  []func()      // journal, publish… in order
	draining bool          // a goroutine is running effects
	jids     map[string]types.JID
}

// conn is one whatsmeow client of a session. Events of a conn that is no
// longer the session's current one are ignored.
type conn struct {
	cli    *whatsmeow.Client
	ctx    context.Context // canceled when the conn stops: whatsmeow's goroutines end
	cancel context.CancelFunc
	first  chan struct{} // closed after the first connect attempt
	once   sync.Once

	// guarded by session.mu
	jid     types.JID // the device, once paired
	retries int       // our reconnect attempts since the last Connected
	stopped bool
}

func (c *conn) jidString() string {
	if c.jid.IsEmpty() {
		return ""
	}
	return c.jid.String()
}

// stop disconnects the client and ends its goroutines.
func (c *conn) stop() {
	c.cli.Disconnect()
	c.abandon()
}

// abandon ends the client's goroutines without a Disconnect: canceling the
// context the client connected with closes its socket through whatsmeow's
// own path. It is how a conn whose stream the server ended (logged out,
// replaced) stops: the server is closing that socket and whatsmeow is
// tearing it down, and a Disconnect of ours during that teardown races
// inside whatsmeow (NoiseSocket.Stop writes FrameSocket.OnDisconnect while
// FrameSocket.Close reads it, twice, and may start it nil).
func (c *conn) abandon() {
	c.cancel()
	c.once.Do(func() { close(c.first) })
}

func newSession(m *Manager, cliente string) *session {
	return &session{
		m:       m,
		id:      cliente,
		cur:     engine.SessionEvent{Cliente: cliente, State: engine.SessionInitializing, At: time.Now()},
		changed: make(chan struct{}),
		jids:    map[string]types.JID{},
	}
}

// openGateLocked opens the live gate.
func (s *session) openGateLocked() {
	s.closeGateLocked()
	s.live = true
	s.gate, s.shut = context.WithCancel(context.Background())
}

// closeGateLocked closes the live gate and stops the sends in flight.
func (s *session) closeGateLocked() {
	s.live = false
	if s.shut != nil {
		s.shut()
		s.shut = nil
	}
}

// setLocked changes the state (waking every waiter) and queues its
// publication: the Inbound journals it when event is not "".
func (s *session) setLocked(state engine.SessionState, qr, errMsg, event, reason string, before func()) {
	s.cur.State, s.cur.QR, s.cur.Err, s.cur.At = state, qr, errMsg, time.Now()
	close(s.changed)
	s.changed = make(chan struct{})
	ev := s.cur
	ev.Event, ev.Reason = event, reason
	s.queueLocked(func() {
		if before != nil {
			before()
		}
		s.m.publish(ev)
	})
}

// queueLocked runs f after the effects already queued, on a tracked
// goroutine (dropped once the manager is closed).
func (s *session) queueLocked(f func()) {
	s.effects = append(s.effects, f)
	if !s.draining && s.m.goTracked(s.drain) {
		s.draining = true
	}
}

func (s *session) drain() {
	for {
		s.mu.Lock()
		if len(s.effects) == 0 {
			s.draining = false
			s.mu.Unlock()
			return
		}
		f := s.effects[0]
		s.effects[0] = nil
		s.effects = s.effects[1:]
		s.mu.Unlock()
		f()
	}
}

// startLocked creates and connects the session's client unless one is
// running. With fresh, a cliente without a usable stored device gets a new
// device (it will show a QR); without, it is left stopped (nil conn).
func (s *session) startLocked(ctx context.Context, fresh bool) (*conn, error) {
	if s.c != nil {
		return s.c, nil
	}
	var dev *store.Device
	if s.cur.State != engine.SessionLoggedOut { // after a logout the old mapping may not be forgotten yet
		cl, err := s.m.dir.Cliente(ctx, s.id)
		if err != nil {
			return nil, err
		}
		if cl.DeviceJID != "" {
			jid, err := types.ParseJID(cl.DeviceJID)
			if err == nil {
				dev, err = s.m.store.GetDevice(ctx, jid)
			}
			if err != nil {
				return nil, fmt.Errorf("load device %s: %w", cl.DeviceJID, err)
			}
			if dev == nil {
				// A logout that crashed between deleting the device and
				// forgetting the mapping, or a lost store.
				s.setLocked(engine.SessionLoggedOut, "", "device missing from the store", engine.EventLoggedOut, "device missing from store", nil)
				s.cur.JID = ""
				if !fresh {
					return nil, nil
				}
			}
		}
	}
	if dev == nil {
		if !fresh {
			return nil, nil
		}
		dev = s.m.store.NewDevice()
	}
	cli := whatsmeow.NewClient(dev, newWALog(s.m.log.With("cliente", s.id), "whatsmeow"))
	cctx, cancel := context.WithCancel(s.m.ctx)
	cli.BackgroundEventCtx = cctx
	cli.EnableAutoReconnect = true
	// Keep sent messages in the device store, so that a recipient's retry
	// receipt ("waiting for this message") is answered after a restart too.
	cli.UseRetryMessageStore = true
	c := &conn{cli: cli, ctx: cctx, cancel: cancel, first: make(chan struct{})}
	if dev.ID != nil {
		c.jid = *dev.ID
	}
	cli.AutoReconnectHook = func(err error) bool { return s.whatsmeowReconnectFailed(c, err) }
	if s.m.opts.Configure != nil {
		s.m.opts.Configure(cli)
	}
	cli.AddEventHandler(func(evt any) { s.handle(c, evt) })
	if dev.ID == nil {
		qrs, err := cli.GetQRChannel(cctx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("qr channel: %w", err)
		}
		if !s.m.goTracked(func() { s.readQR(c, qrs) }) {
			cancel()
			return nil, ErrClosed
		}
	}
	s.c = c
	s.closeGateLocked()
	s.cur.JID = c.jidString()
	s.setLocked(engine.SessionInitializing, "", "", "", "", nil)
	if !s.m.goTracked(func() { s.connect(c) }) {
		s.c = nil
		cancel()
		return nil, ErrClosed
	}
	return c, nil
}

// connect makes one connection attempt (dial + Noise handshake) under the
// manager's concurrency bound; a failure schedules our backoff.
func (s *session) connect(c *conn) {
	defer c.once.Do(func() { close(c.first) })
	select {
	case s.m.sem <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	err := c.cli.ConnectContext(c.ctx)
	<-s.m.sem
	if err == nil || errors.Is(err, whatsmeow.ErrAlreadyConnected) || c.ctx.Err() != nil {
		return
	}
	s.m.log.Warn("connect failed", "cliente", s.id, "err", err)
	s.reconnectLater(c, err, 0)
}

// whatsmeowReconnectFailed is whatsmeow's AutoReconnectHook: after
// HandOverAfter failures its linear, unbounded delay gives way to ours.
func (s *session) whatsmeowReconnectFailed(c *conn, err error) bool {
	// A failed attempt emits no event: close the gate here too, in case a
	// late Connected opened it after the drop.
	s.mu.Lock()
	if s.c == c && s.live {
		s.lostLocked("reconnect failed: "+err.Error(), "reconnect failed")
	}
	s.mu.Unlock()
	if c.cli.AutoReconnectErrors < s.m.opts.HandOverAfter {
		return true
	}
	s.reconnectLater(c, err, 0)
	return false
}

// reconnectLater reconnects c after the next backoff delay (at least
// atLeast), unless c stops first.
func (s *session) reconnectLater(c *conn, cause error, atLeast time.Duration) {
	s.mu.Lock()
	if s.c != c {
		s.mu.Unlock()
		return
	}
	c.retries++
	d := s.m.opts.BackoffMin << min(c.retries-1, 16)
	if d > s.m.opts.BackoffMax || d <= 0 {
		d = s.m.opts.BackoffMax
	}
	d = d/2 + rand.N(d/2+1) // jitter: clients dropped together do not come back together
	d = max(d, atLeast)
	s.closeGateLocked()
	msg := fmt.Sprintf("reconnecting in %v (attempt %d): %v", d.Round(time.Millisecond), c.retries, cause)
	if s.cur.State == engine.SessionDisconnected {
		s.setLocked(engine.SessionDisconnected, "", msg, "", "", nil)
	} else if s.cur.State != engine.SessionQRRequired {
		s.setLocked(engine.SessionDisconnected, "", msg, engine.EventDisconnected, cause.Error(), nil)
	}
	s.mu.Unlock()
	s.m.goTracked(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			s.connect(c)
		case <-c.ctx.Done():
		}
	})
}

// teardownLocked stops c if it is the current client.
func (s *session) teardownLocked(c *conn) {
	if s.detachLocked(c) && !s.m.goTracked(c.stop) {
		go c.stop() // closing: Close stops the conns it still finds
	}
}

// endedByServerLocked is teardownLocked for a conn whose stream the server
// ended: it is abandoned, not disconnected (see conn.abandon).
func (s *session) endedByServerLocked(c *conn) {
	if s.detachLocked(c) {
		c.abandon()
	}
}

// detachLocked marks c stopped and closes the gate; false if c was nil or
// already stopped.
func (s *session) detachLocked(c *conn) bool {
	if c == nil || c.stopped {
		return false
	}
	c.stopped = true
	if s.c == c {
		s.c = nil
	}
	s.closeGateLocked()
	return true
}

// readQR follows whatsmeow's rotating QR channel of an unpaired client.
func (s *session) readQR(c *conn, qrs <-chan whatsmeow.QRChannelItem) {
	for {
		var item whatsmeow.QRChannelItem
		var ok bool
		select {
		case item, ok = <-qrs:
			if !ok {
				return
			}
		case <-c.ctx.Done():
			return
		}
		s.mu.Lock()
		if s.c != c {
			s.mu.Unlock()
			return
		}
		switch item.Event {
		case whatsmeow.QRChannelEventCode:
			s.setLocked(engine.SessionQRRequired, item.Code, "", engine.EventQR, "", nil)
		case whatsmeow.QRChannelSuccess.Event:
		case whatsmeow.QRChannelTimeout.Event:
			if c.jid.IsEmpty() {
				s.teardownLocked(c)
				s.setLocked(engine.SessionError, "", "the QR code expired without being scanned (or the connection was lost before pairing); ask for a new one", engine.EventDisconnected, "qr timeout", nil)
			}
		case whatsmeow.QRChannelEventError:
			s.teardownLocked(c)
			s.setLocked(engine.SessionError, "", fmt.Sprintf("pairing failed: %v", item.Error), engine.EventDisconnected, "pair error", nil)
		case whatsmeow.QRChannelErrUnexpectedEvent.Event:
		default:
			s.teardownLocked(c)
			s.setLocked(engine.SessionError, "", "pairing failed: "+item.Event, engine.EventDisconnected, item.Event, nil)
		}
		s.mu.Unlock()
	}
}

// handle is the client's event handler. whatsmeow calls it from several
// goroutines; state changes happen here, under the lock, at once.
func (s *session) handle(c *conn, evt any) {
	switch e := evt.(type) {
	case *events.Connected:
		// A Connected dispatched late, after its socket already dropped
		// (whatsmeow sends it even when the post-login IQs failed), must
		// not open the gate.
		if !c.cli.IsConnected() {
			return
		}
	case *events.Receipt:
		s.receipt(c, e)
		return
	case *events.Message:
		s.message(c, e)
		return
	case *events.NotifyAccountReachoutTimelock:
		s.reachout(c, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != c {
		return
	}
	switch e := evt.(type) {
	case *events.PairSuccess:
		c.jid = e.ID
		s.cur.JID = e.ID.String()
		s.setLocked(engine.SessionInitializing, "", "", engine.EventPaired, e.Platform, nil)
	case *events.PairError:
		s.teardownLocked(c)
		s.setLocked(engine.SessionError, "", fmt.Sprintf("pairing failed: %v", e.Error), engine.EventDisconnected, "pair error", nil)
	case *events.Connected:
		c.retries = 0
		if s.live {
			// confirmLogin opened the gate on this socket first (its
			// request can be answered before whatsmeow's post-login
			// requests are), or the previous socket's Disconnected is still
			// on its way and will close it. Reopening would cut the
			// requests in flight on a live socket.
			return
		}
		s.openGateLocked()
		s.setLocked(engine.SessionReady, "", "", engine.EventConnected, "", nil)
	case *events.Disconnected:
		s.lostLocked("connection lost; whatsmeow reconnects", "socket closed")
		// whatsmeow dispatches events from separate goroutines: after a
		// fast reconnect the old socket's Disconnected can arrive after
		// the new socket's Connected, and no other Connected will come.
		// If a socket is up, ask the server whether its login stands.
		// IsConnected waits for a reconnect's whole dial and handshake, so
		// it is asked outside s.mu: State, Ready and Send stay answerable.
		jid := c.jid
		s.m.goTracked(func() {
			if c.cli.IsConnected() {
				s.confirmLogin(c, jid)
			}
		})
	case *events.StreamError:
		s.lostLocked("stream error "+e.Code, "stream error "+e.Code)
	case *events.KeepAliveTimeout:
		s.lostLocked(fmt.Sprintf("keepalive timeout (%d errors)", e.ErrorCount), "keepalive timeout")
	case *events.KeepAliveRestored:
		if s.cur.State == engine.SessionDisconnected && c.cli.IsLoggedIn() {
			s.openGateLocked()
			s.setLocked(engine.SessionReady, "", "", engine.EventConnected, "keepalive restored", nil)
		}
	case *events.StreamReplaced:
		s.endedByServerLocked(c)
		s.setLocked(engine.SessionReplaced, "", "another client connected with this device and took the session over (stream replaced); start it again here to take it back", engine.EventReplaced, "stream replaced", nil)
	case *events.LoggedOut:
		reason := fmt.Sprintf("logged out by the server: %s", e.Reason)
		if e.OnConnect {
			reason += " (at login)"
		}
		s.loggedOutLocked(c, c.jidString(), reason, nil)
	case *events.ConnectFailure:
		s.closeGateLocked()
		msg := fmt.Sprintf("connect failure %s %s", e.Reason, e.Message)
		s.setLocked(engine.SessionError, "", msg, engine.EventDisconnected, msg, nil)
		s.m.goTracked(func() { s.reconnectLater(c, errors.New(msg), 0) })
	case *events.TemporaryBan:
		s.closeGateLocked()
		s.setLocked(engine.SessionError, "", e.String(), engine.EventDisconnected, "temporary ban", nil)
		s.m.goTracked(func() { s.reconnectLater(c, errors.New(e.String()), e.Expire) })
	case *events.ClientOutdated:
		s.teardownLocked(c)
		s.setLocked(engine.SessionError, "", "WhatsApp says this client version is outdated (405): update leadmaster", engine.EventDisconnected, "client outdated", nil)
	}
}

// confirmLogin reopens the gate after a Disconnected that may have been
// delivered late, if a request on the current socket is answered: the
// server answers requests only after it accepted the login, so a socket
// whose handshake completed but whose login hangs (notes §4d) stays closed.
func (s *session) confirmLogin(c *conn, jid types.JID) {
	if jid.IsEmpty() {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	if _, err := c.cli.IsOnWhatsApp(ctx, []string{"+" + jid.User}); err != nil {
		return // a real loss: whatsmeow's reconnect (or ours) brings READY
	}
	if !c.cli.IsConnected() { // outside s.mu: it may wait for a handshake
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != c || s.cur.State != engine.SessionDisconnected {
		return
	}
	s.openGateLocked()
	c.retries = 0
	s.setLocked(engine.SessionReady, "", "", engine.EventConnected, "login confirmed after a late disconnect event", nil)
}

// lostLocked closes the live gate: the connection or the login is gone and
// whatsmeow (or our backoff) reconnects.
func (s *session) lostLocked(msg, reason string) {
	s.closeGateLocked()
	if s.cur.State == engine.SessionDisconnected {
		s.setLocked(engine.SessionDisconnected, "", msg, "", "", nil)
		return
	}
	s.setLocked(engine.SessionDisconnected, "", msg, engine.EventDisconnected, reason, nil)
}

// loggedOutLocked stops c, and queues: delete the device jid from the
// store (idempotent: whatsmeow may be deleting it too), forget the
// cliente's mapping, journal LOGGED_OUT, publish it, close done.
func (s *session) loggedOutLocked(c *conn, jid, reason string, done chan struct{}) {
	s.endedByServerLocked(c) // by the server, or by whatsmeow's Logout, which disconnected it
	s.cur.JID = ""
	s.setLocked(engine.SessionLoggedOut, "", reason, engine.EventLoggedOut, reason, func() {
		if jid != "" {
			if j, err := types.ParseJID(jid); err == nil {
				if err := s.m.store.DeleteDevice(context.Background(), &store.Device{ID: &j}); err != nil {
					s.m.log.Error("delete logged-out device", "cliente", s.id, "jid", jid, "err", err)
				}
			}
		}
	})
	if done != nil {
		s.queueLocked(func() { close(done) })
	}
}
