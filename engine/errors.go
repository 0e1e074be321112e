package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is; the admin layer maps
// them to HTTP status codes in one place.
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalid       = errors.New("invalid input")
	ErrBadTransition = errors.New("invalid state transition")
	ErrConflict      = errors.New("conflict")
)

// TransitionError is a transition refused by the state machine or because
// the envío was not in the state the caller expected. Nothing of the batch
// that contained it was written.
type TransitionError struct {
	Envio  Ref
	From   State // what the caller asked to move from
	To     State
	Actual State // the stored state
}

func (e *TransitionError) Error() string {
	if e.Actual != e.From {
		return fmt.Sprintf("envío %s: expected state %s, found %s (wanted -> %s)", e.Envio, e.From, e.Actual, e.To)
	}
	return fmt.Sprintf("envío %s: %s -> %s is not a legal transition", e.Envio, e.From, e.To)
}

// Unwrap makes errors.Is(err, ErrBadTransition) or ErrConflict work.
func (e *TransitionError) Unwrap() error {
	if e.Actual != e.From {
		return ErrConflict
	}
	return ErrBadTransition
}
