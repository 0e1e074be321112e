// Package sqlimport moves WhatsApp sessions from a whatsmeow SQLite store
// (the file wuzapi and other whatsmeow-based tools keep) into LeadMaster's
// bbolt file, so a number moves without scanning a new QR. It is what
// `leadmaster session import --sqlstore FILE.db` runs.
//
// Wiring in main, with the kv file open and no client connected:
//
//	st, err := sqlimport.ImportFile(ctx, *sqlstorePath, deviceContainer)
//	// st counts the rows copied per table; err wraps devicestore.ErrDeviceExists
//	// or devicestore.ErrVerifyMismatch (then nothing was kept).
//
// The source may be of any sqlstore schema from v8 (whatsmeow 2025, as
// wuzapi and most tools still run it) to v15 (2026-08): it is opened
// read-only and read as it is, never upgraded. For a source older than v15,
// verification compares against a temporary copy (VACUUM INTO, about the
// size of the source, in os.TempDir) upgraded by whatsmeow's own
// migrations, removed afterwards.
//
// It links modernc.org/sqlite, a pure-Go SQLite driver, into the binary.
// Stop the tool that owns the source file first: WhatsApp allows one live
// connection per device, and the source would keep advancing the Signal
// ratchets the import just copied.
package sqlimport

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	"go.mau.fi/whatsmeow/types"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"leadmaster/kv/devicestore"
)

// ImportFile opens the SQLite file at path read-only, copies every device
// into dst in one bbolt transaction (devicestore.ImportSQLStore), then checks
// that every getter answers as on the source (devicestore.VerifyImport).
// When verification fails the imported devices are deleted again.
func ImportFile(ctx context.Context, path string, dst *devicestore.Container) (devicestore.ImportStats, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(5000)"
	src, err := sql.Open("sqlite", dsn)
	if err != nil {
		return devicestore.ImportStats{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer src.Close()
	if err := src.PingContext(ctx); err != nil {
		return devicestore.ImportStats{}, fmt.Errorf("open %s: %w", path, err)
	}
	st, err := dst.ImportSQLStore(ctx, src)
	if err != nil {
		return st, fmt.Errorf("import %s: %w", path, err)
	}
	if verr := dst.VerifyImport(ctx, src); verr != nil {
		if derr := undo(ctx, src, dst); derr != nil {
			return st, fmt.Errorf("verify %s: %w (and undoing the import failed: %v)", path, verr, derr)
		}
		return st, fmt.Errorf("verify %s (import undone): %w", path, verr)
	}
	return st, nil
}

// undo deletes the devices of src from dst.
func undo(ctx context.Context, src *sql.DB, dst *devicestore.Container) error {
	rows, err := src.QueryContext(ctx, `SELECT jid FROM whatsmeow_device`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var jids []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return err
		}
		jids = append(jids, j)
	}
	for _, j := range jids {
		jid, err := types.ParseJID(j)
		if err != nil {
			return err
		}
		d, err := dst.GetDevice(ctx, jid)
		if err != nil {
			return err
		}
		if d != nil {
			if err := dst.DeleteDevice(ctx, d); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}
