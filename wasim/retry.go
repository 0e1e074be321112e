package wasim

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Retry receipt events.
const (
	// EventRetryRequested: a recipient's phone sent a retry receipt to a sender's device
	// (Phone: recipient, JID: sender device, Detail: "<id> count=N[ keys][ queued]"). Logged once
	// the client acked the receipt, or when it was queued for a device that is offline.
	EventRetryRequested EventKind = "retry_requested"
	// EventRetryResent: a client answered a retry receipt with a resend (JID: sender device,
	// Detail: "<id> decrypted" or "<id> undecryptable").
	EventRetryResent EventKind = "retry_resent"
)

// ErrUnknownMessage is returned by RequestRetry for a message id the ledger does not hold.
var ErrUnknownMessage = errors.New("wasim: no such message from that sender")

// RequestRetry makes the phone of recipientPhone ask the sender's device to resend message
// id, as a phone that could not decrypt it does: a <receipt type="retry"> with <retry count id
// t v="1"/> and the phone's <registration>, plus a <keys> prekey bundle when the phone has no
// Signal session with that device (see ForgetSessions) or for the second request and later.
// whatsmeow answers from its recent-message cache, or after a restart from its store when
// Client.UseRetryMessageStore is set, re-encrypting the message (with the bundle, or fetching
// prekeys when it has no session); the resend is decrypted and recorded on the message's
// ledger entry (RetryRequests, Resends, ResendDecrypted, ResendText; EventRetryResent).
//
// A connected device gets the receipt now and RequestRetry returns once the client acked it
// (the resend, if any, comes after: wait for EventRetryResent); an offline one gets it at its
// next login. sender is a device JID (phone-number or LID form).
func (s *Server) RequestRetry(ctx context.Context, recipientPhone string, sender types.JID, id string) error {
	s.mu.Lock()
	acc := s.reg.Accounts[digits(recipientPhone)]
	sacc, _ := s.reg.deviceLocked(sender)
	if acc == nil || acc.Unregistered || sacc == nil {
		s.mu.Unlock()
		return ErrUnknownDevice
	}
	dev := types.JID{User: sacc.Phone, Server: types.DefaultUserServer, Device: sender.Device}
	e := s.ledger.getLocked(dev, id)
	if e == nil || (e.PN != "" && e.PN != acc.JID().String()) {
		s.mu.Unlock()
		return ErrUnknownMessage
	}
	e.RetryRequests++
	count := e.RetryRequests
	from := acc.LIDJID() // the chat as the client addressed it
	if to, err := types.ParseJID(e.To); err == nil && to.Server == types.DefaultUserServer {
		from = acc.JID()
	}
	t := e.Timestamp
	if t == 0 {
		t = e.FirstAt.Unix()
	}
	ph := acc.phoneLocked()
	c := s.live[dev]
	s.mu.Unlock()

	reg := make([]byte, 4)
	binary.BigEndian.PutUint32(reg, ph.regID)
	content := []waBinary.Node{
		{Tag: "retry", Attrs: waBinary.Attrs{"count": count, "id": id, "t": strconv.FormatInt(t, 10), "v": 1}},
		{Tag: "registration", Content: reg},
	}
	detail := id + " count=" + strconv.Itoa(count)
	if !ph.hasSession(dev) || count > 1 {
		_, ident, pre, signed := ph.bundle(true)
		content = append(content, waBinary.Node{Tag: "keys", Content: []waBinary.Node{
			{Tag: "type", Content: []byte{5}},
			{Tag: "identity", Content: ident[:]},
			{Tag: "key", Content: []waBinary.Node{{Tag: "id", Content: uint32ToBE3(pre.ID)}, {Tag: "value", Content: pre.Pub[:]}}},
			{Tag: "skey", Content: []waBinary.Node{
				{Tag: "id", Content: uint32ToBE3(signed.ID)}, {Tag: "value", Content: signed.Pub[:]}, {Tag: "signature", Content: signed.Signature[:]},
			}},
		}})
		detail += " keys"
	}
	node := waBinary.Node{Tag: "receipt", Attrs: waBinary.Attrs{
		"from": from, "id": id, "type": "retry", "t": strconv.FormatInt(time.Now().Unix(), 10),
	}, Content: content}
	if c == nil || !c.loggedIn.Load() {
		s.deliver(dev, node)
		s.events.add(Event{Kind: EventRetryRequested, JID: dev.String(), Phone: acc.Phone, Detail: detail + " queued"})
		return nil
	}
	ch, cancel, err := c.sendAwait(receiptAckKey(id, "retry"), node)
	if err != nil {
		return err
	}
	defer cancel()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return errConnClosed
	}
	s.events.add(Event{Kind: EventRetryRequested, Conn: c.id, JID: dev.String(), Phone: acc.Phone, Detail: detail})
	return nil
}

// isResend reports whether a <message> answers a retry receipt: whatsmeow sends those with a
// single <enc count="N"> and no <participants>.
func isResend(n *waBinary.Node) bool {
	for _, ch := range n.GetChildren() {
		if ch.Tag == "enc" && ch.AttrGetter().OptionalInt("count") > 0 {
			return true
		}
	}
	return false
}

// handleResend decrypts a client's answer to a retry receipt, records it on the message's
// ledger entry and acks it. The reach-out rules do not apply: it is the same message.
func (s *Server) handleResend(c *conn, n *waBinary.Node, id string, to types.JID) {
	s.mu.Lock()
	e := s.ledger.getLocked(c.jid, id)
	recipient := s.recipientLocked(to)
	s.mu.Unlock()
	text, ok, reason := s.openMessage(c, n, to, recipient, true)
	detail := id + " decrypted"
	if !ok {
		detail = id + " undecryptable"
	}
	s.mu.Lock()
	if e != nil {
		e.Resends++
		e.ResendDecrypted, e.ResendText, e.ResendError = ok, text, reason
		if ok && !e.Decrypted {
			e.Decrypted, e.Text, e.Error = true, text, ""
		}
	}
	s.mu.Unlock()
	if e == nil {
		s.log.Warn("wasim: resend of a message not in the ledger", "from", c.jid, "id", id)
	}
	_ = c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{
		"class": "message", "id": id, "from": to, "t": strconv.FormatInt(time.Now().Unix(), 10),
	}})
	s.events.add(Event{Kind: EventRetryResent, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: detail})
}

// ForgetSessions makes the phone of phone lose its Signal sessions, as a reinstalled phone
// does (and as every phone does when a standalone simulator restarts): it can no longer read
// messages on the old sessions, and its next RequestRetry carries a prekey bundle.
func (s *Server) ForgetSessions(phone string) error {
	s.mu.Lock()
	acc := s.reg.Accounts[digits(phone)]
	var ph *phoneDevice
	if acc != nil {
		ph = acc.phoneLocked()
	}
	s.mu.Unlock()
	if ph == nil {
		return ErrUnknownDevice
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.DeleteAllSessions(context.Background())
}
