package wasim

import (
	"encoding/json"
	"io"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// LedgerEntry is the simulator's record of one message id from one sender: what WhatsApp
// would have received. It is the ground truth crash tests compare the appliance against.
type LedgerEntry struct {
	ID   string `json:"id"`   // the client's message id
	From string `json:"from"` // sender device JID
	To   string `json:"to"`   // recipient user JID as addressed: its LID since whatsmeow 2026-07
	// PN is the recipient account's phone-number JID, whatever the addressing ("" when the
	// recipient is not on WhatsApp). DeliveredTo counts by it.
	PN string `json:"pn,omitempty"`
	// Text is the decrypted text (Conversation or ExtendedTextMessage.Text) as the recipient's
	// primary phone read it. Decrypted is false when the recipient could not read the
	// message; Error then says why. An acked but undecryptable message is a failure.
	Text      string `json:"text"`
	Decrypted bool   `json:"decrypted"`
	Error     string `json:"error,omitempty"`
	// Arrivals counts every <message> with this id from this sender (a resend or a retry after
	// a dropped connection arrives again; the recipient sees it once).
	Arrivals int `json:"arrivals"`
	// Acks counts the acks sent without error; AckError is the last error code sent (0: none).
	Acks     int `json:"acks"`
	AckError int `json:"ack_error,omitempty"`
	// Faults lists the fault applied to each arrival, in order ("" for none): "drop",
	// "no_ack", "slow", "error:479".
	Faults      []string   `json:"faults,omitempty"`
	Timestamp   int64      `json:"t,omitempty"` // server timestamp of the first successful ack
	FirstAt     time.Time  `json:"first_at"`
	LastAt      time.Time  `json:"last_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"` // delivery receipt sent to the sender
	ReadAt      *time.Time `json:"read_at,omitempty"`      // read receipt sent to the sender

	// Addressing is how the latest arrival named its recipient: "lid" (a LID with a
	// peer_recipient_pn of the same account: whatsmeow since 2026-07), "lid_no_pn" (a LID
	// alone), "pn" (a bare phone-number JID) or "lid_pn_mismatch" (peer_recipient_pn is
	// another account's number). PeerRecipientPN is that attribute as sent.
	Addressing      string `json:"addressing,omitempty"`
	PeerRecipientPN string `json:"peer_recipient_pn,omitempty"`
	// Warm: at the latest arrival the recipient had a chat with the sender (SetChat, or it
	// wrote to the sender); a send that is not warm is cold. Token is the privacy token the
	// latest arrival carried ("tctoken", "cstoken" or ""), TokenValid whether it checked out.
	Warm       bool   `json:"warm"`
	Token      string `json:"token,omitempty"`
	TokenValid bool   `json:"token_valid,omitempty"`
	// Acks463 counts the arrivals refused with 463 (not delivered); Refusal is the reason of
	// the latest ("timelock" or "no_token"). RetriesInLock counts arrivals that came after a
	// 463 of this id while that same timelock was still active.
	Acks463       int    `json:"acks_463,omitempty"`
	Refusal       string `json:"refusal,omitempty"`
	RetriesInLock int    `json:"retries_in_lock,omitempty"`

	// RetryRequests counts the retry receipts the recipient's phone sent for this id
	// (RequestRetry); Resends the client's answers. ResendDecrypted, ResendText and
	// ResendError describe the latest answer.
	RetryRequests   int    `json:"retry_requests,omitempty"`
	Resends         int    `json:"resends,omitempty"`
	ResendDecrypted bool   `json:"resend_decrypted,omitempty"`
	ResendText      string `json:"resend_text,omitempty"`
	ResendError     string `json:"resend_error,omitempty"`

	cold bool // counted as a cold send
	lock int  // Timelock.Locks of the lock that refused it last
}

type ledgerKey struct{ from, id string } // sender user, message id

// ledger is guarded by Server.mu.
type ledger struct {
	entries map[ledgerKey]*LedgerEntry
	order   []ledgerKey
}

func (l *ledger) getLocked(from types.JID, id string) *LedgerEntry {
	if l.entries == nil {
		return nil
	}
	return l.entries[ledgerKey{from.User, id}]
}

func (l *ledger) addLocked(from types.JID, id string, e *LedgerEntry) {
	if l.entries == nil {
		l.entries = map[ledgerKey]*LedgerEntry{}
	}
	k := ledgerKey{from.User, id}
	l.entries[k] = e
	l.order = append(l.order, k)
}

// Ledger returns a copy of every entry, in order of first arrival.
func (s *Server) Ledger() []LedgerEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LedgerEntry, 0, len(s.ledger.order))
	for _, k := range s.ledger.order {
		e := *s.ledger.entries[k]
		e.Faults = append([]string(nil), e.Faults...)
		out = append(out, e)
	}
	return out
}

// LedgerEntry returns the entry of message id from the account of sender (any of its
// devices), and whether there is one.
func (s *Server) LedgerEntry(sender types.JID, id string) (LedgerEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ledger.getLocked(sender, id)
	if e == nil {
		return LedgerEntry{}, false
	}
	c := *e
	c.Faults = append([]string(nil), e.Faults...)
	return c, true
}

// DeliveredTo counts, per recipient phone-number JID (LedgerEntry.PN, e.g.
// "15550002222@s.whatsapp.net", whether the message was addressed to its LID or not), the
// distinct message ids that reached it decrypted: what each recipient saw. A crash test wants
// every value to be 1 per message.
func (s *Server) DeliveredTo() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, e := range s.ledger.entries {
		if e.Decrypted {
			k := e.PN
			if k == "" {
				k = e.To
			}
			out[k]++
		}
	}
	return out
}

// WriteLedger writes the ledger as NDJSON (one LedgerEntry per line, in order).
func (s *Server) WriteLedger(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, e := range s.Ledger() {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}
