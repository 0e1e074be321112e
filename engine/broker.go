package engine

import (
	"sync"
	"time"
)

// Event is something an operator's page may want to see live.
type Event struct {
	Type     string        `json:"type"` // session | envio | campaign | reply
	At       time.Time     `json:"at"`
	Session  *SessionEvent `json:"session,omitempty"`
	Cliente  string        `json:"cliente,omitempty"`
	Campaign string        `json:"campana,omitempty"`
	Envio    uint64        `json:"envio,omitempty"`
	From     State         `json:"from,omitempty"`
	To       State         `json:"to,omitempty"`
	Status   string        `json:"estado,omitempty"` // campaign status
	Reason   string        `json:"reason,omitempty"`
}

// Broker fans events out to subscribers. A subscriber that does not keep
// up loses events (counted), it never blocks the engine. Its zero value is
// ready for use.
type Broker struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	dropped uint64
}

// Subscribe returns a channel of events and a function that ends the
// subscription (and closes the channel).
func (b *Broker) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[chan Event]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			b.mu.Unlock()
			close(ch)
		})
	}
}

// Publish sends ev to every subscriber that has room.
func (b *Broker) Publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- ev:
		default:
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
