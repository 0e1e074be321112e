package engine

import (
	"fmt"
	"slices"
)

// State is the state of an envío, in the operators' words.
type State string

// The states of an envío. See DESIGN.md "States of an envío".
const (
	Pendiente State = "pendiente" // waiting for its turn (fresh, or a retry with backoff)
	Enviando  State = "enviando"  // write-ahead: committed before the send, with its message id
	Enviado   State = "enviado"   // WhatsApp's server acked the message id
	Entregado State = "entregado" // delivery receipt from the recipient's device
	Leido     State = "leido"     // read receipt
	Fallido   State = "fallido"   // permanent error or attempts exhausted; Reason says which
	Omitido   State = "omitido"   // skipped: script, opt-out, not on WhatsApp
	Cancelado State = "cancelado" // the campaign was cancelled before it was sent
)

// States lists every state in a stable order (the order of counters and reports).
var States = []State{Pendiente, Enviando, Enviado, Entregado, Leido, Fallido, Omitido, Cancelado}

// next is the one transition table. Receipts may skip entregado (a read
// receipt can arrive first), so enviado -> leido is legal. pendiente ->
// fallido is a failure found before any send was attempted (the campaign's
// script failed on this envío): nothing was written ahead, nothing was sent.
// enviando -> omitido is a first attempt refused before any frame went out
// (whatsmeow found no LID for the phone): nothing was sent, ever.
var next = map[State][]State{
	Pendiente: {Enviando, Omitido, Cancelado, Fallido},
	Enviando:  {Enviado, Pendiente, Fallido, Omitido},
	Enviado:   {Entregado, Leido},
	Entregado: {Leido},
}

// CanTransition reports whether an envío may move from one state to another.
func CanTransition(from, to State) bool { return slices.Contains(next[from], to) }

// Valid reports whether s is one of the known states.
func (s State) Valid() bool { return slices.Contains(States, s) }

// Final reports whether no send will ever be attempted again for an envío in
// this state. Enviado and entregado are final for sending even though
// receipts may still move them forward.
func (s State) Final() bool { return s != Pendiente && s != Enviando && s.Valid() }

// Sent reports whether the state proves a server ack of the message id.
func (s State) Sent() bool { return s == Enviado || s == Entregado || s == Leido }

// Index is the position of s in States, or -1.
func (s State) Index() int { return slices.Index(States, s) }

// ParseState parses an operator's state word.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", fmt.Errorf("estado desconocido %q: %w", s, ErrInvalid)
	}
	return st, nil
}
