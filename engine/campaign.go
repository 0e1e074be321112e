package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// setStatus moves a campaign to status if it is in one of from, journals
// it (kv does, on a status change) and publishes it.
func (e *Engine) setStatus(ctx context.Context, id string, to CampaignStatus, reason string, from ...CampaignStatus) error {
	var cliente string
	_, err := e.store.UpdateCampaign(ctx, id, func(c *Campaign) error {
		if !slices.Contains(from, c.Status) {
			return fmt.Errorf("campaña %q está %s; no se puede pasar a %s: %w", id, c.Status, to, ErrConflict)
		}
		c.Status, cliente = to, c.Cliente
		return nil
	})
	if err != nil {
		return err
	}
	e.events.Publish(Event{Type: "campaign", At: e.cfg.Clock.Now(), Cliente: cliente, Campaign: id, Status: string(to), Reason: reason})
	e.poke(cliente)
	return nil
}

// ErrCampaignEmpty is StartCampaign's answer for a campaign with no envíos
// (none imported yet, or an import still running): started, it would stay
// activa with nothing to do. It is an ErrConflict.
var ErrCampaignEmpty = fmt.Errorf("campaign is empty: %w", ErrConflict)

// StartCampaign moves a borrador (or pausada) campaign to activa. Its
// template, or its script, must render, and it must have envíos
// (ErrCampaignEmpty), except the messages campaign, which takes them as
// they come.
func (e *Engine) StartCampaign(ctx context.Context, id string) error {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return err
	}
	if c.Template == "" && c.Script == "" {
		return fmt.Errorf("campaña %q no tiene plantilla ni script: %w", id, ErrInvalid)
	}
	if (c.Status == Borrador || c.Status == Pausada) && !IsMessages(c) {
		counts, err := e.store.Counts(ctx, id)
		if err != nil {
			return err
		}
		if counts.Total() == 0 {
			return fmt.Errorf("campaña %q has no envíos: upload them (POST …/envios) and let the import finish before starting it: %w", id, ErrCampaignEmpty)
		}
	}
	if _, err := e.cfg.HooksFor(c); err != nil {
		return fmt.Errorf("campaña %q: script: %w", id, err)
	}
	return e.setStatus(ctx, id, Activa, "start", Borrador, Pausada)
}

// PauseCampaign stops claiming envíos of an active campaign. An envío in
// flight finishes.
func (e *Engine) PauseCampaign(ctx context.Context, id string) error {
	return e.setStatus(ctx, id, Pausada, "pause", Activa)
}

// ResumeCampaign reactivates a paused campaign.
func (e *Engine) ResumeCampaign(ctx context.Context, id string) error {
	return e.StartCampaign(ctx, id)
}

// CancelCampaign cancels a campaign: every pendiente becomes cancelado.
// An envío in flight keeps its outcome (it may already be at WhatsApp).
func (e *Engine) CancelCampaign(ctx context.Context, id string) error {
	if c, err := e.store.Campaign(ctx, id); err == nil && IsMessages(c) {
		// Cancelled, it would take no more messages, ever.
		return fmt.Errorf("campaña %q holds the cliente's transactional messages: pause it instead of cancelling it: %w", id, ErrConflict)
	}
	if err := e.setStatus(ctx, id, Cancelada, ReasonCancel, Borrador, Activa, Pausada); err != nil {
		return err
	}
	return e.cancelPending(ctx, id)
}

func (e *Engine) cancelPending(ctx context.Context, id string) error {
	for {
		page, err := e.store.Envios(ctx, id, 0, 500, Pendiente)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		for _, env := range page {
			err := e.apply(ctx, Transition{Envio: env.Ref, From: Pendiente, To: Cancelado, Reason: ReasonCancel})
			if err != nil && !errors.Is(err, ErrConflict) {
				return err
			}
		}
	}
}

// Stats is a campaign's progress, from the store's counters.
type Stats struct {
	Campaign string         `json:"campana"`
	Status   CampaignStatus `json:"estado"`
	Counts   Counts         `json:"conteos"`
	Total    uint64         `json:"total"`
	Open     uint64         `json:"abiertos"` // pendiente + enviando
	// Espera: why an activa campaign with work left sends nothing now
	// (its window, quota, the number's caps, a reach lock), until when.
	Espera *CampaignWait `json:"espera,omitempty"`
}

// CampaignStats returns a campaign's counts per state.
func (e *Engine) CampaignStats(ctx context.Context, id string) (Stats, error) {
	c, err := e.store.Campaign(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	counts, err := e.store.Counts(ctx, id)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Campaign: id, Status: c.Status, Counts: counts, Total: counts.Total(), Open: counts.Open()}
	if w, ok := e.CampaignWait(id); ok && c.Status == Activa && st.Open > 0 {
		st.Espera = &w
	}
	return st, nil
}

// NotifyImported wakes the cliente's worker after an import.
func (e *Engine) NotifyImported(cliente string) { e.warmth.Add(1); e.poke(cliente) }

// Reply records a recipient's reply and applies the opt-out decision of
// the campaign's on_reply hook (or the default words): the phone joins the
// cliente's suppression list and its pendiente envíos become omitido.
// It implements Inbound.
func (e *Engine) Reply(r Reply) {
	ctx := context.Background()
	envios, err := e.store.EnviosByPhone(ctx, r.Cliente, r.From)
	if err != nil {
		e.log.Error("reply", "cliente", r.Cliente, "err", err)
		return
	}
	// The reply answers the most recent envío that went out to this phone;
	// failing one acked, the one in flight (a quick reply can arrive
	// before the worker commits the ack of the message it answers).
	var last, inFlight *Envio
	for i := range envios {
		switch {
		case envios[i].State.Sent() && (last == nil || envios[i].SentAt.After(last.SentAt)):
			last = &envios[i]
		case envios[i].State == Enviando && (inFlight == nil || envios[i].UpdatedAt.After(inFlight.UpdatedAt)):
			inFlight = &envios[i]
		}
	}
	if last == nil {
		last = inFlight
	}
	decision := ReplyDecision{}
	var ref *Ref
	if last != nil {
		ref = &last.Ref
		c, err := e.store.Campaign(ctx, last.Ref.Campaign)
		if err == nil {
			if hooks, err := e.cfg.HooksFor(c); err == nil {
				decision, err = hooks.OnReply(ctx, c, *last, r)
				if err != nil {
					e.log.Warn("on_reply hook failed; applying the default opt-out rule", "campaign", c.ID, "err", err)
					decision, _ = TemplateHooks{}.OnReply(ctx, c, *last, r)
				}
			}
		}
	} else {
		decision, _ = TemplateHooks{}.OnReply(ctx, Campaign{}, Envio{}, r)
	}
	if err := e.store.SaveReply(ctx, r, ref, decision.OptOut); err != nil {
		e.log.Error("save reply", "cliente", r.Cliente, "err", err)
	}
	// The reply is published once its opt-out holds: whoever reacts to it
	// (the page, an integrator about to send a message) sees the phone
	// suppressed already.
	defer e.events.Publish(Event{Type: "reply", At: r.At, Cliente: r.Cliente, Reason: r.Text})
	defer e.poke(r.Cliente) // during a reach lock the phone is warm now: it may be sent to
	e.warmth.Add(1)
	if !decision.OptOut {
		return
	}
	if err := e.store.Suppress(ctx, r.Cliente, r.From, ReasonOptOut); err != nil {
		e.log.Error("opt-out", "cliente", r.Cliente, "err", err)
		return
	}
	for _, env := range envios {
		if env.State == Pendiente {
			err := e.apply(ctx, Transition{Envio: env.Ref, From: Pendiente, To: Omitido, Reason: ReasonOptOut})
			if err != nil && !errors.Is(err, ErrConflict) {
				e.log.Error("opt-out", "envio", env.Ref, "err", err)
			}
		}
	}
}
