package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// CreateCliente stores a new cliente. ErrConflict if the id exists.
func (db *DB) CreateCliente(ctx context.Context, c engine.Cliente) error {
	if err := engine.ValidateID("cliente", c.ID); err != nil {
		return err
	}
	return db.write(ctx, func(w *wtx) error {
		b := w.tx.Bucket(bucketClientes)
		if b.Get([]byte(c.ID)) != nil {
			return fmt.Errorf("cliente %q: %w", c.ID, engine.ErrConflict)
		}
		if c.CreatedAt.IsZero() {
			c.CreatedAt = w.now
		}
		if err := putJSON(b, []byte(c.ID), c); err != nil {
			return abort(err)
		}
		return abort(w.appendEntry(engine.Entry{Kind: engine.KindCliente, Cliente: c.ID, Event: "created"}))
	})
}

// Cliente returns one cliente.
func (db *DB) Cliente(ctx context.Context, id string) (engine.Cliente, error) {
	var c engine.Cliente
	err := db.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketClientes).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("cliente %q: %w", id, engine.ErrNotFound)
		}
		return json.Unmarshal(v, &c)
	})
	return c, err
}

// Clientes lists every cliente in id order.
func (db *DB) Clientes(ctx context.Context) ([]engine.Cliente, error) {
	var out []engine.Cliente
	err := db.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClientes).ForEach(func(_, v []byte) error {
			var c engine.Cliente
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// CreateCampaign stores a new campaign of an existing cliente, as borrador
// unless a status is given.
func (db *DB) CreateCampaign(ctx context.Context, c engine.Campaign) error {
	if err := engine.ValidateID("campaña", c.ID); err != nil {
		return err
	}
	// A cliente's messages campaign id (engine.MessagesCampaignID) is its
	// own: under another cliente it would refuse its messages for ever.
	if own := engine.MessagesCampaignID(c.Cliente); c.ID != own && strings.HasPrefix(c.ID, "mensajes-") {
		return fmt.Errorf("campaña %q: the prefix \"mensajes-\" is reserved to transactional messages: %w", c.ID, engine.ErrInvalid)
	}
	if c.Status == "" {
		c.Status = engine.Borrador
	}
	c.Visible, c.Cursor = 0, 0
	return db.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bucketClientes).Get([]byte(c.Cliente)) == nil {
			return fmt.Errorf("cliente %q: %w", c.Cliente, engine.ErrNotFound)
		}
		b := w.tx.Bucket(bucketCampaigns)
		if b.Get([]byte(c.ID)) != nil {
			return fmt.Errorf("campaña %q: %w", c.ID, engine.ErrConflict)
		}
		if c.CreatedAt.IsZero() {
			c.CreatedAt = w.now
		}
		if err := putJSON(b, []byte(c.ID), c); err != nil {
			return abort(err)
		}
		if _, err := sub(w.tx, bucketEnvios, c.ID, true); err != nil {
			return abort(err)
		}
		idx, err := sub(w.tx, bucketByCliente, c.Cliente, true)
		if err != nil {
			return abort(err)
		}
		if err := idx.Put([]byte(c.ID), nil); err != nil {
			return abort(err)
		}
		return abort(w.appendEntry(engine.Entry{Kind: engine.KindCampaign, Cliente: c.Cliente, Campaign: c.ID, Event: string(c.Status)}))
	})
}

// Campaign returns one campaign.
func (db *DB) Campaign(ctx context.Context, id string) (engine.Campaign, error) {
	var c engine.Campaign
	err := db.view(ctx, func(tx *bolt.Tx) error {
		var err error
		c, err = getCampaign(tx, id)
		return err
	})
	return c, err
}

// Campaigns lists the campaigns of a cliente (all clientes if empty), in
// id order. A cliente's are read through its index.
func (db *DB) Campaigns(ctx context.Context, cliente string) ([]engine.Campaign, error) {
	var out []engine.Campaign
	err := db.view(ctx, func(tx *bolt.Tx) error {
		if cliente != "" {
			idx, err := sub(tx, bucketByCliente, cliente, false)
			if err != nil || idx == nil {
				return err
			}
			return idx.ForEach(func(k, _ []byte) error {
				c, err := getCampaign(tx, string(k))
				if err != nil {
					return err
				}
				out = append(out, c)
				return nil
			})
		}
		return tx.Bucket(bucketCampaigns).ForEach(func(_, v []byte) error {
			var c engine.Campaign
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			if cliente == "" || c.Cliente == cliente {
				out = append(out, c)
			}
			return nil
		})
	})
	return out, err
}

// UpdateCampaign rewrites a campaign's editable fields (name, template,
// script, schedule, rate) through fn, and journals status changes. Visible
// and the cliente cannot change.
func (db *DB) UpdateCampaign(ctx context.Context, id string, fn func(*engine.Campaign) error) (engine.Campaign, error) {
	var out engine.Campaign
	err := db.write(ctx, func(w *wtx) error {
		c, err := getCampaign(w.tx, id)
		if err != nil {
			return err
		}
		before := c
		if err := fn(&c); err != nil {
			return err
		}
		c.ID, c.Cliente, c.Visible, c.CreatedAt = before.ID, before.Cliente, before.Visible, before.CreatedAt
		if err := putJSON(w.tx.Bucket(bucketCampaigns), []byte(id), c); err != nil {
			return abort(err)
		}
		out = c
		if c.Status != before.Status {
			return abort(w.appendEntry(engine.Entry{Kind: engine.KindCampaign, Cliente: c.Cliente, Campaign: c.ID, Event: string(c.Status)}))
		}
		return nil
	})
	return out, err
}

// Suppression is an entry of a cliente's opt-out list.
type Suppression struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Suppress adds an E.164 phone to a cliente's opt-out list (idempotent).
func (db *DB) Suppress(ctx context.Context, cliente, phone, reason string) error {
	return db.write(ctx, func(w *wtx) error {
		if w.tx.Bucket(bucketClientes).Get([]byte(cliente)) == nil {
			return fmt.Errorf("cliente %q: %w", cliente, engine.ErrNotFound)
		}
		b, err := sub(w.tx, bucketSuppress, cliente, true)
		if err != nil {
			return abort(err)
		}
		if b.Get([]byte(phone)) != nil {
			return nil
		}
		if err := putJSON(b, []byte(phone), Suppression{At: w.now, Reason: reason}); err != nil {
			return abort(err)
		}
		return abort(w.appendEntry(engine.Entry{Kind: engine.KindSuppress, Cliente: cliente, Phone: phone, Reason: reason}))
	})
}

// Suppressed reports whether a phone is on a cliente's opt-out list.
func (db *DB) Suppressed(ctx context.Context, cliente, phone string) (bool, error) {
	var ok bool
	err := db.view(ctx, func(tx *bolt.Tx) error {
		b, err := sub(tx, bucketSuppress, cliente, false)
		ok = err == nil && b != nil && b.Get([]byte(phone)) != nil
		return err
	})
	return ok, err
}

// SetDevice records (or, with jid "", forgets) the WhatsApp device of a
// cliente's session (the session CLI's choice of a stored device).
func (db *DB) SetDevice(ctx context.Context, cliente, jid string) error {
	return db.write(ctx, func(w *wtx) error { return abort(setDevice(w, cliente, jid)) })
}

// SaveSession journals a session event and, if device is not nil, sets the
// cliente's device to it, in one transaction: a pairing or a logout and
// its record cannot part in a crash.
func (db *DB) SaveSession(ctx context.Context, e engine.Entry, device *string) error {
	if e.Kind != engine.KindSession {
		return fmt.Errorf("save session: kind %q: %w", e.Kind, engine.ErrInvalid)
	}
	return db.write(ctx, func(w *wtx) error {
		if device != nil {
			if err := setDevice(w, e.Cliente, *device); err != nil {
				return abort(err)
			}
		}
		return abort(w.appendEntry(e))
	})
}

func setDevice(w *wtx, cliente, jid string) error {
	b := w.tx.Bucket(bucketClientes)
	v := b.Get([]byte(cliente))
	if v == nil {
		return fmt.Errorf("cliente %q: %w", cliente, engine.ErrNotFound)
	}
	var c engine.Cliente
	if err := json.Unmarshal(v, &c); err != nil {
		return fmt.Errorf("cliente %q: %w", cliente, err)
	}
	c.DeviceJID = jid
	return putJSON(b, []byte(cliente), c)
}
