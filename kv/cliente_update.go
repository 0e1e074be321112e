package kv

import (
	"context"
	"encoding/json"
	"fmt"

	"leadmaster/engine"
)

// UpdateCliente rewrites a cliente's editable fields (name, default
// region) through fn; the id, creation time and device cannot change. It is
// not journaled: the journal records what was sent and why, and neither
// field changes an envío (a region only applies to later imports).
func (db *DB) UpdateCliente(ctx context.Context, id string, fn func(*engine.Cliente) error) (engine.Cliente, error) {
	var out engine.Cliente
	err := db.write(ctx, func(w *wtx) error {
		b := w.tx.Bucket(bucketClientes)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("cliente %q: %w", id, engine.ErrNotFound)
		}
		var c engine.Cliente
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("cliente %q: %w", id, err)
		}
		before := c
		if err := fn(&c); err != nil {
			return err
		}
		c.ID, c.CreatedAt, c.DeviceJID = before.ID, before.CreatedAt, before.DeviceJID
		out = c
		return abort(putJSON(b, []byte(id), c))
	})
	return out, err
}
