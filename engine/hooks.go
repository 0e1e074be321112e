package engine

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Rendered is the final text of an envío, or a decision to skip it.
type Rendered struct {
	Text   string
	Skip   bool
	Reason string
}

// ThrottleStats is what a throttle hook decides on.
type ThrottleStats struct {
	Cliente      string
	Campaign     string
	SentToday    int // by the cliente, in the campaign's local day
	SentLastHour int
	ErrorStreak  int // consecutive failed sends
	LocalTime    time.Time
}

// ThrottleDecision is what a campaign's throttle hook decided before a
// send; it can only hold sends back. In every case the envío it was asked
// about stays pendiente, with its id, and is sent later.
//   - Delay: the number waits this much longer before its next send (any
//     campaign's).
//   - PauseUntil: this campaign sends nothing until then; the cliente's
//     other campaigns go on.
//   - Skip: this campaign's envío is not sent this turn; the campaign waits
//     its usual delay between sends (ritmo), then asks again.
type ThrottleDecision struct {
	Delay      time.Duration
	PauseUntil time.Time
	Skip       bool
}

// ReplyDecision is what to do with a reply.
type ReplyDecision struct {
	OptOut bool
	Tag    string
}

// Hooks customize a campaign: the scripting package implements them with
// the campaign's Lua script, and TemplateHooks without one.
type Hooks interface {
	Personalize(ctx context.Context, c Campaign, e Envio) (Rendered, error)
	Throttle(ctx context.Context, c Campaign, s ThrottleStats) (ThrottleDecision, error)
	OnReply(ctx context.Context, c Campaign, e Envio, r Reply) (ReplyDecision, error)
}

// DefaultOptOutWords are the replies that add a phone to the suppression
// list when a campaign has no on_reply hook. They match the whole reply,
// case- and accent-insensitively, ignoring punctuation.
var DefaultOptOutWords = []string{"BAJA", "STOP", "PARAR", "CANCELAR", "NO MAS", "UNSUBSCRIBE", "DESUSCRIBIR"}

// TemplateHooks renders the campaign template with {{nombre}}, {{telefono}}
// and the envío's variables, and applies the default opt-out rule.
type TemplateHooks struct {
	OptOutWords []string // default DefaultOptOutWords
}

// Personalize renders the template; a placeholder without a value is an
// error (the envío fails with reason script rather than sending "{{x}}").
func (h TemplateHooks) Personalize(_ context.Context, c Campaign, e Envio) (Rendered, error) {
	text, err := RenderTemplate(c.Template, e)
	return Rendered{Text: text}, err
}

// Throttle adds nothing to the campaign's rate settings.
func (TemplateHooks) Throttle(context.Context, Campaign, ThrottleStats) (ThrottleDecision, error) {
	return ThrottleDecision{}, nil
}

// OnReply opts out on the opt-out words.
func (h TemplateHooks) OnReply(_ context.Context, _ Campaign, _ Envio, r Reply) (ReplyDecision, error) {
	words := h.OptOutWords
	if words == nil {
		words = DefaultOptOutWords
	}
	return ReplyDecision{OptOut: IsOptOut(r.Text, words)}, nil
}

// IsOptOut reports whether text, normalized, is one of words.
func IsOptOut(text string, words []string) bool {
	t := normalizeWord(text)
	for _, w := range words {
		if t == normalizeWord(w) {
			return true
		}
	}
	return false
}

func normalizeWord(s string) string {
	s, _, _ = transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC), s)
	s = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToUpper(r)
		}
		return ' '
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// RenderTemplate replaces {{nombre}}, {{telefono}} and {{variable}} (names
// compared case-insensitively, spaces inside the braces ignored).
func RenderTemplate(tmpl string, e Envio) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		j := strings.Index(tmpl[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("plantilla: '{{' sin cerrar: %w", ErrInvalid)
		}
		b.WriteString(tmpl[:i])
		name := strings.ToLower(strings.TrimSpace(tmpl[i+2 : i+j]))
		v, ok := lookupVar(name, e)
		if !ok {
			return "", fmt.Errorf("plantilla: la variable %q no tiene valor para %s: %w", name, e.Telefono, ErrInvalid)
		}
		b.WriteString(v)
		tmpl = tmpl[i+j+2:]
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", fmt.Errorf("plantilla: el mensaje queda vacío: %w", ErrInvalid)
	}
	return b.String(), nil
}

func lookupVar(name string, e Envio) (string, bool) {
	switch name {
	case "nombre", "name":
		return e.Nombre, true
	case "telefono", "teléfono", "phone":
		return e.Telefono, true
	}
	for k, v := range e.Variables {
		if strings.ToLower(k) == name {
			return v, true
		}
	}
	return "", false
}
