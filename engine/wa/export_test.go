package wa

import "go.mau.fi/whatsmeow"

// Client exposes the cliente's current whatsmeow client to tests (to show
// what whatsmeow's own IsLoggedIn says while the live gate says no).
func (m *Manager) Client(cliente string) *whatsmeow.Client {
	s := m.lookup(cliente)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return nil
	}
	return s.c.cli
}

// Deliver hands evt to the cliente's event handler as if whatsmeow had
// dispatched it now (a late event, out of order).
func (m *Manager) Deliver(cliente string, evt any) {
	s := m.lookup(cliente)
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	s.handle(c, evt)
}
