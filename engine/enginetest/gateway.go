package enginetest

import (
	"context"
	"sync"
	"time"

	"leadmaster/engine"
)

// Sent is one message the fake gateway accepted.
type Sent struct {
	Cliente string
	engine.Outgoing
	At time.Time
}

// Gateway is an in-memory engine.Gateway. Its zero value is not ready:
// use NewGateway.
type Gateway struct {
	clock engine.Clock

	mu       sync.Mutex
	ready    map[string]bool
	notOnWA  map[string]bool
	chats    map[string]bool // phones whose privacy token the device holds
	acked    []Sent          // every ack, in order (resends of an id included)
	received map[string]int  // msg id -> times acked
	// Fail, if set, decides the fate of a send before it is acked: a
	// non-nil error is returned instead of the ack. It may block on ctx.
	Fail func(ctx context.Context, cliente string, m engine.Outgoing) error
	sent chan Sent
}

var _ engine.Gateway = (*Gateway)(nil)

// NewGateway returns a gateway whose sends are timestamped by clock.
func NewGateway(clock engine.Clock) *Gateway {
	return &Gateway{clock: clock, ready: map[string]bool{}, notOnWA: map[string]bool{}, chats: map[string]bool{}, received: map[string]int{}, sent: make(chan Sent, 1<<16)}
}

// SetReady sets the live gate of a cliente.
func (g *Gateway) SetReady(cliente string, ready bool) {
	g.mu.Lock()
	g.ready[cliente] = ready
	g.mu.Unlock()
}

// NotOnWhatsApp marks phones as having no account.
func (g *Gateway) NotOnWhatsApp(phones ...string) {
	g.mu.Lock()
	for _, p := range phones {
		g.notOnWA[p] = true
	}
	g.mu.Unlock()
}

// SetChat says whether the device holds phone's privacy token (HasChat).
func (g *Gateway) SetChat(phone string, chat bool) {
	g.mu.Lock()
	g.chats[phone] = chat
	g.mu.Unlock()
}

// HasChat implements engine.Gateway.
func (g *Gateway) HasChat(_ context.Context, _ string, phone string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.chats[phone], nil
}

// Ready implements engine.Gateway.
func (g *Gateway) Ready(cliente string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ready[cliente]
}

// Send implements engine.Gateway: it acks unless Fail says otherwise.
func (g *Gateway) Send(ctx context.Context, cliente string, m engine.Outgoing) (time.Time, error) {
	if !g.Ready(cliente) {
		return time.Time{}, engine.ErrSessionDown
	}
	g.mu.Lock()
	fail, notOnWA := g.Fail, g.notOnWA[m.To]
	g.mu.Unlock()
	if notOnWA {
		return time.Time{}, engine.ErrNotOnWhatsApp
	}
	if fail != nil {
		if err := fail(ctx, cliente, m); err != nil {
			return time.Time{}, err
		}
	}
	s := Sent{Cliente: cliente, Outgoing: m, At: g.clock.Now()}
	g.mu.Lock()
	g.acked = append(g.acked, s)
	g.received[m.MsgID]++
	g.mu.Unlock()
	g.sent <- s
	return s.At, nil
}

// Typing implements engine.Gateway.
func (g *Gateway) Typing(context.Context, string, string) error { return nil }

// OnWhatsApp implements engine.Gateway.
func (g *Gateway) OnWhatsApp(_ context.Context, _ string, phones []string) (map[string]bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]bool{}
	for _, p := range phones {
		out[p] = !g.notOnWA[p]
	}
	return out, nil
}

// Acked returns every ack so far.
func (g *Gateway) Acked() []Sent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Sent(nil), g.acked...)
}

// AckedIDs is msg id -> how many times it was acked.
func (g *Gateway) AckedIDs() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.received {
		out[k] = v
	}
	return out
}

// Sends delivers every ack as it happens.
func (g *Gateway) Sends() <-chan Sent { return g.sent }
