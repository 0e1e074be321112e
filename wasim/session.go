package wasim

import (
	"errors"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ErrNotConnected is returned by session controls aimed at a device with no live connection.
var ErrNotConnected = errors.New("wasim: device not connected")

// ErrUnknownDevice is returned for a device JID the registry does not hold.
var ErrUnknownDevice = errors.New("wasim: unknown device")

// barrierTimeout bounds how long a session control waits for the client to have handled a
// stream error before closing the socket.
const barrierTimeout = 5 * time.Second

// login answers a connection whose ClientPayload names a device (Username + Device): <success>
// if the registry holds that device with this Noise key, else <failure reason="401"/> (the
// client then deletes its store). A previous live connection of the same device is replaced.
func (s *Server) login(c *conn) {
	jid := types.JID{
		User:   strconv.FormatUint(c.payload.GetUsername(), 10),
		Server: types.DefaultUserServer,
		Device: uint16(c.payload.GetDevice()),
	}
	s.mu.Lock()
	acc, dev := s.reg.deviceLocked(jid)
	if dev == nil || dev.NoiseKey != c.noiseKey {
		c.jid = jid // for the events only: the connection is not registered as live
		s.mu.Unlock()
		_ = c.send(waBinary.Node{Tag: "failure", Attrs: waBinary.Attrs{"reason": 401, "location": "wasim"}})
		s.events.add(Event{Kind: EventLoginRefused, Conn: c.id, JID: jid.String(), Phone: jid.User, Detail: "401"})
		// Close once the client has handled the failure (deleted its store): see endSession.
		s.goTracked(func() {
			_ = c.barrier(barrierTimeout)
			c.close(true)
		})
		return
	}
	c.jid = jid
	lid := types.JID{User: acc.LID, Server: types.HiddenUserServer, Device: jid.Device}
	old := s.live[jid]
	s.live[jid] = c
	silent := s.faultsLocked(jid.User).SilentLogin
	s.mu.Unlock()
	if old != nil {
		s.goTracked(func() {
			s.endSession(old, waBinary.Node{Tag: "stream:error", Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "replaced"}}}}, "replaced")
		})
	}
	if silent {
		c.silent.Store(true)
		s.events.add(Event{Kind: EventLoginRefused, Conn: c.id, JID: jid.String(), Phone: jid.User, Detail: "silent"})
		return
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	c.loggedIn.Store(true)
	err := c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t": now, "lid": lid, "props": "1", "abprops": "1", "location": "wasim", "creation": now,
	}})
	if err != nil {
		return
	}
	s.events.add(Event{Kind: EventLoggedIn, Conn: c.id, JID: jid.String(), Phone: jid.User})
	s.flushOffline(c)
}

// endSession sends a stream error to c, waits until the client has handled it, then closes
// the socket (except for 515, after which the client closes the socket itself).
func (s *Server) endSession(c *conn, streamErr waBinary.Node, detail string) {
	if err := c.send(streamErr); err != nil {
		c.close(false)
		return
	}
	s.events.add(Event{Kind: EventStreamError, Conn: c.id, JID: jidString(c.jid), Phone: c.jid.User, Detail: detail})
	if detail == "515" {
		c.closeWhenIdle(barrierTimeout)
		return
	}
	_ = c.barrier(barrierTimeout)
	c.close(true)
}

// liveConn returns the login connection of a device.
func (s *Server) liveConn(jid types.JID) (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.live[jid]; c != nil {
		return c, nil
	}
	if _, dev := s.reg.deviceLocked(jid); dev == nil {
		return nil, ErrUnknownDevice
	}
	return nil, ErrNotConnected
}

// Logout removes a linked device from its account, as "log out of this device" on the phone:
// a connected client gets stream:error 401 with <conflict type="device_removed"/> (it emits
// events.LoggedOut and deletes its store); a later login gets <failure reason="401"/>.
// It returns after the client has handled the stream error and the socket is closing.
func (s *Server) Logout(jid types.JID) error {
	s.mu.Lock()
	acc, dev := s.reg.deviceLocked(jid)
	if dev == nil {
		s.mu.Unlock()
		return ErrUnknownDevice
	}
	jid = types.JID{User: acc.Phone, Server: types.DefaultUserServer, Device: dev.ID}
	delete(acc.Devices, dev.ID)
	s.saveLocked()
	c := s.live[jid]
	delete(s.live, jid)
	s.mu.Unlock()
	s.events.add(Event{Kind: EventLoggedOut, JID: jid.String(), Phone: jid.User})
	if c != nil {
		s.endSession(c, waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{"code": "401"},
			Content: []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": "device_removed"}}}}, "401 device_removed")
	}
	return nil
}

// StreamError sends a stream error to a connected device and closes its socket once the client
// has handled it. code is e.g. "515" (reconnect now; the client closes the socket itself and
// logs in again), "503" (the client logs a warning and auto-reconnects), or any other code;
// conflict, if set, adds <conflict type=…/>: "replaced" makes the client stop without
// reconnecting (events.StreamReplaced). Use Logout for device_removed.
func (s *Server) StreamError(jid types.JID, code, conflict string) error {
	c, err := s.liveConn(jid)
	if err != nil {
		return err
	}
	n := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{}}
	detail := code
	if code != "" {
		n.Attrs["code"] = code
	}
	if conflict != "" {
		n.Content = []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": conflict}}}
		if detail != "" {
			detail += " "
		}
		detail += conflict
	}
	s.endSession(c, n, detail)
	return nil
}

// Drop closes a device's connection abruptly (TCP close, no stream error), as a network
// failure would. The client emits events.Disconnected and reconnects on its own.
func (s *Server) Drop(jid types.JID) error {
	c, err := s.liveConn(jid)
	if err != nil {
		return err
	}
	c.close(false)
	return nil
}

// RefuseConnections makes the server answer every websocket upgrade with HTTP 503 for d
// (0 lifts a refusal). Existing connections are not touched; combine with Drop.
func (s *Server) RefuseConnections(d time.Duration) {
	s.mu.Lock()
	s.refuseUntil = time.Now().Add(d)
	s.mu.Unlock()
}

// removeCompanion handles whatsmeow's Client.Logout: <remove-companion-device jid/> from a
// logged-in device about itself. The device is unlinked; the client then disconnects.
func (s *Server) removeCompanion(c *conn, rm *waBinary.Node) ([]waBinary.Node, *iqError) {
	jid, _ := rm.Attrs["jid"].(types.JID)
	if c.jid.IsEmpty() || jid.User != c.jid.User || jid.Device != c.jid.Device {
		return nil, &iqError{403, "forbidden"}
	}
	s.mu.Lock()
	acc, dev := s.reg.deviceLocked(c.jid)
	if dev != nil {
		delete(acc.Devices, dev.ID)
		s.saveLocked()
	}
	if s.live[c.jid] == c {
		delete(s.live, c.jid)
	}
	s.mu.Unlock()
	if dev == nil {
		return nil, &iqError{404, "item-not-found"}
	}
	s.events.add(Event{Kind: EventLoggedOut, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: "client"})
	return nil, nil
}
