package wasim

import (
	"context"
	"sync"
	"time"
)

// EventKind names something that happened on the simulator.
type EventKind string

// Event kinds. Tests wait on them with Server.WaitEvent instead of polling state.
const (
	EventConnOpened     EventKind = "conn_opened"     // a websocket completed the Noise handshake
	EventConnClosed     EventKind = "conn_closed"     // a connection ended (either side)
	EventConnRefused    EventKind = "conn_refused"    // a websocket upgrade was refused (RefuseConnections)
	EventQRRefs         EventKind = "qr_refs"         // pair-device refs sent to a fresh client: it shows a QR now
	EventPairCode       EventKind = "pair_code"       // a client asked to pair by phone code (Phone set)
	EventPaired         EventKind = "paired"          // a device was linked to an account (JID, Detail "qr" or "code")
	EventLoggedIn       EventKind = "logged_in"       // <success> sent to a device
	EventLoginRefused   EventKind = "login_refused"   // <failure> sent (unknown or removed device)
	EventPreKeys        EventKind = "prekeys"         // a device uploaded one-time prekeys (Detail: count)
	EventStreamError    EventKind = "stream_error"    // a stream error was sent (Detail: code/conflict)
	EventLoggedOut      EventKind = "logged_out"      // a device was removed from its account
	EventIQUnhandled    EventKind = "iq_unhandled"    // an IQ got the default empty result (Detail: xmlns/child)
	EventSnapshotFailed EventKind = "snapshot_failed" // the snapshot file could not be written (Detail: error)
)

// Event is one entry of the simulator's event log.
type Event struct {
	Seq    uint64    `json:"seq"` // 1, 2, 3... in order of occurrence
	Time   time.Time `json:"time"`
	Kind   EventKind `json:"kind"`
	Conn   uint64    `json:"conn,omitempty"`   // connection number, if any
	JID    string    `json:"jid,omitempty"`    // device JID, if known
	Phone  string    `json:"phone,omitempty"`  // account phone number, if known
	Detail string    `json:"detail,omitempty"` // kind-specific
}

// maxEvents bounds the in-memory log; older entries are dropped (Seq keeps counting).
const maxEvents = 10000

// eventLog is an append-only, bounded log that waiters block on.
type eventLog struct {
	mu      sync.Mutex
	events  []Event
	seq     uint64
	changed chan struct{} // closed and replaced on every append
	hook    func(Event)
}

func (l *eventLog) add(e Event) Event {
	l.mu.Lock()
	l.seq++
	e.Seq = l.seq
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if len(l.events) >= maxEvents {
		l.events = append(l.events[:0], l.events[len(l.events)-maxEvents/2:]...)
	}
	l.events = append(l.events, e)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	hook := l.hook
	l.mu.Unlock()
	if hook != nil {
		hook(e)
	}
	return e
}

// since returns the events with Seq > after, and a channel closed on the next append.
func (l *eventLog) since(after uint64) ([]Event, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for i := len(l.events) - 1; i >= 0 && l.events[i].Seq > after; i-- {
		out = append(out, l.events[i])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return out, l.changed
}

func (l *eventLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// Events returns the logged events with Seq > after (0 for all that are kept).
func (s *Server) Events(after uint64) []Event {
	evs, _ := s.events.since(after)
	return evs
}

// LastEvent returns the Seq of the newest event: pass it to WaitEvent to wait only for what
// happens from now on.
func (s *Server) LastEvent() uint64 { return s.events.last() }

// WaitEvent blocks until an event with Seq > after satisfies match (nil matches any), and returns
// it. It returns ctx's error when ctx ends first. Because it looks at the log first, an event
// that happened before the call is not missed.
func (s *Server) WaitEvent(ctx context.Context, after uint64, match func(Event) bool) (Event, error) {
	for {
		evs, changed := s.events.since(after)
		for _, e := range evs {
			if match == nil || match(e) {
				return e, nil
			}
			after = e.Seq
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Is returns a WaitEvent matcher for events of kind k, and, when jid is not empty, of that
// device JID or account phone.
func Is(k EventKind, jid string) func(Event) bool {
	return func(e Event) bool {
		return e.Kind == k && (jid == "" || e.JID == jid || e.Phone == jid)
	}
}
