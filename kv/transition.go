package kv

import (
	"context"
	"fmt"
	"time"

	"leadmaster/engine"
)

// Apply applies a batch of envío transitions atomically: each is checked
// against the engine's transition table and the stored state, and either
// all of them are written, with their indexes, counters and one journal
// record each, or none is. An illegal transition is a *engine.TransitionError
// (errors.Is ErrBadTransition, or ErrConflict when the stored state is not
// From). Apply returns after the transaction's fsync.
//
// Side effects by transition: -> enviando fixes the message id (the
// transition's, minted by the engine) and the final text (kept from an earlier attempt if
// there was one) and counts an attempt; -> pendiente schedules a retry at
// NextAttempt; -> enviado records At as the server's timestamp.
func (db *DB) Apply(ctx context.Context, ts ...engine.Transition) error {
	if len(ts) == 0 {
		return nil
	}
	for _, t := range ts {
		if t.To == engine.Enviando && (t.Text == "" || t.MsgID == "") {
			return fmt.Errorf("envío %s: -> enviando needs the final text and the message id: %w", t.Envio, engine.ErrInvalid)
		}
	}
	return db.write(ctx, func(w *wtx) error { return w.apply(ts) })
}

type pending struct {
	env    engine.Envio
	before engine.Envio
}

// apply validates the whole batch against the transaction's state before
// writing anything.
func (w *wtx) apply(ts []engine.Transition) error {
	work := make(map[engine.Ref]*pending, len(ts))
	order := make([]*pending, 0, len(ts))
	entries := make([]engine.Entry, 0, len(ts))
	for _, t := range ts {
		p := work[t.Envio]
		if p == nil {
			e, err := w.db.getEnvio(w.tx, t.Envio)
			if err != nil {
				return err
			}
			p = &pending{env: e, before: e}
			work[t.Envio] = p
			order = append(order, p)
		}
		if p.env.State != t.From || !engine.CanTransition(t.From, t.To) {
			return &engine.TransitionError{Envio: t.Envio, From: t.From, To: t.To, Actual: p.env.State}
		}
		at := t.At
		if at.IsZero() {
			at = w.now
		}
		e := &p.env
		e.State, e.Reason, e.UpdatedAt = t.To, t.Reason, w.now
		e.NextAttempt = time.Time{}
		switch t.To {
		case engine.Enviando:
			e.Attempts++
			if e.MsgID == "" {
				e.MsgID = t.MsgID
			} else if e.MsgID != t.MsgID { // an id is forever: a resend is the same message
				return fmt.Errorf("envío %s has message id %s, not %s: %w", t.Envio, e.MsgID, t.MsgID, engine.ErrInvalid)
			}
			if e.Mensaje == "" {
				e.Mensaje = t.Text
			}
		case engine.Pendiente:
			e.NextAttempt = t.NextAttempt
			if e.NextAttempt.IsZero() {
				e.NextAttempt = w.now
			}
			e.NextAttempt = e.NextAttempt.UTC()
		case engine.Enviado:
			e.SentAt = at.UTC()
		}
		entries = append(entries, engine.Entry{
			Time: at.UTC(), Kind: engine.KindTransition, Cliente: e.Cliente, Campaign: t.Envio.Campaign,
			Envio: t.Envio.Seq, From: t.From, To: t.To, MsgID: e.MsgID, Attempt: e.Attempts, Reason: t.Reason,
		})
	}
	// Everything is valid: from here on a failure aborts the transaction.
	for _, p := range order {
		if err := w.writeEnvio(p.before, p.env); err != nil {
			return abort(err)
		}
	}
	for _, e := range entries {
		if err := w.appendEntry(e); err != nil {
			return abort(err)
		}
	}
	return nil
}

// writeEnvio stores env and moves its indexes and counters from before.
func (w *wtx) writeEnvio(before, env engine.Envio) error {
	r := env.Ref
	envios, err := sub(w.tx, bucketEnvios, r.Campaign, false)
	if err != nil || envios == nil {
		return fmt.Errorf("envío %s: bucket missing", r)
	}
	if err := putEnvio(envios, &env); err != nil {
		return err
	}
	// An envío may pass through several states in one batch: indexes move
	// from where before had it to where env has it.
	// due index: pendiente envíos that wait for a retry
	due, err := sub(w.tx, bucketDue, r.Campaign, true)
	if err != nil {
		return err
	}
	if before.State == engine.Pendiente && !before.NextAttempt.IsZero() {
		if err := due.Delete(dueKey(before.NextAttempt.UnixNano(), r.Seq)); err != nil {
			return err
		}
	}
	if env.State == engine.Pendiente {
		if err := due.Put(dueKey(env.NextAttempt.UnixNano(), r.Seq), nil); err != nil {
			return err
		}
	}
	// cursor: the first fresh pendiente moves on once claimed or skipped
	if before.State == engine.Pendiente && before.NextAttempt.IsZero() && !(env.State == engine.Pendiente && env.NextAttempt.IsZero()) {
		cursors := w.tx.Bucket(bucketCursors)
		if cur := max(decodeU64(cursors.Get([]byte(r.Campaign))), 1); cur == r.Seq {
			if err := cursors.Put([]byte(r.Campaign), u64(r.Seq+1)); err != nil {
				return err
			}
		}
	}
	// inflight index: what recovery must resolve
	inflight := w.tx.Bucket(bucketInflight)
	if before.State == engine.Enviando {
		if err := inflight.Delete(refKey(r.Campaign, r.Seq)); err != nil {
			return err
		}
	}
	if env.State == engine.Enviando {
		if err := inflight.Put(refKey(r.Campaign, r.Seq), nil); err != nil {
			return err
		}
		if err := w.tx.Bucket(bucketMsgIDs).Put([]byte(env.MsgID), refKey(r.Campaign, r.Seq)); err != nil {
			return err
		}
	}
	if before.State == env.State {
		return nil
	}
	counts := readCounts(w.tx, r.Campaign)
	counts[before.State]--
	counts[env.State]++
	return writeCounts(w.tx, r.Campaign, counts)
}
