package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode/utf8"
)

// Transactional messages (an order confirmation, a reminder, a reply from a
// CRM) are envíos of one campaign per cliente, its messages campaign: they
// take the very path of a campaign's envíos (write-ahead enviando with the
// deterministic id, live gate, enviado only on the ack, receipts, journal,
// webhooks, reach lock), are sent before the cliente's campaigns, and share
// the number's pace. The campaign is made activa on the first message and
// never ends by itself.

// MessageTextVar is the envío variable holding a message's text; the
// messages campaign's template is just that variable.
const MessageTextVar = "texto"

// MaxMessageText is WhatsApp's limit on a text message, in characters.
const MaxMessageText = 65536

// ErrOptedOut: the phone is on the cliente's opt-out list.
var ErrOptedOut = errors.New("the phone opted out of this cliente's messages")

// ErrKeyReused: an idempotency key already names a message with another
// phone or text; nothing is sent (the caller has a bug, or two messages
// share a key).
var ErrKeyReused = errors.New("the idempotency key names another message")

// Message is one transactional message to add.
type Message struct {
	Cliente  string
	Key      string // idempotency key: the same key is the same message, for ever
	Telefono string // E.164
	Texto    string
}

// MessagesRate is the messages campaign's pace when it is made: quicker
// than a campaign's default (a person waits for a confirmation), capped so
// a runaway integration cannot burn the number. An operator may change it
// like any campaign's ritmo; the number's reach lock applies all the same.
var MessagesRate = Rate{MinDelay: 500 * time.Millisecond, MaxDelay: 1500 * time.Millisecond, HourlyCap: 600, DailyCap: 5000, MaxAttempts: 5}

// MessagesCampaignID is the id of a cliente's messages campaign: a hash of
// the cliente's id, so any valid cliente id gives a valid campaign id.
func MessagesCampaignID(cliente string) string {
	h := fnv.New64a()
	h.Write([]byte(cliente))
	return fmt.Sprintf("mensajes-%016x", h.Sum64())
}

// IsMessages says whether c is its cliente's messages campaign.
func IsMessages(c Campaign) bool { return c.ID == MessagesCampaignID(c.Cliente) }

// SendMessage adds a transactional message and wakes the cliente's worker.
// The same key returns the envío it made before (created false), whatever
// its state, and sends nothing again. ErrOptedOut for a phone on the
// opt-out list (nothing is stored), ErrInvalid for bad input.
func (e *Engine) SendMessage(ctx context.Context, m Message) (Envio, bool, error) {
	switch {
	case m.Key == "" || len(m.Key) > 255:
		return Envio{}, false, fmt.Errorf("idempotency key: 1-255 characters: %w", ErrInvalid)
	case !validE164(m.Telefono):
		return Envio{}, false, fmt.Errorf("telefono %q: want E.164 (+ and 8-15 digits): %w", m.Telefono, ErrInvalid)
	case strings.TrimSpace(m.Texto) == "":
		return Envio{}, false, fmt.Errorf("texto: empty: %w", ErrInvalid)
	case utf8.RuneCountInString(m.Texto) > MaxMessageText:
		return Envio{}, false, fmt.Errorf("texto: %d characters, WhatsApp takes at most %d: %w", utf8.RuneCountInString(m.Texto), MaxMessageText, ErrInvalid)
	}
	id, err := e.messagesCampaign(ctx, m.Cliente)
	if err != nil {
		return Envio{}, false, err
	}
	env, created, err := e.store.AddMessage(ctx, id, m, e.messageID)
	if err != nil {
		return Envio{}, false, err
	}
	if !created && (env.Telefono != m.Telefono || env.Variables[MessageTextVar] != m.Texto) {
		return env, false, fmt.Errorf("key %q was used for a message to %s: %w", m.Key, env.Telefono, ErrKeyReused)
	}
	if created {
		e.events.Publish(Event{Type: "envio", At: e.cfg.Clock.Now(), Cliente: m.Cliente, Campaign: id, Envio: env.Ref.Seq, To: Pendiente, Reason: "mensaje"})
		e.warmth.Add(1)
		e.poke(m.Cliente)
	}
	return env, created, nil
}

// messagesCampaign returns the id of the cliente's messages campaign,
// making it (activa) on first use. One an operator paused stays paused and
// its messages wait; a cancelled one takes no more.
func (e *Engine) messagesCampaign(ctx context.Context, cliente string) (string, error) {
	id := MessagesCampaignID(cliente)
	c, err := e.store.Campaign(ctx, id)
	switch {
	case err == nil && c.Cliente != cliente:
		return "", fmt.Errorf("campaña %q belongs to cliente %q: %w", id, c.Cliente, ErrConflict)
	case err == nil && (c.Status == Cancelada || c.Status == Terminada):
		return "", fmt.Errorf("the messages of cliente %q were cancelled (campaña %q): %w", cliente, id, ErrConflict)
	case err == nil:
		return id, nil
	case !errors.Is(err, ErrNotFound):
		return "", err
	}
	if _, err := e.store.Cliente(ctx, cliente); err != nil {
		return "", err
	}
	err = e.store.CreateCampaign(ctx, Campaign{ID: id, Cliente: cliente, Name: "Mensajes transaccionales",
		Template: "{{" + MessageTextVar + "}}", Status: Activa, Rate: e.messagesRate()})
	if err != nil && !errors.Is(err, ErrConflict) { // a concurrent first message made it
		return "", err
	}
	return id, nil
}

// MessageIDOf is the message id an envío has, or will have from its first
// write-ahead on: deterministic, so a caller can quote it at once.
func (e *Engine) MessageIDOf(env Envio) string {
	if env.MsgID != "" {
		return env.MsgID
	}
	return e.messageID(env.Ref)
}

// MessageKey is the idempotency key of a message ("" if unknown).
func (e *Engine) MessageKey(ctx context.Context, env Envio) string {
	k, err := e.store.MessageKey(ctx, env.Cliente, env.Ref.Seq)
	if err != nil {
		e.log.Warn("message key", "envio", env.Ref, "err", err)
	}
	return k
}

// Message reads a cliente's transactional message by idempotency key or
// message id.
func (e *Engine) Message(ctx context.Context, cliente, keyOrID string) (Envio, error) {
	id := MessagesCampaignID(cliente)
	ref, err := e.store.MessageRef(ctx, cliente, id, keyOrID)
	if err != nil {
		return Envio{}, err
	}
	return e.store.Envio(ctx, ref)
}

// WaitFinal waits until the envío is sent (enviado or later) or final, or
// ctx ends; it returns the envío as it is then. Event-driven: it reads the
// envío once after subscribing, then on each of its events.
func (e *Engine) WaitFinal(ctx context.Context, ref Ref) (Envio, error) {
	sub := e.events.Open(64)
	defer sub.Close()
read:
	for {
		env, err := e.store.Envio(ctx, ref)
		if err != nil || env.State.Sent() || env.State.Final() {
			return env, err
		}
		// Read again on the envío's next event, or when events were lost.
		lost := sub.Lost()
		for {
			select {
			case <-ctx.Done():
				return env, ctx.Err()
			case ev := <-sub.C:
				if (ev.Type == "envio" && ev.Campaign == ref.Campaign && ev.Envio == ref.Seq) || sub.Lost() != lost {
					continue read
				}
			}
		}
	}
}

func validE164(p string) bool {
	if len(p) < 9 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return false
	}
	for _, r := range p[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// messagesRate is Config.MessagesRate over MessagesRate's defaults.
func (e *Engine) messagesRate() Rate {
	r, d := e.cfg.MessagesRate, MessagesRate
	if r.MinDelay <= 0 {
		r.MinDelay = d.MinDelay
	}
	if r.MaxDelay < r.MinDelay {
		r.MaxDelay = max(d.MaxDelay, r.MinDelay)
	}
	if r.HourlyCap <= 0 {
		r.HourlyCap = d.HourlyCap
	}
	if r.DailyCap <= 0 {
		r.DailyCap = d.DailyCap
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = d.MaxAttempts
	}
	return r
}
