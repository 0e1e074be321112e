package devicestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	mathRand "math/rand/v2"
	"time"

	"go.etcd.io/bbolt"
	"go.mau.fi/util/random"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// Container holds every whatsmeow device stored in one bbolt file, and the
// global LID map. It mirrors sqlstore.Container.
type Container struct {
	db  *bbolt.DB
	log waLog.Logger
	gc  *committer

	// LIDMap is the global LID<->phone-number store given to every device.
	LIDMap *LIDMap

	// OnDeleteDevice, when set, runs inside the transaction that deletes a
	// device (after its bucket is gone). An error rolls the deletion back.
	// Use it for the application's own cleanup on logout (for example the
	// cliente's queue), which must not be done in the LoggedOut event
	// handler: whatsmeow dispatches that event concurrently with the delete.
	// Set it before the container is used.
	OnDeleteDevice func(tx *bbolt.Tx, jid types.JID) error

	// NoBatch turns group commit off: every write is its own Update.
	// (Benchmarks and tests use it; there is no reason to in production.)
	// Set it before the container is used.
	NoBatch bool

	// Now is the clock used for event-buffer and retry-buffer timestamps
	// and their purges (sqlstore always uses time.Now). Tests may replace
	// it before the container is used.
	Now func() time.Time
}

var _ store.DeviceContainer = (*Container)(nil)

// maxBatch bounds how many writes one group commit carries (bbolt's default
// MaxBatchSize).
const maxBatch = 1000

// New wraps db, an open bbolt file that may also hold the application's
// buckets, and creates this package's root buckets if they are missing.
// log may be nil.
func New(db *bbolt.DB, log waLog.Logger) (*Container, error) {
	if log == nil {
		log = waLog.Noop
	}
	c := &Container{db: db, log: log, Now: time.Now, gc: &committer{db: db, maxBatch: maxBatch}}
	c.LIDMap = &LIDMap{c: c}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketLID2PN, bucketPN2LID} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 4 {
				return fmt.Errorf("device store schema %x: %w", v, ErrCorrupt)
			}
			got := binary.BigEndian.Uint32(v)
			if got > schemaVersion {
				return fmt.Errorf("device store schema %d, this binary knows %d: %w", got, schemaVersion, ErrNewerSchema)
			}
			if got == schemaVersion {
				return nil
			}
			if err := migrate(tx, got); err != nil {
				return fmt.Errorf("device store schema %d to %d: %w", got, schemaVersion, err)
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion))
	})
	if err != nil {
		return nil, fmt.Errorf("devicestore: init: %w", err)
	}
	return c, nil
}

// DB returns the bbolt file the container writes to.
func (c *Container) DB() *bbolt.DB { return c.db }

// NewDevice returns a new device with fresh keys, as sqlstore does. Nothing
// is stored until PutDevice (pairing calls Device.Save).
func (c *Container) NewDevice() *store.Device {
	d := &store.Device{
		Log:            c.log,
		Container:      c,
		NoiseKey:       keys.NewKeyPair(),
		IdentityKey:    keys.NewKeyPair(),
		RegistrationID: mathRand.Uint32(),
		AdvSecretKey:   random.Bytes(32),
	}
	d.SignedPreKey = d.IdentityKey.CreateSignedPreKey(1)
	return d
}

// PutDevice stores d. A new device is stored whole and gets its buckets; an
// existing one only has its LID, platform, business name, push name and LID
// migration timestamp updated (sqlstore's ON CONFLICT rule). The device's
// stores are wired even when the write fails, as sqlstore does.
func (c *Container) PutDevice(ctx context.Context, d *store.Device) error {
	if d.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	err := c.update(ctx, func(tx *bbolt.Tx) error { return putDeviceTx(tx, d) })
	if !d.Initialized {
		c.initializeDevice(d)
	}
	if err != nil {
		return fmt.Errorf("put device %s: %w", d.ID, err)
	}
	return nil
}

func putDeviceTx(tx *bbolt.Tx, d *store.Device) error {
	name := deviceBucketName(*d.ID)
	b, err := tx.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	rec := d
	if old := b.Get(keyDevice); old != nil {
		prev, err := decodeDevice(old)
		if err != nil {
			return err
		}
		rec = mergeDevice(prev, d)
	}
	v, err := encodeDevice(rec)
	if err != nil {
		return err
	}
	for _, s := range deviceSubBuckets {
		if _, err := b.CreateBucketIfNotExists(s); err != nil {
			return err
		}
	}
	return b.Put(keyDevice, v)
}

func (c *Container) initializeDevice(d *store.Device) {
	s := newStore(c, *d.ID)
	d.Identities = s
	d.Sessions = s
	d.PreKeys = s
	d.SenderKeys = s
	d.AppStateKeys = s
	d.AppState = s
	d.Contacts = s
	d.ChatSettings = s
	d.MsgSecrets = s
	d.PrivacyTokens = s
	d.NCTSalt = s
	d.EventBuffer = s
	d.LIDs = c.LIDMap
	d.Container = c
	d.Initialized = true
}

// GetDevice returns the stored device with this (AD) JID, or nil, nil.
func (c *Container) GetDevice(ctx context.Context, jid types.JID) (*store.Device, error) {
	var d *store.Device
	err := c.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(deviceBucketName(jid))
		if b == nil {
			return nil
		}
		v := b.Get(keyDevice)
		if v == nil {
			return nil
		}
		var err error
		d, err = decodeDevice(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get device %s: %w", jid, err)
	}
	if d != nil {
		d.Log = c.log
		c.initializeDevice(d)
	}
	return d, nil
}

// GetAllDevices returns every stored device, ordered by JID.
func (c *Container) GetAllDevices(ctx context.Context) ([]*store.Device, error) {
	devices := make([]*store.Device, 0)
	err := c.view(ctx, func(tx *bbolt.Tx) error {
		cur := tx.Cursor()
		for k, v := cur.Seek(devicePrefix); k != nil && bytes.HasPrefix(k, devicePrefix); k, v = cur.Next() {
			if v != nil {
				continue // not a bucket
			}
			rec := tx.Bucket(k).Get(keyDevice)
			if rec == nil {
				continue
			}
			d, err := decodeDevice(rec)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			devices = append(devices, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get all devices: %w", err)
	}
	for _, d := range devices {
		d.Log = c.log
		c.initializeDevice(d)
	}
	return devices, nil
}

// GetFirstDevice returns the first stored device, or a new unsaved one when
// there is none.
func (c *Container) GetFirstDevice(ctx context.Context) (*store.Device, error) {
	devices, err := c.GetAllDevices(ctx)
	if err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return c.NewDevice(), nil
	}
	return devices[0], nil
}

// DeleteDevice deletes d and all of its data (sessions, keys, contacts,
// app state, message secrets, privacy tokens, event buffer) in one
// transaction, then runs OnDeleteDevice in it. The global LID map is kept.
func (c *Container) DeleteDevice(ctx context.Context, d *store.Device) error {
	if d.ID == nil {
		return ErrDeviceIDMustBeSet
	}
	jid := *d.ID
	err := c.update(ctx, func(tx *bbolt.Tx) error {
		name := deviceBucketName(jid)
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if c.OnDeleteDevice != nil {
			return c.OnDeleteDevice(tx, jid)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete device %s: %w", jid, err)
	}
	return nil
}

// migrate upgrades a file written at schema from, in the transaction that
// then stores the new version. Version 1 -> 2 adds the retry buffer's
// sub-buckets to every device; its records need no rewrite (see
// schemaVersion), so the session keeps working without a new QR.
func migrate(tx *bbolt.Tx, from uint32) error {
	if from >= 2 {
		return nil
	}
	cur := tx.Cursor()
	for k, v := cur.Seek(devicePrefix); k != nil && bytes.HasPrefix(k, devicePrefix); k, v = cur.Next() {
		if v != nil {
			continue
		}
		dev := tx.Bucket(k)
		for _, s := range deviceSubBuckets {
			if _, err := dev.CreateBucketIfNotExists(s); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	return nil
}
