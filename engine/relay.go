package engine

import "sync"

// InboundRelay is an Inbound that forwards to another one set later: the
// session manager needs its Inbound (the engine) at construction, and the
// engine needs the session manager. Events before Set are dropped. Its
// zero value is ready for use.
type InboundRelay struct {
	mu sync.RWMutex
	to Inbound
}

// Set is where events go from now on.
func (r *InboundRelay) Set(to Inbound) {
	r.mu.Lock()
	r.to = to
	r.mu.Unlock()
}

func (r *InboundRelay) target() Inbound {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.to
}

// SessionChanged forwards.
func (r *InboundRelay) SessionChanged(ev SessionEvent) {
	if t := r.target(); t != nil {
		t.SessionChanged(ev)
	}
}

// Receipt forwards.
func (r *InboundRelay) Receipt(rc Receipt) {
	if t := r.target(); t != nil {
		t.Receipt(rc)
	}
}

// Reply forwards.
func (r *InboundRelay) Reply(rp Reply) {
	if t := r.target(); t != nil {
		t.Reply(rp)
	}
}

// ReachChanged forwards.
func (r *InboundRelay) ReachChanged(n ReachNotice) {
	if t := r.target(); t != nil {
		t.ReachChanged(n)
	}
}
