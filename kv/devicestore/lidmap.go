package devicestore

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// LIDMap is the global, 1:1 map between LIDs and phone numbers shared by all
// devices of the file. Both directions are stored (wa.lid2pn, wa.pn2lid) and
// always updated together, so remapping either side drops the other side's
// old pairing. There is no in-memory cache, so it is never stale.
type LIDMap struct{ c *Container }

var (
	_ store.LIDStore        = (*LIDMap)(nil)
	_ store.AllGlobalStores = (*LIDMap)(nil)
)

func checkMapping(lid, pn types.JID) error {
	if lid.Server != types.HiddenUserServer || pn.Server != types.DefaultUserServer {
		return fmt.Errorf("invalid LID mapping %s/%s", lid, pn)
	}
	return nil
}

// PutLIDMapping maps lid to pn (user parts only).
func (m *LIDMap) PutLIDMapping(ctx context.Context, lid, pn types.JID) error {
	if err := checkMapping(lid, pn); err != nil {
		return err
	}
	// Most calls repeat a known mapping: check without a write transaction.
	if cur, err := m.GetLIDForPN(ctx, pn); err == nil && cur.User == lid.User {
		return nil
	}
	err := m.c.write(ctx, func(tx *bbolt.Tx) error { return putMappingTx(tx, lid.User, pn.User) })
	if err != nil {
		return fmt.Errorf("put LID mapping %s/%s: %w", lid, pn, err)
	}
	return nil
}

// PutManyLIDMappings applies the valid mappings in order in one transaction
// (a later conflicting pair wins); invalid pairs are skipped.
func (m *LIDMap) PutManyLIDMappings(ctx context.Context, mappings []store.LIDMapping) error {
	valid := make([]store.LIDMapping, 0, len(mappings))
	for _, mp := range mappings {
		if checkMapping(mp.LID, mp.PN) == nil {
			valid = append(valid, mp)
		}
	}
	if len(valid) == 0 {
		return nil
	}
	err := m.c.update(ctx, func(tx *bbolt.Tx) error {
		for _, mp := range valid {
			if err := putMappingTx(tx, mp.LID.User, mp.PN.User); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put %d LID mappings: %w", len(valid), err)
	}
	return nil
}

func putMappingTx(tx *bbolt.Tx, lid, pn string) error {
	l2p, p2l := tx.Bucket(bucketLID2PN), tx.Bucket(bucketPN2LID)
	if old := p2l.Get([]byte(pn)); old != nil && string(old) != lid {
		if err := l2p.Delete(append([]byte(nil), old...)); err != nil {
			return err
		}
	}
	if old := l2p.Get([]byte(lid)); old != nil && string(old) != pn {
		if err := p2l.Delete(append([]byte(nil), old...)); err != nil {
			return err
		}
	}
	if err := l2p.Put([]byte(lid), []byte(pn)); err != nil {
		return err
	}
	return p2l.Put([]byte(pn), []byte(lid))
}

// GetPNForLID returns the phone-number JID of lid, keeping its device, or an
// empty JID when unknown.
func (m *LIDMap) GetPNForLID(ctx context.Context, lid types.JID) (types.JID, error) {
	if lid.Server != types.HiddenUserServer {
		return types.JID{}, fmt.Errorf("invalid GetPNForLID call with non-LID JID %s", lid)
	}
	return m.lookup(ctx, bucketLID2PN, lid, types.DefaultUserServer)
}

// GetLIDForPN returns the LID of pn, keeping its device, or an empty JID
// when unknown.
func (m *LIDMap) GetLIDForPN(ctx context.Context, pn types.JID) (types.JID, error) {
	if pn.Server != types.DefaultUserServer {
		return types.JID{}, fmt.Errorf("invalid GetLIDForPN call with non-PN JID %s", pn)
	}
	return m.lookup(ctx, bucketPN2LID, pn, types.HiddenUserServer)
}

func (m *LIDMap) lookup(ctx context.Context, bucket []byte, src types.JID, server string) (types.JID, error) {
	var user string
	err := m.c.view(ctx, func(tx *bbolt.Tx) error {
		user = string(tx.Bucket(bucket).Get([]byte(src.User)))
		return nil
	})
	if err != nil || user == "" {
		return types.JID{}, err
	}
	return types.JID{User: user, Device: src.Device, Server: server}, nil
}

// GetManyLIDsForPNs returns the LIDs of the mapped phone numbers (keeping
// each device); non-PN inputs and unknown numbers are absent. nil, nil for
// no input.
func (m *LIDMap) GetManyLIDsForPNs(ctx context.Context, pns []types.JID) (map[types.JID]types.JID, error) {
	if len(pns) == 0 {
		return nil, nil
	}
	out := make(map[types.JID]types.JID, len(pns))
	err := m.c.view(ctx, func(tx *bbolt.Tx) error {
		p2l := tx.Bucket(bucketPN2LID)
		for _, pn := range pns {
			if pn.Server != types.DefaultUserServer {
				continue
			}
			if lid := p2l.Get([]byte(pn.User)); lid != nil {
				out[pn] = types.JID{User: string(lid), Device: pn.Device, Server: types.HiddenUserServer}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get many LIDs: %w", err)
	}
	return out, nil
}
