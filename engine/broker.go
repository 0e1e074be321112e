package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event is something an operator's page may want to see live.
type Event struct {
	Type     string        `json:"type"` // session | envio | campaign | reply | reach | sending
	At       time.Time     `json:"at"`
	Session  *SessionEvent `json:"session,omitempty"`
	Cliente  string        `json:"cliente,omitempty"`
	Campaign string        `json:"campana,omitempty"`
	Envio    uint64        `json:"envio,omitempty"`
	From     State         `json:"from,omitempty"`
	To       State         `json:"to,omitempty"`
	Status   string        `json:"estado,omitempty"` // campaign status
	Reason   string        `json:"reason,omitempty"`
	Reach    *ReachLock    `json:"reach,omitempty"`   // a reach lock that opened or ended
	Sending  *SendState    `json:"sending,omitempty"` // a cliente's send state changed
}

// Broker fans events out to subscribers. A subscriber that does not keep
// up loses events (counted, in all and per subscription), it never blocks
// the engine. Its zero value is ready for use.
type Broker struct {
	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	dropped uint64
}

// Subscription is one subscriber's stream of events.
type Subscription struct {
	C    <-chan Event
	ch   chan Event
	lost atomic.Uint64
	once sync.Once
	b    *Broker
}

// Lost is how many events this subscription missed because its buffer was
// full: a subscriber that saw it grow should reload what it shows.
func (s *Subscription) Lost() uint64 { return s.lost.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
		close(s.ch)
	})
}

// Open starts a subscription with room for buffer events.
func (b *Broker) Open(buffer int) *Subscription {
	ch := make(chan Event, buffer)
	s := &Subscription{C: ch, ch: ch, b: b}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[*Subscription]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Subscribe returns a channel of events and a function that ends the
// subscription (and closes the channel).
func (b *Broker) Subscribe(buffer int) (<-chan Event, func()) {
	s := b.Open(buffer)
	return s.C, s.Close
}

// Publish sends ev to every subscriber that has room.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			s.lost.Add(1)
			b.dropped++
		}
	}
}

// Dropped is how many events slow subscribers lost.
func (b *Broker) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
