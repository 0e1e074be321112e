package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// validID is the shape of cliente and campaña ids: short, URL- and key-safe.
var validID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidateID checks a cliente or campaña id.
func ValidateID(kind, id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("%s id %q: use 1-64 characters a-z, 0-9, '-' or '_': %w", kind, id, ErrInvalid)
	}
	return nil
}

// Cliente is a tenant: one WhatsApp session (device) and its campaigns.
type Cliente struct {
	ID            string    `json:"id"`
	Name          string    `json:"nombre"`
	DefaultRegion string    `json:"region"` // ISO country for phones written without +, e.g. "AR"
	CreatedAt     time.Time `json:"creado"`
	// DeviceJID is the WhatsApp device of the cliente's session, once paired.
	DeviceJID string `json:"jid,omitempty"`
}

// CampaignStatus is the status of a campaña.
type CampaignStatus string

// Campaign statuses, in the operators' words.
const (
	Borrador  CampaignStatus = "borrador"
	Activa    CampaignStatus = "activa"
	Pausada   CampaignStatus = "pausada"
	Terminada CampaignStatus = "terminada"
	Cancelada CampaignStatus = "cancelada"
)

// Campaign is a campaña: a template, an optional Lua script, when it may
// send (Schedule) and how fast (Rate).
type Campaign struct {
	ID        string         `json:"id"`
	Cliente   string         `json:"cliente"`
	Name      string         `json:"nombre"`
	Template  string         `json:"plantilla"`
	Script    string         `json:"script,omitempty"`
	Status    CampaignStatus `json:"estado"`
	Schedule  Schedule       `json:"programacion"`
	Rate      Rate           `json:"ritmo"`
	CreatedAt time.Time      `json:"creada"`

	// Visible is the highest envío sequence number of a committed import:
	// envíos above it belong to an import in progress (or a crashed one)
	// and do not exist for readers.
	Visible uint64 `json:"visible"`
	// Cursor is the lowest sequence number that may still be a fresh
	// pendiente; envíos below it have been claimed at least once.
	Cursor uint64 `json:"cursor"`
}

// Schedule is the programación: when a campaign may send.
type Schedule struct {
	Days       []time.Weekday `json:"dias,omitempty"` // empty: every day
	StartHour  int            `json:"desde"`          // 0-23, local time
	EndHour    int            `json:"hasta"`          // 1-24, exclusive; 0 means 24
	TimeZone   string         `json:"zona,omitempty"` // IANA name; empty: UTC
	DailyQuota int            `json:"cupo,omitempty"` // sends per local day; 0: no quota
}

// Rate holds the anti-ban settings of a campaign.
//
// In JSON its durations are Go duration strings ("30s", "1m30s"; see
// Rate.MarshalJSON): that is the form stored and answered. Reading, a JSON
// number is a count of nanoseconds, the form campaigns were stored in
// before; a person's input (the admin API) goes through ParseRateJSON,
// where a number counts seconds.
type Rate struct {
	MinDelay    time.Duration `json:"min_delay"`
	MaxDelay    time.Duration `json:"max_delay"`
	HourlyCap   int           `json:"por_hora,omitempty"`
	DailyCap    int           `json:"por_dia,omitempty"`
	MaxAttempts int           `json:"max_intentos,omitempty"`
	// WarmupDays ramps a new number up: on its first day the daily cap is
	// DailyCap/WarmupDays, growing by that much each day until DailyCap.
	// Days count from the cliente's creation. 0: no ramp.
	WarmupDays int `json:"calentamiento_dias,omitempty"`
}

// rateFields is Rate without its JSON methods.
type rateFields Rate

// rateJSON is Rate's JSON form: its durations as jsonDuration, the other
// fields those of the embedded Rate (the outer fields hide its durations).
type rateJSON struct {
	*rateFields
	MinDelay jsonDuration `json:"min_delay"`
	MaxDelay jsonDuration `json:"max_delay"`
}

func (r *Rate) json(unit time.Duration) *rateJSON {
	return &rateJSON{rateFields: (*rateFields)(r), MinDelay: jsonDuration{&r.MinDelay, unit}, MaxDelay: jsonDuration{&r.MaxDelay, unit}}
}

// MarshalJSON writes the durations as Go duration strings:
// {"min_delay":"20s","max_delay":"1m0s",…}.
func (r Rate) MarshalJSON() ([]byte, error) { return json.Marshal(r.json(0)) }

// UnmarshalJSON reads durations as Go duration strings or, as stored before
// they were strings, integer nanoseconds. A bad one is a
// *json.UnmarshalTypeError of type time.Duration naming the field.
func (r *Rate) UnmarshalJSON(data []byte) error {
	return decodeRate(data, r, time.Nanosecond, false)
}

// ParseRateJSON reads a ritmo as a person writes it: durations as Go
// duration strings ("30s") or numbers of seconds (30, 1.5), never
// nanoseconds; unknown fields are an error. A bad duration is a
// *json.UnmarshalTypeError of type time.Duration whose Field names it and
// whose Value is the JSON given (see IsDurationError).
func ParseRateJSON(data []byte) (Rate, error) {
	var r Rate
	err := decodeRate(data, &r, time.Second, true)
	return r, err
}

// IsDurationError reports whether err is a duration field's decoding error
// (from Rate.UnmarshalJSON or ParseRateJSON), and returns it.
func IsDurationError(err error) (*json.UnmarshalTypeError, bool) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Type == durationType {
		return te, true
	}
	return nil, false
}

func decodeRate(data []byte, r *Rate, unit time.Duration, strict bool) error {
	var v Rate
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v.json(unit)); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) { // the path through rateJSON's embedded struct
			te.Struct, te.Field = "Rate", strings.TrimPrefix(te.Field, "rateFields.")
		}
		return err
	}
	*r = v
	return nil
}

var durationType = reflect.TypeFor[time.Duration]()

// jsonDuration is a duration field of a JSON Rate. Unit is what a JSON
// number counts.
type jsonDuration struct {
	d    *time.Duration
	unit time.Duration
}

func (j jsonDuration) MarshalJSON() ([]byte, error) { return json.Marshal(j.d.String()) }

func (j jsonDuration) UnmarshalJSON(data []byte) error {
	d, ok := parseJSONDuration(data, j.unit)
	if !ok {
		v := string(data)
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return &json.UnmarshalTypeError{Value: v, Type: durationType}
	}
	if string(data) != "null" {
		*j.d = d
	}
	return nil
}

// parseJSONDuration reads a JSON string in time.ParseDuration's form, or a
// number counting unit; null is zero.
func parseJSONDuration(data []byte, unit time.Duration) (time.Duration, bool) {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		return 0, true
	case len(data) > 0 && data[0] == '"':
		var s string
		if json.Unmarshal(data, &s) != nil {
			return 0, false
		}
		d, err := time.ParseDuration(strings.TrimSpace(s))
		return d, err == nil
	}
	if n, err := strconv.ParseInt(string(data), 10, 64); err == nil {
		if n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
			return 0, false
		}
		return time.Duration(n) * unit, true
	}
	f, err := strconv.ParseFloat(string(data), 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	f *= float64(unit)
	if f >= math.MaxInt64 || f <= math.MinInt64 {
		return 0, false
	}
	return time.Duration(math.Round(f)), true
}

// Ref names one envío: its campaign and its sequence number in import order.
type Ref struct {
	Campaign string
	Seq      uint64
}

func (r Ref) String() string { return r.Campaign + "/" + strconv.FormatUint(r.Seq, 10) }

// ParseRef parses the form printed by Ref.String.
func ParseRef(s string) (Ref, error) {
	c, n, ok := strings.Cut(s, "/")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil || seq == 0 || ValidateID("campaña", c) != nil {
		return Ref{}, fmt.Errorf("envío %q: want campaña/número: %w", s, ErrInvalid)
	}
	return Ref{Campaign: c, Seq: seq}, nil
}

// Envio is one message to one phone.
type Envio struct {
	Ref         Ref               `json:"-"`
	Cliente     string            `json:"cliente"`
	Telefono    string            `json:"telefono"` // E.164
	Nombre      string            `json:"nombre,omitempty"`
	Variables   map[string]string `json:"variables,omitempty"`
	Mensaje     string            `json:"mensaje,omitempty"` // the final text, fixed at the write-ahead
	State       State             `json:"estado"`
	MsgID       string            `json:"msg_id,omitempty"`
	Attempts    int               `json:"intentos,omitempty"`
	NextAttempt time.Time         `json:"proximo,omitzero"` // set while a retry waits
	Reason      string            `json:"motivo,omitempty"`
	CreatedAt   time.Time         `json:"creado"`
	UpdatedAt   time.Time         `json:"actualizado"`
	SentAt      time.Time         `json:"enviado_en,omitzero"` // the server's timestamp of the ack
}

// Transition asks the store to move one envío From -> To. The store checks
// it against the transition table and against the stored state.
type Transition struct {
	Envio Ref
	From  State
	To    State
	// Text is the final message and MsgID the envío's message id
	// (MessageID), both required for pendiente -> enviando; an envío that
	// already has an id keeps it, and a different one is refused.
	Text  string
	MsgID string
	// Reason is a short code: recovery, script, not_on_whatsapp, optout,
	// error code of an ack, retry, cancel...
	Reason string
	// At is when it happened; for -> enviado, the server timestamp of the
	// ack. Zero means now.
	At time.Time
	// NextAttempt is when a retry (enviando -> pendiente) becomes due.
	NextAttempt time.Time
}

// Due is the answer to "which envío of this campaign goes next".
type Due struct {
	Envio Ref
	Ok    bool      // Envio is due now
	Next  time.Time // when Ok is false: the earliest retry, or zero if none waits
}

// Counts is the number of envíos per state of a campaign.
type Counts map[State]uint64

// Total is the number of envíos counted.
func (c Counts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// Open is the number of envíos that are not final yet.
func (c Counts) Open() uint64 { return c[Pendiente] + c[Enviando] }
