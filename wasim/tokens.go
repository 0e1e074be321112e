package wasim

import (
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Privacy token events.
const (
	// EventClientToken: a client issued its trusted-contact token to a contact (the "privacy"
	// IQ whatsmeow sends after its first message to a contact in each 7-day bucket) and got
	// the answer. JID: the client's device, Detail: the contact's JID as sent.
	EventClientToken EventKind = "client_token"
)

// iqPrivacy handles <iq xmlns="privacy" type="set"><tokens><token jid t type="trusted_contact"/>…:
// the client gives its trusted-contact token to each contact named.
func iqPrivacy(s *Server, c *conn, iq *waBinary.Node) ([]waBinary.Node, *iqError) {
	tokens, ok := iq.GetOptionalChildByTag("tokens")
	if !ok || c.jid.IsEmpty() {
		return nil, &iqError{400, "bad-request"}
	}
	var named []types.JID
	for _, t := range tokens.GetChildren() {
		if jid, ok := t.Attrs["jid"].(types.JID); ok && t.Tag == "token" {
			named = append(named, jid)
		}
	}
	c.afterReply = func() {
		for _, jid := range named {
			// The contact holds this client's token now: its sends here are warm.
			s.mu.Lock()
			acc := s.recipientLocked(jid.ToNonAD())
			s.mu.Unlock()
			if acc != nil {
				s.openChat(acc.Phone, c.jid.User, true)
			}
			s.events.add(Event{Kind: EventClientToken, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: jid.String()})
		}
	}
	return nil, nil
}
