package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Outcome is what the engine does with an envío after a failed send.
type Outcome int

// Outcomes of a failed send.
const (
	Retry        Outcome = iota // enviando -> pendiente, same message id, with backoff
	Permanent                   // enviando -> fallido
	SessionLost                 // enviando -> pendiente now; the cliente waits for READY
	ReachLimited                // enviando -> pendiente until the cliente's reach lock ends (463)
	NotSent                     // nothing went out and nothing can: enviando -> omitido on a first attempt
)

// ackCodes is the one table of server error codes in acks. Unknown codes
// are transient until the attempts run out.
//
//	code  meaning (as observed from WhatsApp)            outcome
//	400   bad request (malformed message)                 permanent
//	401   not authorized (the device was removed)         session lost
//	403   forbidden (blocked by the recipient / banned)   permanent
//	404   recipient not found                             permanent (not on WhatsApp)
//	406   not acceptable (message refused)                permanent
//	409   conflict (duplicate id in flight)               retry
//	429   rate limited                                    retry
//	463   reach limit: timelock, or no privacy token     reach limited: the cliente's new chats lock
//	479   privacy token / tc token missing                retry
//	5xx   server error                                    retry
var ackCodes = map[int]Outcome{
	400: Permanent, 401: SessionLost, 403: Permanent, 404: Permanent, 406: Permanent,
	409: Retry, 429: Retry, 463: ReachLimited, 479: Retry,
}

// ClassifyAck maps an error-ack code to an outcome.
func ClassifyAck(code int) Outcome {
	if o, ok := ackCodes[code]; ok {
		return o
	}
	return Retry
}

// Classify maps a failed send to an outcome and a reason code for the
// journal. A deadline or a disconnect means the outcome is unknown: the
// envío is retried with the same message id, never marked by guess.
func Classify(err error) (Outcome, string) {
	var ack *AckError
	switch {
	case errors.As(err, &ack):
		return ClassifyAck(ack.Code), fmt.Sprintf("ack_%d", ack.Code)
	case errors.Is(err, ErrNotOnWhatsApp):
		return Permanent, ReasonNotOnWhatsApp
	case errors.Is(err, ErrNoLID):
		return NotSent, ReasonNoLID
	case errors.Is(err, ErrSessionDown):
		return SessionLost, ReasonSessionDown
	case errors.Is(err, context.DeadlineExceeded):
		return Retry, ReasonTimeout
	}
	return Retry, ReasonError
}

// Reason codes written by the engine.
const (
	ReasonNotOnWhatsApp = "not_on_whatsapp"
	ReasonNoLID         = "no_lid" // the server knows no LID for the phone: every DM goes to one
	ReasonSessionDown   = "session_down"
	ReasonTimeout       = "timeout" // no ack within the deadline: outcome unknown
	ReasonError         = "error"
	ReasonMaxAttempts   = "max_attempts"
	ReasonScript        = "script"
	ReasonOptOut        = "optout"
	ReasonCancel        = "cancel"
	ReasonSkip          = "skip"
)

// Backoff is the delay before retry number attempt (1-based): exponential
// from base, capped at max, with ±25% jitter so retries do not align.
func Backoff(attempt int, base, max time.Duration, rng *rand.Rand) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	jitter := time.Duration(float64(d) * 0.25 * (2*rng.Float64() - 1))
	return d + jitter
}
