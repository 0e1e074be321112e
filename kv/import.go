package kv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"

	bolt "go.etcd.io/bbolt"

	"leadmaster/engine"
)

// NewEnvio is one parsed row to import: the phone is already E.164.
type NewEnvio struct {
	Line      int
	Telefono  string
	Nombre    string
	Variables map[string]string
}

// Reasons a row is skipped.
const (
	SkipDuplicate  = "duplicado"
	SkipSuppressed = "suprimido"
)

// ImportReport and Skipped are engine's.
type (
	ImportReport = engine.ImportReport
	Skipped      = engine.Skipped
)

// MaxSkippedReported bounds ImportReport.Skipped.
const MaxSkippedReported = engine.MaxReported

// Import batch sizes (variables so that tests can make them small).
var (
	// importChunk is how many rows are staged per write transaction.
	importChunk = 8192
	// indexRun is how many phone index entries an import holds in memory
	// (a 16-byte slot each in a table kept under 3/4 full) before it sorts
	// them and writes them in key order: inserted in arrival order, a
	// million random phones dirty nearly every page of the index in every
	// transaction.
	indexRun = 1 << 20
	// indexChunk is how many sorted phone index entries are written per
	// write transaction.
	indexChunk = 65536
)

// ErrImportRunning is returned when the campaign already has an import.
var ErrImportRunning = fmt.Errorf("an import into this campaign is already running: %w", engine.ErrConflict)

// Import stages rows in chunks and makes them visible with one final
// commit (Commit). Until then, and forever if the import is aborted or the
// process dies, its rows are invisible; Abort or the next Open removes them.
//
// An Import is used by one goroutine. A full chunk is staged in the
// background while Add fills the next one, so parsing and writing overlap;
// a staging error is returned by a later Add, or by Commit.
type Import struct {
	db       *DB
	campaign string
	cliente  string
	first    uint64 // first staged seq

	buf, spare []NewEnvio // Add fills buf; spare comes back from the stager
	staging    chan error // the chunk being staged, nil if none
	err        error      // the first staging error: the import is dead
	done       bool

	// Owned by the stager while a chunk is staging.
	next uint64 // next seq to assign
	// run holds the phones staged since the index was last written, with
	// their seqs; older phones of the campaign are found in the phone index
	// itself (indexed).
	run     phoneTable
	chunk   map[phoneNum]struct{}
	indexed bool
	digest  hash.Hash
	report  ImportReport
}

// BeginImport starts an import into a campaign that is not finished.
func (db *DB) BeginImport(ctx context.Context, campaign string) (*Import, error) {
	if _, loaded := db.imports.LoadOrStore(campaign, struct{}{}); loaded {
		return nil, fmt.Errorf("campaña %q: %w", campaign, ErrImportRunning)
	}
	imp := &Import{db: db, campaign: campaign, digest: sha256.New(), chunk: map[phoneNum]struct{}{}}
	// A marker with no import running in this process is one whose Abort
	// could not remove its rows (a failed write): remove them now, or this
	// import would inherit their phone index entries.
	var stale bool
	if err := db.view(ctx, func(tx *bolt.Tx) error {
		stale = tx.Bucket(bucketImports).Get([]byte(campaign)) != nil
		return nil
	}); err != nil {
		db.imports.Delete(campaign)
		return nil, fmt.Errorf("begin import: %w", err)
	}
	if stale {
		if err := db.dropStaged(campaign); err != nil {
			db.imports.Delete(campaign)
			return nil, fmt.Errorf("begin import: remove the rows of a failed import: %w", err)
		}
	}
	err := db.write(ctx, func(w *wtx) error {
		c, err := getCampaign(w.tx, campaign)
		if err != nil {
			return err
		}
		if c.Status == engine.Terminada || c.Status == engine.Cancelada {
			return fmt.Errorf("campaña %q is %s: %w", campaign, c.Status, engine.ErrConflict)
		}
		imp.cliente, imp.first, imp.next = c.Cliente, c.Visible+1, c.Visible+1
		imp.indexed = c.Visible > 0
		return abort(w.tx.Bucket(bucketImports).Put([]byte(campaign), u64(imp.first)))
	})
	if err != nil {
		db.imports.Delete(campaign)
		return nil, fmt.Errorf("begin import: %w", err)
	}
	return imp, nil
}

// Add queues one row; every importChunk rows are staged in one transaction.
// The phone must be E.164. ctx must last the whole import: chunks are
// staged with it in the background after Add returns.
func (imp *Import) Add(ctx context.Context, row NewEnvio) error {
	if imp.done {
		return errors.New("import already finished")
	}
	if imp.err != nil {
		return imp.err
	}
	if _, ok := parsePhoneNum(row.Telefono); !ok {
		return fmt.Errorf("line %d: telefono %q is not E.164: %w", row.Line, row.Telefono, engine.ErrInvalid)
	}
	imp.buf = append(imp.buf, row)
	if len(imp.buf) < importChunk {
		return nil
	}
	if err := imp.wait(); err != nil {
		return err
	}
	rows := imp.buf
	imp.buf, imp.spare = imp.spare[:0], nil
	done := make(chan error, 1)
	imp.staging = done
	go func() {
		err := imp.stage(ctx, rows)
		imp.spare = rows
		done <- err
	}()
	return nil
}

// wait waits for the chunk being staged, if any, and returns the import's
// staging error.
func (imp *Import) wait() error {
	if imp.staging != nil {
		if err := <-imp.staging; err != nil && imp.err == nil {
			imp.err = err
		}
		imp.staging = nil
	}
	return imp.err
}

// Report is the report of the rows staged so far.
func (imp *Import) Report() ImportReport {
	imp.wait()
	return imp.report
}

// stage writes rows in one transaction. Skipped duplicates and suppressed
// phones are counted; the import's state changes only after the commit.
func (imp *Import) stage(ctx context.Context, rows []NewEnvio) error {
	if len(rows) == 0 {
		return nil
	}
	type result struct {
		entries []phoneEntry
		skipped []Skipped
	}
	var res result
	// The digest goes on from its state before this chunk, however often
	// the transaction runs.
	before, err := imp.digest.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return fmt.Errorf("import digest: %w", err)
	}
	var row []byte
	err = imp.db.write(ctx, func(w *wtx) error {
		res = result{entries: make([]phoneEntry, 0, len(rows))}
		clear(imp.chunk)
		if err := imp.digest.(encoding.BinaryUnmarshaler).UnmarshalBinary(before); err != nil {
			return abort(err)
		}
		envios, err := sub(w.tx, bucketEnvios, imp.campaign, true)
		if err != nil {
			return abort(err)
		}
		envios.FillPercent = 1 // appends in seq order
		phones, err := sub(w.tx, bucketPhones, imp.cliente, true)
		if err != nil {
			return abort(err)
		}
		suppress, err := sub(w.tx, bucketSuppress, imp.cliente, false)
		if err != nil {
			return abort(err)
		}
		// One allocation for the chunk's keys and values: bbolt keeps them
		// until the commit.
		arena := make([]byte, 0, 128*len(rows))
		seq := imp.next
		for _, r := range rows {
			if suppress != nil && suppress.Get([]byte(r.Telefono)) != nil {
				res.skipped = append(res.skipped, Skipped{Line: r.Line, Telefono: r.Telefono, Reason: SkipSuppressed})
				continue
			}
			num, _ := parsePhoneNum(r.Telefono)
			_, inChunk := imp.chunk[num]
			if inChunk || imp.run.has(num) || imp.indexed && hasPrefix(phones, phonePrefix(r.Telefono, imp.campaign)) {
				res.skipped = append(res.skipped, Skipped{Line: r.Line, Telefono: r.Telefono, Reason: SkipDuplicate})
				continue
			}
			imp.chunk[num] = struct{}{}
			e := engine.Envio{
				Ref: engine.Ref{Campaign: imp.campaign, Seq: seq}, Cliente: imp.cliente,
				Telefono: r.Telefono, Nombre: r.Nombre, Variables: r.Variables,
				State: engine.Pendiente, CreatedAt: w.now, UpdatedAt: w.now,
			}
			start := len(arena)
			arena = binary.BigEndian.AppendUint64(arena, seq)
			if arena, err = appendEnvio(arena, &e); err != nil {
				return abort(err)
			}
			if err := envios.Put(arena[start:start+8:start+8], arena[start+8:len(arena):len(arena)]); err != nil {
				return abort(err)
			}
			row = appendRowDigest(row[:0], &e)
			imp.digest.Write(row)
			res.entries = append(res.entries, phoneEntry{num, seq})
			seq++
		}
		return nil
	})
	if err != nil {
		// The import is dead; the digest is restored all the same.
		if rerr := imp.digest.(encoding.BinaryUnmarshaler).UnmarshalBinary(before); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("stage import rows: %w", err)
	}
	for _, e := range res.entries {
		imp.run.add(e)
	}
	imp.next += uint64(len(res.entries))
	imp.report.Accepted += len(res.entries)
	for _, s := range res.skipped {
		if s.Reason == SkipDuplicate {
			imp.report.Duplicates++
		} else {
			imp.report.Suppressed++
		}
		if len(imp.report.Skipped) < MaxSkippedReported {
			imp.report.Skipped = append(imp.report.Skipped, s)
		}
	}
	if imp.run.len() >= indexRun {
		return imp.writeIndex(ctx)
	}
	return nil
}

// writeIndex writes the run's phone index entries in key order, a chunk
// per transaction, so each page of the index is rewritten about once per
// run instead of once per chunk of rows. The entries of rows not yet
// visible are harmless: readers go through the campaign's visible mark, and
// Abort and the next Open delete them with the staged rows.
func (imp *Import) writeIndex(ctx context.Context) error {
	pending := imp.run.drain()
	for len(pending) > 0 {
		batch := pending[:min(indexChunk, len(pending))]
		err := imp.db.write(ctx, func(w *wtx) error {
			phones, err := sub(w.tx, bucketPhones, imp.cliente, true)
			if err != nil {
				return abort(err)
			}
			phones.FillPercent = 0.9 // mostly ascending inserts
			var buf []byte
			for _, p := range batch {
				buf = p.phone.appendTo(buf[:0])
				if err := phones.Put(phoneKey(string(buf), imp.campaign, p.seq), nil); err != nil {
					return abort(err)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("write phone index: %w", err)
		}
		pending = pending[len(batch):]
	}
	imp.indexed = true
	return nil
}

// hasPrefix reports whether b has a key starting with prefix.
func hasPrefix(b *bolt.Bucket, prefix []byte) bool {
	k, _ := b.Cursor().Seek(prefix)
	return k != nil && bytes.HasPrefix(k, prefix)
}

// Commit stages what is left and makes the whole import visible in one
// transaction, with its journal record. On error the import is aborted.
func (imp *Import) Commit(ctx context.Context) (ImportReport, error) {
	if imp.done {
		return imp.report, errors.New("import already finished")
	}
	err := imp.wait()
	if err == nil {
		err = imp.stage(ctx, imp.buf)
	}
	if err == nil {
		err = imp.writeIndex(ctx)
	}
	if err != nil {
		imp.Abort()
		return imp.report, err
	}
	last := imp.next - 1
	err = imp.db.write(ctx, func(w *wtx) error {
		c, err := getCampaign(w.tx, imp.campaign)
		if err != nil {
			return err
		}
		// Cancelled or finished while the file was read: its envíos would
		// stay pendiente for ever.
		if c.Status == engine.Terminada || c.Status == engine.Cancelada {
			return fmt.Errorf("campaña %q became %s during the import: %w", c.ID, c.Status, engine.ErrConflict)
		}
		if imp.report.Accepted == 0 {
			return abort(w.tx.Bucket(bucketImports).Delete([]byte(imp.campaign)))
		}
		c.Visible = last
		if err := putJSON(w.tx.Bucket(bucketCampaigns), []byte(c.ID), c); err != nil {
			return abort(err)
		}
		counts := readCounts(w.tx, c.ID)
		counts[engine.Pendiente] += uint64(imp.report.Accepted)
		if err := writeCounts(w.tx, c.ID, counts); err != nil {
			return abort(err)
		}
		if err := w.tx.Bucket(bucketImports).Delete([]byte(imp.campaign)); err != nil {
			return abort(err)
		}
		return abort(w.appendEntry(engine.Entry{
			Kind: engine.KindImport, Cliente: c.Cliente, Campaign: c.ID,
			FirstSeq: imp.first, LastSeq: last, Digest: hex.EncodeToString(imp.digest.Sum(nil)),
			Reason: fmt.Sprintf("aceptados=%d duplicados=%d suprimidos=%d", imp.report.Accepted, imp.report.Duplicates, imp.report.Suppressed),
		}))
	})
	if err != nil {
		imp.Abort()
		return imp.report, fmt.Errorf("commit import: %w", err)
	}
	imp.done = true
	imp.db.imports.Delete(imp.campaign)
	if imp.report.Accepted > 0 {
		imp.report.FirstSeq, imp.report.LastSeq = imp.first, last
	}
	return imp.report, nil
}

// Abort removes the staged rows. It is safe to call after Commit (no-op).
func (imp *Import) Abort() {
	if imp.done {
		return
	}
	imp.wait()
	imp.done = true
	defer imp.db.imports.Delete(imp.campaign)
	if err := imp.db.dropStaged(imp.campaign); err != nil {
		imp.db.log.Error("import abort: staged rows stay until the next open", "campaign", imp.campaign, "err", err)
	}
}

// cleanStaleImports removes the staged rows of imports that never committed.
func (db *DB) cleanStaleImports() error {
	var stale []string
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImports).ForEach(func(k, _ []byte) error {
			stale = append(stale, string(k))
			return nil
		})
	}); err != nil {
		return err
	}
	for _, c := range stale {
		db.log.Warn("removing the staged rows of an import that did not finish", "campaign", c)
		if err := db.dropStaged(c); err != nil {
			return fmt.Errorf("clean import of %q: %w", c, err)
		}
	}
	return nil
}

// dropStaged deletes the envíos above the campaign's Visible mark and their
// phone index entries, in bounded transactions, then the import marker.
func (db *DB) dropStaged(campaign string) error {
	ctx := context.Background()
	for {
		var more bool
		err := db.write(ctx, func(w *wtx) error {
			c, err := getCampaign(w.tx, campaign)
			if err != nil {
				return err
			}
			envios, err := sub(w.tx, bucketEnvios, campaign, false)
			if err != nil || envios == nil {
				return abort(w.tx.Bucket(bucketImports).Delete([]byte(campaign)))
			}
			phones, err := sub(w.tx, bucketPhones, c.Cliente, true)
			if err != nil {
				return abort(err)
			}
			cur := envios.Cursor()
			n := 0
			for k, v := cur.Seek(u64(c.Visible + 1)); k != nil; k, v = cur.Seek(u64(c.Visible + 1)) {
				if n == importChunk {
					more = true
					return nil
				}
				phone, err := decodeEnvioPhone(v)
				if err != nil {
					return abort(fmt.Errorf("staged envío: %w", err))
				}
				seq := binary.BigEndian.Uint64(k)
				if err := phones.Delete(phoneKey(phone, campaign, seq)); err != nil {
					return abort(err)
				}
				if err := envios.Delete(k); err != nil {
					return abort(err)
				}
				n++
			}
			more = false
			return abort(w.tx.Bucket(bucketImports).Delete([]byte(campaign)))
		})
		if err != nil || !more {
			return err
		}
	}
}

// appendRowDigest appends what an import digest hashes of a row: its
// immutable fields.
func appendRowDigest(b []byte, e *engine.Envio) []byte {
	b = binary.BigEndian.AppendUint64(b, e.Ref.Seq)
	b = append(append(b, e.Telefono...), 0)
	b = append(append(b, e.Nombre...), 0)
	keys := make([]string, 0, len(e.Variables))
	for k := range e.Variables {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = append(append(append(append(b, k...), '='), e.Variables[k]...), 0)
	}
	return b
}
