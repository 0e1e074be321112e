package wasim

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/libsignal/keys/prekey"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// Message events.
const (
	EventMessage EventKind = "message" // a <message> arrived (JID: sender device, Detail: id)
	EventAck     EventKind = "ack"     // an ack was sent (Detail: id, or "id error:N")
	EventReceipt EventKind = "receipt" // a receipt reached a sender and was acked (Detail: "id delivered|read")
	EventReply   EventKind = "reply"   // a simulated user sent a message (Phone: from, JID: to device, Detail: id)
	// EventClientReceipt: a client sent a receipt the simulator was not waiting for (JID: the
	// client's device, Detail: "id type"). Client receipts are recorded, not forwarded.
	EventClientReceipt EventKind = "client_receipt"
)

// handleMessage receives a <message> from a logged-in client: every <enc> addressed to a
// simulated phone is decrypted as that device, the ledger records the arrival, and the
// message is acked (or not, as the faults say; or refused with 463, as the reach-out rules
// say). An answer to a retry receipt goes to handleResend. Runs on the connection's reader
// goroutine.
func (s *Server) handleMessage(c *conn, n *waBinary.Node) {
	if c.jid.IsEmpty() {
		return
	}
	id, _ := n.Attrs["id"].(string)
	to, _ := n.Attrs["to"].(types.JID)
	if id == "" || to.IsEmpty() {
		return
	}
	if isResend(n) {
		s.handleResend(c, n, id, to)
		return
	}
	peerPN, _ := n.Attrs["peer_recipient_pn"].(types.JID)
	tokenKind, token := messageToken(n)
	now := time.Now()
	s.mu.Lock()
	e := s.ledger.getLocked(c.jid, id)
	if e == nil {
		e = &LedgerEntry{ID: id, From: c.jid.String(), To: to.ToNonAD().String(), FirstAt: now}
		s.ledger.addLocked(c.jid, id, e)
	}
	e.Arrivals++
	e.LastAt = now
	arrival := e.Arrivals
	recipient := s.recipientLocked(to)
	if recipient != nil && e.PN == "" {
		e.PN = recipient.JID().String()
	}
	e.Addressing, e.PeerRecipientPN = addressing(to, peerPN, recipient), jidString(peerPN)
	plan := s.planLocked(c.jid.User, id, arrival)
	if !plan.drop && plan.code == 0 && s.faultsLocked(c.jid.User).Addressing479 &&
		(e.Addressing == "pn" || e.Addressing == "lid_pn_mismatch") {
		plan.code, plan.noAck = 479, false
	}
	if recipient == nil && !plan.drop && !plan.noAck && plan.code == 0 {
		plan.code = 404 // not on WhatsApp; a slow ack is still this error, never a success
	}
	var reach reachDecision
	if !plan.drop && plan.code == 0 && recipient != nil && recipient.Phone != c.jid.User {
		reach = s.reachLocked(c.jid.User, recipient, e, tokenKind, token, now)
		if reach.refusal != "" {
			plan.code, plan.noAck = 463, false
		}
	}
	e.Faults = append(e.Faults, plan.String())
	needDecrypt := !e.Decrypted
	s.mu.Unlock()
	s.events.add(Event{Kind: EventMessage, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: id})
	if reach.ended != nil {
		s.announceTimelock(c.jid.User, *reach.ended, "expired")
	}
	if reach.started != nil {
		// Before the 463: the client hears of the lock no later than of the refusal.
		s.lockTimer(c.jid.User, *reach.started, reach.stop)
		s.announceTimelock(c.jid.User, *reach.started, "")
	}

	// Decrypt (the first time, or until it works): a resend of an id already read is counted,
	// not shown to the recipient again. A refused message is decrypted too, so the phone's
	// session keeps step with the client's, but it is not delivered.
	var text, decErr string
	decrypted := false
	if needDecrypt {
		text, decrypted, decErr = s.openMessage(c, n, to, recipient, reach.refusal == "")
		if reach.refusal != "" {
			text, decrypted, decErr = "", false, "not delivered: 463 "+reach.refusal
		}
	}

	s.mu.Lock()
	if needDecrypt {
		e.Decrypted, e.Text, e.Error = decrypted, text, decErr
	}
	s.mu.Unlock()

	if plan.drop {
		c.close(false)
		return
	}
	if plan.noAck {
		return
	}
	ack := func() {
		s.mu.Lock()
		if e.Timestamp == 0 && plan.code == 0 {
			e.Timestamp = time.Now().Unix()
		}
		ts := e.Timestamp
		if ts == 0 {
			ts = time.Now().Unix()
		}
		if plan.code != 0 {
			e.AckError = plan.code
		} else {
			e.Acks++
		}
		s.mu.Unlock()
		attrs := waBinary.Attrs{"class": "message", "id": id, "from": to, "t": strconv.FormatInt(ts, 10)}
		detail := id
		if plan.code != 0 {
			attrs["error"] = plan.code
			detail += " error:" + strconv.Itoa(plan.code)
		}
		if err := c.send(waBinary.Node{Tag: "ack", Attrs: attrs}); err != nil {
			return
		}
		s.events.add(Event{Kind: EventAck, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: detail})
		if reach.refusal != "" {
			s.events.add(Event{Kind: EventAck463, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: id + " " + reach.refusal})
		}
		if needDecrypt && decrypted && plan.code == 0 && recipient != nil {
			s.react(c.jid, recipient.Phone, id, text)
		}
	}
	if plan.delay > 0 {
		s.goTracked(func() {
			t := time.NewTimer(plan.delay)
			defer t.Stop()
			select {
			case <-t.C:
				ack()
			case <-c.ctx.Done():
			}
		})
		return
	}
	ack()
}

// addressing names how a DM named its recipient (see LedgerEntry.Addressing).
func addressing(to, peerPN types.JID, recipient *Account) string {
	switch {
	case to.Server != types.HiddenUserServer:
		return "pn"
	case peerPN.IsEmpty():
		return "lid_no_pn"
	case recipient != nil && peerPN.User != recipient.Phone:
		return "lid_pn_mismatch"
	}
	return "lid"
}

// recipientLocked returns the registered account a message is addressed to (a phone-number
// or LID user JID), or nil. s.mu must be held.
func (s *Server) recipientLocked(to types.JID) *Account {
	if to.Server != types.HiddenUserServer {
		return s.lookupLocked(to.User)
	}
	if a := s.reg.byLIDLocked(to.User); a != nil && !a.Unregistered {
		return a
	}
	return nil
}

// openMessage decrypts the <enc> elements of n addressed to simulated primary phones. It
// returns the text the recipient read; decrypted is false (with a reason) when the
// recipient's copy could not be read or there was none.
//
// With deliver false (a refused message) the copies are decrypted but nothing is forwarded.
func (s *Server) openMessage(c *conn, n *waBinary.Node, to types.JID, recipient *Account, deliver bool) (text string, decrypted bool, reason string) {
	type target struct {
		jid types.JID
		enc waBinary.Node
	}
	var targets []target
	if parts, ok := n.GetOptionalChildByTag("participants"); ok {
		for _, p := range parts.GetChildren() {
			jid, ok := p.Attrs["jid"].(types.JID)
			if p.Tag != "to" || !ok {
				continue
			}
			for _, enc := range p.GetChildren() {
				if enc.Tag == "enc" {
					targets = append(targets, target{jid, enc})
				}
			}
		}
	}
	for _, enc := range n.GetChildren() {
		if enc.Tag == "enc" {
			targets = append(targets, target{to, enc})
		}
	}
	if recipient == nil {
		return "", false, "recipient not on WhatsApp"
	}
	reason = "no copy for the recipient's phone"
	for _, t := range targets { // every copy: forwards and the own phone's too, not just the first
		s.mu.Lock()
		acc, dev := s.reg.deviceLocked(t.jid)
		var ph *phoneDevice
		if acc != nil && t.jid.Device == 0 && !acc.Unregistered {
			ph = acc.phoneLocked()
		}
		if acc != nil {
			// Copies come addressed to LIDs now; devices are known by their phone JID.
			t.jid = types.JID{User: acc.Phone, Server: types.DefaultUserServer, Device: t.jid.Device}
		}
		s.mu.Unlock()
		typ := t.enc.AttrGetter().OptionalString("type")
		ct, _ := t.enc.Content.([]byte)
		switch {
		case ph != nil:
			plain, err := ph.decrypt(context.Background(), c.jid, typ, ct)
			if acc != recipient { // the sender's own phone: a DeviceSentMessage copy
				if err != nil {
					s.log.Warn("wasim: own-device copy undecryptable", "from", c.jid, "to", t.jid, "err", err)
				}
				continue
			}
			if err != nil {
				reason = err.Error()
				continue
			}
			var msg waE2E.Message
			if err := proto.Unmarshal(plain, &msg); err != nil {
				reason = "bad protobuf: " + err.Error()
				continue
			}
			text, decrypted, reason = messageText(&msg), true, ""
		case deliver && dev != nil && !(t.jid.User == c.jid.User && t.jid.Device == c.jid.Device):
			// Another linked device (a real client): forward the ciphertext as is.
			s.forward(c, n, t.jid, t.enc)
		}
	}
	return text, decrypted, reason
}

func messageText(m *waE2E.Message) string {
	if m.GetDeviceSentMessage() != nil {
		m = m.GetDeviceSentMessage().GetMessage()
	}
	if t := m.GetConversation(); t != "" {
		return t
	}
	return m.GetExtendedTextMessage().GetText()
}

// forward delivers one <enc> of a client's message to another real client's device.
func (s *Server) forward(from *conn, n *waBinary.Node, to types.JID, enc waBinary.Node) {
	s.mu.Lock()
	acc := s.reg.Accounts[from.jid.User]
	s.mu.Unlock()
	attrs := waBinary.Attrs{
		"from": from.jid, "id": n.Attrs["id"], "t": strconv.FormatInt(time.Now().Unix(), 10),
		"type": n.AttrGetter().OptionalString("type"),
	}
	if acc != nil {
		attrs["sender_lid"] = types.JID{User: acc.LID, Server: types.HiddenUserServer, Device: from.jid.Device}
	}
	if to.User == from.jid.User { // the sender's own other device: say which chat it was
		attrs["recipient"] = n.Attrs["to"]
	}
	s.deliver(to, waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{enc}})
}

// deliver sends a stanza to a linked device now, or queues it until the device logs in.
func (s *Server) deliver(to types.JID, node waBinary.Node) *conn {
	s.mu.Lock()
	c := s.live[to]
	if c == nil || !c.loggedIn.Load() {
		if s.offline == nil {
			s.offline = map[types.JID][]waBinary.Node{}
		}
		s.offline[to] = append(s.offline[to], node)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	if err := c.send(node); err != nil {
		return nil
	}
	return c
}

// flushOffline sends what was queued for a device while it was away (after <success>).
func (s *Server) flushOffline(c *conn) {
	s.mu.Lock()
	queued := s.offline[c.jid]
	delete(s.offline, c.jid)
	s.mu.Unlock()
	for _, n := range queued {
		if err := c.send(n); err != nil {
			return
		}
	}
}

// react runs a recipient's Behavior after it read message id from sender: receipts after their
// delays, then a reply if the behaviour has one.
func (s *Server) react(sender types.JID, recipientPhone, id, text string) {
	s.mu.Lock()
	b := s.behaviorLocked(recipientPhone)
	if s.received == nil {
		s.received = map[string]int{}
	}
	key := recipientPhone + "|" + sender.User
	s.received[key]++
	nth := s.received[key]
	s.mu.Unlock()
	reply := b.reply(nth, text)
	if !b.Deliver && !b.Read && reply == "" {
		return
	}
	run := func() {
		if b.Deliver || b.Read {
			if !s.sleep(b.DeliverAfter) {
				return
			}
			s.sendReceipt(sender, recipientPhone, id, "")
		}
		if b.Read {
			if !s.sleep(b.ReadAfter) {
				return
			}
			s.sendReceipt(sender, recipientPhone, id, "read")
		}
		if reply != "" {
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			defer cancel()
			if _, err := s.SendText(ctx, recipientPhone, sender.ToNonAD(), reply); err != nil {
				s.log.Warn("wasim: reply", "from", recipientPhone, "to", sender, "err", err)
			}
		}
	}
	if b.DeliverAfter == 0 && b.ReadAfter == 0 && reply == "" {
		run() // immediate receipts keep their order with the ack
		return
	}
	s.goTracked(run)
}

// sleep waits d (false if the server closes first).
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// sendReceipt sends a delivery ("") or read receipt for message id from recipientPhone to
// every connected device of the sender's account.
func (s *Server) sendReceipt(sender types.JID, recipientPhone, id, typ string) {
	from := types.NewJID(recipientPhone, types.DefaultUserServer)
	attrs := waBinary.Attrs{"from": from, "id": id, "t": strconv.FormatInt(time.Now().Unix(), 10)}
	if typ != "" {
		attrs["type"] = typ
	}
	now := time.Now()
	s.mu.Lock()
	if e := s.ledger.getLocked(sender, id); e != nil {
		if typ == "read" {
			e.ReadAt = &now
		} else {
			e.DeliveredAt = &now
		}
	}
	var conns []*conn
	for jid, c := range s.live {
		if jid.User == sender.User {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	d := "delivered"
	if typ != "" {
		d = typ
	}
	for _, c := range conns {
		// The event waits for the client's ack of the receipt: once it is logged, the client
		// has nothing left to send about it (so a test may disconnect it).
		ch, cancel, err := c.sendAwait(receiptAckKey(id, typ), waBinary.Node{Tag: "receipt", Attrs: attrs})
		if err != nil {
			continue
		}
		s.goTracked(func() {
			defer cancel()
			t := time.NewTimer(barrierTimeout)
			defer t.Stop()
			select {
			case <-ch:
				s.events.add(Event{Kind: EventReceipt, Conn: c.id, JID: c.jid.String(), Phone: recipientPhone, Detail: id + " " + d})
			case <-t.C:
			case <-c.ctx.Done():
			}
		})
	}
}

// ErrNoDevices is returned by SendText when the target account has no linked device.
var ErrNoDevices = errors.New("wasim: target has no linked devices")

// SendText makes the simulated user fromPhone send a text message to the account of to (a
// user JID), encrypted for each of its linked devices (a pkmsg built from the device's
// uploaded prekeys the first time). The target then has a chat with fromPhone (SetChat) and,
// before the message, its devices get fromPhone's tctoken (a privacy_token notification). Connected devices get it now and SendText waits for their
// receipt; others get it when they next log in. It returns the message id.
func (s *Server) SendText(ctx context.Context, fromPhone string, to types.JID, text string) (string, error) {
	fromPhone = digits(fromPhone)
	plain, err := proto.Marshal(&waE2E.Message{Conversation: proto.String(text)})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	from := s.lookupLocked(fromPhone)
	target := s.reg.Accounts[to.User]
	if to.Server == types.HiddenUserServer {
		target = s.reg.byLIDLocked(to.User)
	}
	if from == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("wasim: %s is not on WhatsApp", fromPhone)
	}
	if target == nil || len(target.Devices) == 0 {
		s.mu.Unlock()
		return "", ErrNoDevices
	}
	targetPhone := target.Phone
	s.mu.Unlock()
	// The user writes to the target: the target now has a chat with it (its sends there are
	// warm) and holds its tctoken, which reaches the target's devices before the message.
	s.openChat(targetPhone, fromPhone, false)
	s.mu.Lock()
	ph := from.phoneLocked()
	name := from.Name
	if name == "" {
		name = "+" + from.Phone
	}
	fromJID, fromLID := from.JID(), from.LIDJID()
	var devs []types.JID
	for _, id := range target.deviceIDs() {
		if id != 0 {
			devs = append(devs, types.JID{User: target.Phone, Server: types.DefaultUserServer, Device: id})
		}
	}
	s.mu.Unlock()

	id := "3A" + strings.ToUpper(randomHex(9))
	var waits []chan error
	for _, dev := range devs {
		var bundle *prekey.Bundle // lock order: Server.mu is never taken under phoneDevice.mu
		if !ph.hasSession(dev) {
			s.mu.Lock()
			if _, d := s.reg.deviceLocked(dev); d != nil && d.RegistrationID != 0 {
				bundle = deviceBundleOf(dev, d)
				s.saveLocked()
			}
			s.mu.Unlock()
		}
		ct, typ, err := ph.encrypt(ctx, dev, plain, bundle)
		if err != nil {
			return "", fmt.Errorf("wasim: encrypt for %s: %w", dev, err)
		}
		node := waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
			"from": fromJID, "sender_lid": fromLID, "id": id, "type": "text", "notify": name,
			"t": strconv.FormatInt(time.Now().Unix(), 10),
		}, Content: []waBinary.Node{{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": typ}, Content: ct}}}
		s.mu.Lock()
		c := s.live[dev]
		s.mu.Unlock()
		if c == nil || !c.loggedIn.Load() {
			s.deliver(dev, node)
			continue
		}
		ch := make(chan error, 1)
		waits = append(waits, ch)
		s.goTracked(func() {
			resp, err := c.request(ctx, node)
			if err == nil && (resp.Tag != "receipt" || resp.AttrGetter().OptionalString("type") == "retry") {
				err = fmt.Errorf("wasim: %s could not decrypt the message (%s)", dev, resp.String())
			}
			ch <- err
		})
		s.events.add(Event{Kind: EventReply, Conn: c.id, JID: dev.String(), Phone: fromPhone, Detail: id})
	}
	var errs []error
	for _, ch := range waits {
		errs = append(errs, <-ch)
	}
	return id, errors.Join(errs...)
}

// AddUser makes phone a simulated WhatsApp user (an account with only its primary phone),
// with a push name, and returns its JID. Existing accounts are returned as they are.
func (s *Server) AddUser(phone, name string) types.JID {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.reg.accountLocked(digits(phone), true)
	if name != "" {
		a.Name = name
	}
	a.Unregistered = false
	s.saveLocked()
	return a.JID()
}

// SetRegistered marks phone as on WhatsApp or not. An unregistered number answers "out" to
// IsOnWhatsApp, has no devices, and messages to it are acked with error 404 (a wasim choice:
// the real server's answer is not known) and recorded as undeliverable.
func (s *Server) SetRegistered(phone string, registered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.reg.accountLocked(digits(phone), true)
	a.Unregistered = !registered
	s.saveLocked()
}

func randomHex(n int) string { return fmt.Sprintf("%x", randomBytes(n)) }
