package engine

import "time"

// EntryKind says what a journal record describes.
type EntryKind string

// Journal record kinds.
const (
	KindTransition EntryKind = "transition" // an envío changed state
	KindImport     EntryKind = "import"     // envíos FirstSeq..LastSeq were created pendiente
	KindSession    EntryKind = "session"    // a WhatsApp session event (Event says which)
	KindCampaign   EntryKind = "campaign"   // a campaña was created or changed status
	KindCliente    EntryKind = "cliente"    // a cliente was created
	KindSuppress   EntryKind = "suppress"   // a phone was added to a cliente's opt-out list
	KindReach      EntryKind = "reach"      // a cliente's reach lock opened or ended (Event, Reason: its source, Until)
	// KindReply marks a recipient's reply in the webhook outbox; replies
	// are stored beside the journal, not in it, so no record has this kind.
	KindReply EntryKind = "reply"
)

// Session events, as journaled.
const (
	EventQR           = "qr"
	EventPaired       = "paired"
	EventConnected    = "connected"
	EventDisconnected = "disconnected"
	EventLoggedOut    = "logged_out"
	// EventReplaced: another client of the same device took the stream over.
	EventReplaced = "replaced"
)

// Journal events of a reach lock (Entry.Event of a KindReach record).
const (
	EventReachLocked   = "reach_locked"
	EventReachUnlocked = "reach_unlocked"
)

// Entry is one record of the append-only journal. The store fills Seq,
// Time (if zero) and the hash chain.
type Entry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Kind     EntryKind `json:"kind"`
	Cliente  string    `json:"cliente,omitempty"`
	Campaign string    `json:"campana,omitempty"`
	Envio    uint64    `json:"envio,omitempty"` // sequence number within the campaign
	From     State     `json:"from,omitempty"`
	To       State     `json:"to,omitempty"`
	MsgID    string    `json:"msg_id,omitempty"`
	Attempt  int       `json:"attempt,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Event    string    `json:"event,omitempty"`    // session event or campaign status
	Phone    string    `json:"telefono,omitempty"` // suppress
	Until    time.Time `json:"hasta,omitzero"`     // reach: the end of the lock
	// FirstSeq..LastSeq and Digest describe an import: the SHA-256 of the
	// imported rows, so a rewritten envío of an import is detectable.
	FirstSeq uint64 `json:"first,omitempty"`
	LastSeq  uint64 `json:"last,omitempty"`
	Digest   string `json:"digest,omitempty"`
	Prev     string `json:"prev"` // hex SHA-256 of the previous record's payload
}
