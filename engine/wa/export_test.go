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
