package wasim

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"
)

// Faults are misbehaviours toward a sending account's messages and logins. Set them per
// account (by phone) or globally with SetFaults; the zero value is a well-behaved server.
type Faults struct {
	// DropBeforeAck closes the connection abruptly after a <message> arrives and before it is
	// acked, for the first DropBeforeAck arrivals of each message id: 1 drops the first
	// arrival and acks the client's automatic retry; a large value never lets one through.
	DropBeforeAck int `json:"drop_before_ack,omitempty"`
	// AckError acks every message with this error code (e.g. 463, 479): SendMessage returns
	// whatsmeow.ErrServerReturnedError.
	AckError int `json:"ack_error,omitempty"`
	// NoAck never acks messages (the recipient still gets them).
	NoAck bool `json:"no_ack,omitempty"`
	// AckDelay acks after this long.
	AckDelay time.Duration `json:"ack_delay,omitempty"`
	// SilentLogin completes the Noise handshake of a login but never sends <success> and
	// ignores every stanza on that connection.
	SilentLogin bool `json:"silent_login,omitempty"`
	// Addressing479 acks a DM addressed to a bare phone-number JID, or to a LID whose
	// peer_recipient_pn is another account's number, with error 479 (bad addressing, as the
	// real server may answer); by default such a DM is accepted and only recorded
	// (LedgerEntry.Addressing). It does not turn chaos off for the account.
	Addressing479 bool `json:"addressing_479,omitempty"`
}

// Chaos mixes faults at given rates, deterministically: the fault of an arrival is a
// function of Seed, the message id and the arrival number, so the same seed gives the same
// fault sequence whatever the timing. Rates are probabilities in [0,1], tried in the order
// drop, error, no-ack, slow.
type Chaos struct {
	Seed      int64         `json:"seed"`
	DropRate  float64       `json:"drop_rate,omitempty"`
	ErrorRate float64       `json:"error_rate,omitempty"`
	ErrorCode int           `json:"error_code,omitempty"` // default 479
	NoAckRate float64       `json:"no_ack_rate,omitempty"`
	SlowRate  float64       `json:"slow_rate,omitempty"`
	SlowAck   time.Duration `json:"slow_ack,omitempty"` // default 1s
}

// Behavior is how a simulated recipient reacts to messages it reads. The zero value sends no
// receipts and never replies.
type Behavior struct {
	// Deliver sends a delivery receipt DeliverAfter the message arrived.
	Deliver      bool          `json:"deliver,omitempty"`
	DeliverAfter time.Duration `json:"deliver_after,omitempty"`
	// Read sends a read receipt ReadAfter the delivery receipt (implies Deliver).
	Read      bool          `json:"read,omitempty"`
	ReadAfter time.Duration `json:"read_after,omitempty"`
	// ReplyTo, when set, is asked for a reply to the n-th message (1-based) this recipient
	// received from that sender; "" sends none. Replies go out after the receipts.
	ReplyTo func(n int, text string) string `json:"-"`
	// ReplyFirst is a declarative reply to the first message only (usable over the control
	// API, e.g. "BAJA").
	ReplyFirst string `json:"reply_first,omitempty"`
}

func (b Behavior) reply(n int, text string) string {
	if b.ReplyTo != nil {
		return b.ReplyTo(n, text)
	}
	if n == 1 {
		return b.ReplyFirst
	}
	return ""
}

// SetFaults sets the faults for messages and logins of the account phone ("" for all
// accounts without their own). Zero Faults{} clears them.
func (s *Server) SetFaults(phone string, f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults == nil {
		s.faults = map[string]Faults{}
	}
	s.faults[digits(phone)] = f
}

// SetChaos turns on the seeded random fault mode for every account (nil turns it off). It
// applies to messages without a fault from SetFaults.
func (s *Server) SetChaos(c *Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c != nil {
		c = c.withDefaults()
	}
	s.chaos = c
}

// SetBehavior sets how recipient phone reacts ("" for every recipient without its own).
func (s *Server) SetBehavior(phone string, b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.behaviors == nil {
		s.behaviors = map[string]Behavior{}
	}
	s.behaviors[digits(phone)] = b
}

// faultsLocked returns the faults of an account.
func (s *Server) faultsLocked(phone string) Faults {
	if f, ok := s.faults[phone]; ok {
		return f
	}
	return s.faults[""]
}

func (s *Server) behaviorLocked(phone string) Behavior {
	if b, ok := s.behaviors[phone]; ok {
		return b
	}
	return s.behaviors[""]
}

// ackPlan is what to do with one arrival of a message.
type ackPlan struct {
	drop  bool
	noAck bool
	delay time.Duration
	code  int
}

func (p ackPlan) String() string {
	switch {
	case p.drop:
		return "drop"
	case p.noAck:
		return "no_ack"
	case p.code != 0:
		return "error:" + strconv.Itoa(p.code)
	case p.delay > 0:
		return "slow"
	}
	return ""
}

// planLocked decides the fault for the arrival-th arrival of message id from phone.
func (s *Server) planLocked(phone, id string, arrival int) ackPlan {
	if f := s.faultsLocked(phone); f != (Faults{Addressing479: f.Addressing479}) {
		return ackPlan{drop: arrival <= f.DropBeforeAck, noAck: f.NoAck, delay: f.AckDelay, code: f.AckError}
	}
	if s.chaos == nil {
		return ackPlan{}
	}
	return s.chaos.plan(id, arrival)
}

// Fault names the fault chaos mode applies to the arrival-th arrival (1-based) of message
// id: "drop", "error:N", "no_ack", "slow" or "" (none). It depends on nothing else, which is
// what makes a chaos run reproducible.
func (c Chaos) Fault(id string, arrival int) string {
	return c.withDefaults().plan(id, arrival).String()
}

func (c Chaos) withDefaults() *Chaos {
	if c.ErrorCode == 0 {
		c.ErrorCode = 479
	}
	if c.SlowAck == 0 {
		c.SlowAck = time.Second
	}
	return &c
}

func (c *Chaos) plan(id string, arrival int) ackPlan {
	h := sha256.New()
	_ = binary.Write(h, binary.BigEndian, c.Seed)
	h.Write([]byte(id))
	_ = binary.Write(h, binary.BigEndian, int64(arrival))
	x := float64(binary.BigEndian.Uint64(h.Sum(nil))>>11) / (1 << 53) // uniform in [0,1)
	switch {
	case x < c.DropRate:
		return ackPlan{drop: true}
	case x < c.DropRate+c.ErrorRate:
		return ackPlan{code: c.ErrorCode}
	case x < c.DropRate+c.ErrorRate+c.NoAckRate:
		return ackPlan{noAck: true}
	case x < c.DropRate+c.ErrorRate+c.NoAckRate+c.SlowRate:
		return ackPlan{delay: c.SlowAck}
	}
	return ackPlan{}
}
