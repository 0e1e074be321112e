package devicestore

import "errors"

var (
	// ErrInvalidLength is returned when a stored key, hash or signature has an
	// illegal length, or when a write would store one (sqlstore's CHECKs).
	// It has the same meaning as sqlstore.ErrInvalidLength.
	ErrInvalidLength = errors.New("devicestore: byte array with illegal length")

	// ErrDeviceIDMustBeSet is returned by PutDevice and DeleteDevice for a
	// device whose JID is not known yet (sqlstore.ErrDeviceIDMustBeSet).
	ErrDeviceIDMustBeSet = errors.New("devicestore: device JID must be known before accessing database")

	// ErrDeviceNotFound is returned by writes for a device that is not stored
	// (never saved, or deleted): sqlstore fails these with a foreign-key error.
	ErrDeviceNotFound = errors.New("devicestore: device not found")

	// ErrAppStateVersionMissing is returned by PutAppStateMutationMACs when no
	// version is stored for that patch name (sqlstore: foreign-key error).
	ErrAppStateVersionMissing = errors.New("devicestore: app state version missing")

	// ErrNotNull is returned when a required value is nil (sqlstore: NOT NULL).
	ErrNotNull = errors.New("devicestore: required value is nil")

	// ErrDuplicate is returned by plain inserts that hit an existing key
	// (event buffer, mutation MACs), as sqlstore's primary keys do.
	ErrDuplicate = errors.New("devicestore: duplicate key")

	// ErrOutOfRange is returned for a prekey or signed prekey ID >= 2^24.
	ErrOutOfRange = errors.New("devicestore: value out of range")

	// ErrCorrupt is returned when a stored record cannot be decoded.
	ErrCorrupt = errors.New("devicestore: corrupt record")

	// ErrNewerSchema is returned by New for a file whose device-store schema
	// is newer than this binary knows (a downgrade).
	ErrNewerSchema = errors.New("devicestore: file written by a newer version")

	// ErrTxDone is returned when a ctx is used after the transaction it
	// carries has committed or rolled back.
	ErrTxDone = errors.New("devicestore: transaction already finished")
)

// ErrNotFound is returned by GetOutgoingEvent when no outgoing message with
// that id is kept (sqlstore: sql.ErrNoRows); whatsmeow then cannot answer the
// retry receipt.
var ErrNotFound = errors.New("devicestore: not found")
