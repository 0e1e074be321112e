package wasim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Reach-out events.
const (
	// EventTimelockStarted: a sending account's reach-out timelock began (Phone: the account,
	// Detail: "ends <RFC3339>" or "ends never").
	EventTimelockStarted EventKind = "timelock_started"
	// EventTimelockEnded: the timelock ended (Phone, Detail: "expired" or "ended").
	EventTimelockEnded EventKind = "timelock_ended"
	// EventAck463: a message was refused with ack error 463 and not delivered (JID: sender
	// device, Phone: sender account, Detail: "<id> timelock" or "<id> no_token").
	EventAck463 EventKind = "ack_463"
	// EventTokenIssued: the server gave a holder account the trusted-contact token (tctoken) of
	// an issuer (Phone: holder, Detail: issuer phone). Connected devices of the holder get a
	// privacy_token notification, offline ones at their next login.
	EventTokenIssued EventKind = "token_issued"
	// EventNotified: a client acked a notification the server sent it (JID: device, Detail:
	// "<type> <id>", type privacy_token or mex). After it, whatsmeow has handled the
	// notification and the ones before it.
	EventNotified EventKind = "notified"
)

// Reach is a sending account's reach-out plan: what the server enforces on its messages to
// recipients that have no chat with it ("cold" recipients, see SetChat). The zero value
// enforces nothing.
type Reach struct {
	// TimelockAfterColdSends, when > 0, locks the account once it has made that many cold
	// sends: the first N cold sends are delivered, the N+1-th starts the timelock and is itself
	// refused. A cold send is a message id delivered to a cold recipient; each id counts once.
	TimelockAfterColdSends int `json:"timelock_after_cold_sends,omitempty"`
	// TimelockFor is how long a timelock lasts; 0: until EndTimelock.
	TimelockFor time.Duration `json:"timelock_for,omitempty"`
	// EnforcementType is sent as is in the notification (e.g. "RESTRICT_ALL_COMPANIONS").
	EnforcementType string `json:"enforcement_type,omitempty"`
	// RequireToken refuses (ack 463, not delivered) a send to a cold recipient that carries no
	// valid privacy token: neither the recipient's tctoken as the server issued it to the
	// sender, nor a cstoken computed with the sender's NCT salt.
	RequireToken bool `json:"require_token,omitempty"`
}

// Timelock is the reach-out state of one sending account.
type Timelock struct {
	Active bool `json:"active"`
	// Since and Ends bound the current (or last) lock; Ends is zero for a lock that lasts until
	// EndTimelock.
	Since           time.Time `json:"since,omitzero"`
	Ends            time.Time `json:"ends,omitzero"`
	EnforcementType string    `json:"enforcement_type,omitempty"`
	// ColdSends counts the cold sends delivered since the account's last lock ended (or since
	// its first message); it restarts from 0 when a lock ends.
	ColdSends int `json:"cold_sends"`
	// Refused counts the 463s of the current (or last) lock; Locks counts the locks so far.
	Refused int `json:"refused"`
	Locks   int `json:"locks"`
}

// reachState is the live Timelock of one account. Guarded by Server.mu.
type reachState struct {
	tl   Timelock
	stop chan struct{} // closed when the current lock ends, to stop its timer
}

// tcTokenWindow is how long a tctoken stays valid: whatsmeow's 4 buckets of 7 days.
const tcTokenWindow = 28 * 24 * time.Hour

// issuedToken is a tctoken the server handed to a holder account on behalf of an issuer.
type issuedToken struct {
	Token  []byte    `json:"token"`
	Issued time.Time `json:"issued"`
}

func pairKey(a, b string) string { return a + "|" + b }

// SetReach sets the reach-out plan of the sending account phone ("" for every account
// without its own). A zero Reach{} removes the plan; a running timelock goes on until it ends.
func (s *Server) SetReach(phone string, r Reach) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reachPlans == nil {
		s.reachPlans = map[string]Reach{}
	}
	if r == (Reach{}) {
		delete(s.reachPlans, digits(phone))
		return
	}
	s.reachPlans[digits(phone)] = r
}

func (s *Server) reachPlanLocked(phone string) Reach {
	if r, ok := s.reachPlans[phone]; ok {
		return r
	}
	return s.reachPlans[""]
}

func (s *Server) reachStateLocked(phone string) *reachState {
	if s.locks == nil {
		s.locks = map[string]*reachState{}
	}
	rs := s.locks[phone]
	if rs == nil {
		rs = &reachState{}
		s.locks[phone] = rs
	}
	return rs
}

// Timelock returns the reach-out state of the sending account phone.
func (s *Server) Timelock(phone string) Timelock {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.locks[digits(phone)]; rs != nil {
		return rs.tl
	}
	return Timelock{}
}

// EndTimelock ends the timelock of the account phone now, as its time running out would: the
// account's devices get the notification with IsActive false. It reports whether a lock was
// active.
func (s *Server) EndTimelock(phone string) bool {
	return s.endTimelock(digits(phone), -1, "ended")
}

// endTimelock ends phone's lock if it is active and is lock number locks (-1: any).
func (s *Server) endTimelock(phone string, locks int, reason string) bool {
	s.mu.Lock()
	rs := s.locks[phone]
	if rs == nil || !rs.tl.Active || (locks >= 0 && rs.tl.Locks != locks) {
		s.mu.Unlock()
		return false
	}
	tl := s.endLockLocked(rs)
	s.mu.Unlock()
	s.announceTimelock(phone, tl, reason)
	return true
}

// endLockLocked ends rs's lock and returns the resulting state. s.mu must be held.
func (s *Server) endLockLocked(rs *reachState) Timelock {
	rs.tl.Active = false
	rs.tl.ColdSends = 0
	if rs.stop != nil {
		close(rs.stop)
		rs.stop = nil
	}
	return rs.tl
}

// startLockLocked starts a lock on rs per plan. s.mu must be held; the caller runs
// lockTimer and announceTimelock after unlocking.
func (s *Server) startLockLocked(rs *reachState, plan Reach, now time.Time) Timelock {
	rs.tl.Active = true
	rs.tl.Since = now
	rs.tl.Ends = time.Time{}
	if plan.TimelockFor > 0 {
		rs.tl.Ends = now.Add(plan.TimelockFor)
	}
	rs.tl.EnforcementType = plan.EnforcementType
	rs.tl.Refused = 0
	rs.tl.Locks++
	rs.stop = make(chan struct{})
	return rs.tl
}

// lockTimer ends lock number tl.Locks of phone when it runs out.
func (s *Server) lockTimer(phone string, tl Timelock, stop <-chan struct{}) {
	if tl.Ends.IsZero() {
		return
	}
	s.goTracked(func() {
		t := time.NewTimer(time.Until(tl.Ends))
		defer t.Stop()
		select {
		case <-t.C:
			s.endTimelock(phone, tl.Locks, "expired")
		case <-stop:
		case <-s.ctx.Done():
		}
	})
}

// announceTimelock logs the state change and sends the MEX notification whatsmeow turns into
// events.NotifyAccountReachoutTimelock to every device of the account (offline ones at their
// next login).
func (s *Server) announceTimelock(phone string, tl Timelock, reason string) {
	if tl.Active {
		detail := "ends never"
		if !tl.Ends.IsZero() {
			detail = "ends " + tl.Ends.UTC().Format(time.RFC3339)
		}
		s.events.add(Event{Kind: EventTimelockStarted, Phone: phone, Detail: detail})
	} else {
		s.events.add(Event{Kind: EventTimelockEnded, Phone: phone, Detail: reason})
	}
	// The shape of events.NotifyAccountReachoutTimelock: ends is a string of Unix seconds.
	evt := map[string]any{"is_active": tl.Active}
	if tl.EnforcementType != "" {
		evt["enforcement_type"] = tl.EnforcementType
	}
	if tl.Active && !tl.Ends.IsZero() {
		evt["time_enforcement_ends"] = strconv.FormatInt(tl.Ends.Unix(), 10)
	}
	payload, err := json.Marshal(map[string]any{"data": map[string]any{"xwa2_notify_account_reachout_timelock": evt}})
	if err != nil {
		s.log.Error("wasim: timelock notification", "err", err)
		return
	}
	s.notifyAccount(phone, "mex", func(id string) waBinary.Node {
		return waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
			"from": types.ServerJID, "type": "mex", "id": id, "t": strconv.FormatInt(time.Now().Unix(), 10),
		}, Content: []waBinary.Node{{Tag: "update", Attrs: waBinary.Attrs{"op_name": "NotifyAccountReachoutTimelock"}, Content: payload}}}
	})
}

// notifyAccount sends a notification built by mk (given its id) to every linked device of the
// account: connected ones now (EventNotified once acked), others when they next log in.
func (s *Server) notifyAccount(phone, typ string, mk func(id string) waBinary.Node) {
	s.mu.Lock()
	acc := s.reg.Accounts[phone]
	var devs []types.JID
	if acc != nil {
		for id := range acc.Devices {
			devs = append(devs, types.JID{User: acc.Phone, Server: types.DefaultUserServer, Device: id})
		}
	}
	s.mu.Unlock()
	for _, dev := range devs {
		s.mu.Lock()
		c := s.live[dev]
		s.mu.Unlock()
		if c == nil || !c.loggedIn.Load() {
			s.deliver(dev, mk(typ+"-"+randomHex(6)))
			continue
		}
		id := c.newID(typ)
		ch, cancel, err := c.sendAwait(id, mk(id))
		if err != nil {
			continue
		}
		s.goTracked(func() {
			defer cancel()
			t := time.NewTimer(barrierTimeout)
			defer t.Stop()
			select {
			case <-ch:
				s.events.add(Event{Kind: EventNotified, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: typ + " " + id})
			case <-t.C:
			case <-c.ctx.Done():
			}
		})
	}
}

// SetChat says whether the recipient account has a chat with the sender account (as if the
// recipient had written to it): sends from sender to recipient are then "warm", not cold.
// Turning it on also issues the recipient's tctoken to the sender (EventTokenIssued; its
// connected devices get the privacy_token notification, EventNotified once handled). Turning
// it off leaves an issued token valid until it expires (28 days).
func (s *Server) SetChat(senderPhone, recipientPhone string, chat bool) {
	sender, recipient := digits(senderPhone), digits(recipientPhone)
	s.mu.Lock()
	if !chat {
		delete(s.reg.Chats, pairKey(sender, recipient))
		s.saveLocked()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.openChat(sender, recipient, true)
}

// Chat reports whether recipient has a chat with sender (SetChat).
func (s *Server) Chat(senderPhone, recipientPhone string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reg.Chats[pairKey(digits(senderPhone), digits(recipientPhone))]
}

// openChat records that recipient has a chat with sender and issues recipient's token to
// sender (a fresh one when none is valid, or always if reissue).
func (s *Server) openChat(sender, recipient string, reissue bool) {
	s.mu.Lock()
	if s.reg.Chats == nil {
		s.reg.Chats = map[string]bool{}
	}
	s.reg.Chats[pairKey(sender, recipient)] = true
	issuer := s.reg.Accounts[recipient]
	if issuer == nil || sender == recipient {
		s.saveLocked()
		s.mu.Unlock()
		return
	}
	if s.reg.Tokens == nil {
		s.reg.Tokens = map[string]*issuedToken{}
	}
	k := pairKey(sender, recipient)
	tok := s.reg.Tokens[k]
	now := time.Now()
	if tok != nil && !reissue && now.Sub(tok.Issued) < 7*24*time.Hour {
		s.saveLocked()
		s.mu.Unlock()
		return
	}
	if tok == nil {
		tok = &issuedToken{Token: randomBytes(24)}
		s.reg.Tokens[k] = tok
	}
	tok.Issued = now
	token, from := tok.Token, issuer.LIDJID()
	s.saveLocked()
	s.mu.Unlock()
	s.events.add(Event{Kind: EventTokenIssued, Phone: sender, Detail: recipient})
	ts := strconv.FormatInt(now.Unix(), 10)
	s.notifyAccount(sender, "privacy_token", func(id string) waBinary.Node {
		return waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
			"from": from, "type": "privacy_token", "id": id, "t": ts,
		}, Content: []waBinary.Node{{Tag: "tokens", Content: []waBinary.Node{{
			Tag: "token", Attrs: waBinary.Attrs{"type": "trusted_contact", "t": ts}, Content: token,
		}}}}}
	})
}

// NCTSalt returns the account's NCT salt, the key of its cstokens (made on first use). The
// real server delivers it through app state (nct_salt_sync), which wasim does not simulate: a
// test hands it to a client with cli.DangerousInternals().StoreNCTSalt.
func (s *Server) NCTSalt(phone string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.nctSaltLocked(digits(phone))...)
}

func (s *Server) nctSaltLocked(phone string) []byte {
	if s.reg.NCTSalts == nil {
		s.reg.NCTSalts = map[string][]byte{}
	}
	salt := s.reg.NCTSalts[phone]
	if salt == nil {
		salt = randomBytes(32)
		s.reg.NCTSalts[phone] = salt
		s.saveLocked()
	}
	return salt
}

// tokenValidLocked checks the privacy token a send from sender to recipient carried: kind is
// "tctoken" or "cstoken" ("" for none). s.mu must be held.
func (s *Server) tokenValidLocked(sender string, recipient *Account, kind string, token []byte, now time.Time) bool {
	switch kind {
	case "tctoken":
		tok := s.reg.Tokens[pairKey(sender, recipient.Phone)]
		return tok != nil && hmac.Equal(tok.Token, token) && now.Sub(tok.Issued) < tcTokenWindow
	case "cstoken":
		salt := s.reg.NCTSalts[sender]
		if salt == nil {
			return false
		}
		h := hmac.New(sha256.New, salt)
		h.Write([]byte(recipient.LIDJID().String()))
		return hmac.Equal(h.Sum(nil), token)
	}
	return false
}

// messageToken returns the privacy token a <message> carries.
func messageToken(n *waBinary.Node) (kind string, token []byte) {
	for _, ch := range n.GetChildren() {
		if ch.Tag == "tctoken" || ch.Tag == "cstoken" {
			b, _ := ch.Content.([]byte)
			return ch.Tag, b
		}
	}
	return "", nil
}

// reachDecision is what the reach-out rules say about one arrival.
type reachDecision struct {
	refusal string    // "", "timelock" or "no_token"
	started *Timelock // a lock this arrival started
	ended   *Timelock // a lock that had run out, ended on this arrival
	stop    chan struct{}
}

// reachLocked applies the sender's reach plan to an arrival of e from sender to recipient,
// counting cold sends and starting or ending its timelock. s.mu must be held.
func (s *Server) reachLocked(sender string, recipient *Account, e *LedgerEntry, kind string, token []byte, now time.Time) reachDecision {
	var d reachDecision
	plan := s.reachPlanLocked(sender)
	rs := s.reachStateLocked(sender)
	if rs.tl.Active && !rs.tl.Ends.IsZero() && !now.Before(rs.tl.Ends) {
		tl := s.endLockLocked(rs)
		d.ended = &tl
	}
	warm := s.reg.Chats[pairKey(sender, recipient.Phone)]
	e.Warm, e.Token, e.TokenValid = warm, kind, s.tokenValidLocked(sender, recipient, kind, token, now)
	if rs.tl.Active && e.Acks463 > 0 && e.lock == rs.tl.Locks {
		e.RetriesInLock++
	}
	switch {
	case warm:
	case rs.tl.Active:
		d.refusal = "timelock"
	case plan.RequireToken && !e.TokenValid:
		d.refusal = "no_token"
	case e.Decrypted || e.cold: // this id already reached out
	case plan.TimelockAfterColdSends > 0 && rs.tl.ColdSends >= plan.TimelockAfterColdSends:
		tl := s.startLockLocked(rs, plan, now)
		d.started, d.stop, d.refusal = &tl, rs.stop, "timelock"
	default:
		rs.tl.ColdSends++
		e.cold = true
	}
	if d.refusal != "" {
		e.Acks463++
		e.Refusal = d.refusal
		if d.refusal == "timelock" {
			rs.tl.Refused++
			e.lock = rs.tl.Locks
			if d.started != nil {
				d.started.Refused = rs.tl.Refused
			}
		}
	}
	return d
}

// Acks463 counts, per recipient phone-number JID, the 463 acks its messages got (every
// arrival refused, retries included).
func (s *Server) Acks463() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, e := range s.ledger.entries {
		if e.Acks463 > 0 {
			out[e.PN] += e.Acks463
		}
	}
	return out
}
