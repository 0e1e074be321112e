package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SessionState is the state of a cliente's WhatsApp session, derived from
// whatsmeow's events (DESIGN.md "Sessions").
type SessionState string

// Session states.
const (
	SessionInitializing SessionState = "INITIALIZING" // client created, connecting
	SessionQRRequired   SessionState = "QR_REQUIRED"  // no device yet: a QR (or pair code) is waiting to be scanned
	SessionReady        SessionState = "READY"        // connected and logged in since the last disconnect: sends may go
	SessionDisconnected SessionState = "DISCONNECTED" // socket lost, reconnecting
	SessionLoggedOut    SessionState = "LOGGED_OUT"   // the phone removed the device, or the operator logged out
	SessionReplaced     SessionState = "REPLACED"     // another client took over this device (stream replaced)
	SessionError        SessionState = "ERROR"        // cannot go on without the operator; Err says why
)

// SessionEvent is a change of a cliente's session, published to
// subscribers (the engine, SSE, QR waiters).
type SessionEvent struct {
	Cliente string       `json:"cliente"`
	State   SessionState `json:"estado"`
	QR      string       `json:"qr,omitempty"`  // the current QR code while QR_REQUIRED; a new one on rotation
	JID     string       `json:"jid,omitempty"` // the device, once paired
	Err     string       `json:"error,omitempty"`
	At      time.Time    `json:"at"`
	// Event names the change for the journal (EventPaired, EventLoggedOut…;
	// "" for one that is not journaled, such as a QR rotation), with its
	// Reason. The engine journals it before anyone else sees the event.
	Event  string `json:"evento,omitempty"`
	Reason string `json:"motivo,omitempty"`
}

// sessionRecord is the journal record of a session event and the device
// mapping it changes (nil: none): a pairing records the new device, a
// logout forgets it.
func sessionRecord(ev SessionEvent) (Entry, *string) {
	entry := Entry{Kind: KindSession, Cliente: ev.Cliente, Event: ev.Event, Reason: ev.Reason}
	switch ev.Event {
	case EventPaired:
		return entry, &ev.JID
	case EventLoggedOut:
		none := ""
		return entry, &none
	}
	return entry, nil
}

// Errors of the WhatsApp side. The send engine classifies failures with
// errors.Is / errors.As on them.
var (
	// ErrSessionDown: the session was not connected and logged in, or was
	// lost during the send. Transient; the cliente pauses until READY.
	ErrSessionDown = errors.New("whatsapp session not ready")
	// ErrNotOnWhatsApp: the phone has no WhatsApp account. Permanent.
	ErrNotOnWhatsApp = errors.New("phone is not on WhatsApp")
	// ErrAlreadyConnected: WaitQR on a READY session.
	ErrAlreadyConnected = errors.New("session already connected")
	// ErrNoSession: the cliente has no session (never started).
	ErrNoSession = errors.New("no whatsapp session")
	// ErrNoLID: the server knows no LID for the phone, and every DM goes
	// to a LID: nothing was sent, and nothing can be.
	ErrNoLID = errors.New("whatsapp knows no LID for the phone")
)

// AckError is an error ack from the server for a message id, with its code
// (e.g. 463, 479, 500). Codes are classified by ClassifyAck.
type AckError struct {
	MsgID string
	Code  int
}

func (e *AckError) Error() string {
	return fmt.Sprintf("server refused message %s with code %d", e.MsgID, e.Code)
}

// Outgoing is one text message to send.
type Outgoing struct {
	To    string // E.164 phone
	MsgID string // the envío's deterministic id: a resend reuses it
	Text  string
}

// Gateway is the WhatsApp side the send engine consumes. engine/wa
// implements it with whatsmeow; tests use an in-memory double.
type Gateway interface {
	// Ready is the live gate: connected and logged in since the last
	// disconnect, derived from events, not from a cached flag.
	Ready(cliente string) bool
	// Send sends m and returns the server's timestamp of the ack of
	// m.MsgID. It returns only after the ack; any other outcome is an
	// error: ErrSessionDown, *AckError, ErrNotOnWhatsApp, ctx's error (the
	// outcome is unknown) or another transient error.
	Send(ctx context.Context, cliente string, m Outgoing) (time.Time, error)
	// Typing shows "typing…" to phone before a send (best effort).
	Typing(ctx context.Context, cliente, phone string) error
	// OnWhatsApp checks which E.164 phones have a WhatsApp account.
	OnWhatsApp(ctx context.Context, cliente string, phones []string) (map[string]bool, error)
	// HasChat says whether the cliente's device holds a privacy token of
	// phone: WhatsApp issued one because the two have a chat.
	HasChat(ctx context.Context, cliente, phone string) (bool, error)
}

// ReceiptKind is a delivery or read receipt.
type ReceiptKind string

// Receipt kinds.
const (
	ReceiptDelivered ReceiptKind = "delivered"
	ReceiptRead      ReceiptKind = "read"
)

// Receipt reports that messages were delivered to or read by a recipient.
type Receipt struct {
	Cliente string
	MsgIDs  []string
	Kind    ReceiptKind
	At      time.Time
}

// Reply is a message a recipient sent to a cliente.
type Reply struct {
	Cliente string    `json:"cliente"`
	From    string    `json:"telefono"` // E.164
	MsgID   string    `json:"msg_id"`
	Text    string    `json:"texto"`
	At      time.Time `json:"at"`
}

// Inbound is what a Gateway reports to the engine as it happens.
type Inbound interface {
	SessionChanged(SessionEvent)
	Receipt(Receipt)
	Reply(Reply)
	ReachChanged(ReachNotice)
}

// Sessions is the operator's control of WhatsApp sessions (admin API,
// demo). engine/wa implements it.
type Sessions interface {
	Gateway
	// Start connects the cliente's session, creating it if needed.
	Start(ctx context.Context, cliente string) error
	// State is the session's current state (INITIALIZING if unknown).
	State(cliente string) SessionEvent
	// WaitQR starts the session if needed and returns the current QR code as
	// soon as one exists; ErrAlreadyConnected when READY; ctx's error on timeout.
	WaitQR(ctx context.Context, cliente string) (string, error)
	// PairPhone asks for a pairing code to type on the phone.
	PairPhone(ctx context.Context, cliente, phone string) (string, error)
	// Logout removes the device (it stops sending) and makes a new QR available.
	Logout(ctx context.Context, cliente string) error
}
