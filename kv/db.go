package kv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"leadmaster/engine"
)

// FileName is the name of the data file inside the data directory.
const FileName = "leadmaster.db"

var _ engine.Store = (*DB)(nil)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("the data file is in use by another process (is leadmaster serve running?)")

// Options tune Open. The zero value is ready for use.
type Options struct {
	// LockTimeout bounds the wait for the file lock. Default 1s.
	LockTimeout time.Duration
	// Serial turns group commit off: one bbolt transaction per write. Only
	// for benchmarks that compare the two.
	Serial bool
	// MaxBatch caps how many writes share one transaction. Default 1024.
	MaxBatch int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ReadOnly opens the file with a shared lock for reading only (journal
	// verify and export): no migration, no recovery, and writes fail.
	ReadOnly bool
}

// ErrReadOnly is returned by writes on a file opened ReadOnly.
var ErrReadOnly = errors.New("kv: opened read-only")

// DB is the open data file.
type DB struct {
	bolt   *bolt.DB
	opts   Options
	log    *slog.Logger
	secret []byte

	head [sha256.Size]byte // hash of the last journal payload; owned by the writer

	mu      sync.RWMutex // guards closed; writers hold it shared while enqueuing
	closed  bool
	reqs    chan *writeReq
	done    chan struct{}
	serial  sync.Mutex // one writer at a time in Serial mode
	imports sync.Map   // campaign -> struct{}: imports running in this process
	visible sync.Map   // campaign -> visibleMark: its decoded visible mark
}

// Open opens (creating it if needed) DATA/leadmaster.db in dir, migrates the
// schema, creates the per-install secret once, and removes the staged rows
// of imports that never committed.
func Open(dir string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{bolt: bdb, opts: opts, log: opts.Logger, reqs: make(chan *writeReq, opts.MaxBatch), done: make(chan struct{})}
	if opts.ReadOnly {
		db.closed = true // no writer: every write is refused
		close(db.done)
		if err := db.load(); err != nil {
			bdb.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return db, nil
	}
	if err := db.init(); err != nil {
		bdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	go db.runWriter()
	if err := db.cleanStaleImports(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// load reads the secret and journal head of a file opened read-only.
func (db *DB) load() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("not a leadmaster data file (bucket %s missing)", bucketMeta)
		}
		if v := decodeU64(meta.Get(keySchema)); v != schemaVersion {
			return fmt.Errorf("schema version %d, this leadmaster reads %d: open the file once read-write with this version (serve, import) to migrate it", v, schemaVersion)
		}
		for _, name := range rootBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("not a leadmaster data file (bucket %s missing)", name)
			}
		}
		db.secret = append([]byte(nil), meta.Get(keySecret)...)
		return nil
	})
}

// init creates the buckets, migrates, and loads the secret and journal head.
func (db *DB) init() error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range rootBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		version := uint64(schemaVersion)
		if v := meta.Get(keySchema); v != nil {
			version = decodeU64(v)
		}
		if version > schemaVersion {
			return fmt.Errorf("schema version %d is newer than this leadmaster (%d): upgrade the binary", version, schemaVersion)
		}
		for ; version < schemaVersion; version++ {
			if err := migrations[version](tx); err != nil {
				return fmt.Errorf("migrate schema %d -> %d: %w", version, version+1, err)
			}
		}
		if err := meta.Put(keySchema, u64(schemaVersion)); err != nil {
			return err
		}
		if s := meta.Get(keySecret); s != nil {
			db.secret = append([]byte(nil), s...)
		} else {
			db.secret = make([]byte, 32)
			if _, err := rand.Read(db.secret); err != nil {
				return fmt.Errorf("secret: %w", err)
			}
			if err := meta.Put(keySecret, db.secret); err != nil {
				return err
			}
		}
		if _, v := tx.Bucket(bucketJournal).Cursor().Last(); v != nil {
			copy(db.head[:], v[:sha256.Size])
		}
		return nil
	})
}

// Close stops the writer after the writes already enqueued and closes the file.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.opts.ReadOnly {
		db.mu.Unlock()
		return db.bolt.Close()
	}
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.reqs)
	db.mu.Unlock()
	<-db.done
	return db.bolt.Close()
}

// Bolt exposes the file to the whatsmeow device store, which keeps its own
// "wa." buckets in it.
func (db *DB) Bolt() *bolt.DB { return db.bolt }

// Secret is the per-install secret (message ids, tokens). Do not modify.
func (db *DB) Secret() []byte { return db.secret }

// Path is the file's path.
func (db *DB) Path() string { return db.bolt.Path() }

// view runs a read transaction; ctx is checked before it starts.
func (db *DB) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return db.bolt.View(fn)
}
