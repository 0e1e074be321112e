package kv

import (
	"context"
	"fmt"
	"io"

	"leadmaster/engine"
	"leadmaster/engine/importer"
)

// Upload formats.
const (
	UploadCSV  = "csv"
	UploadJSON = "json"
)

// ImportFile parses an upload (CSV or JSON) and imports its rows into a
// campaign, normalizing phones with the cliente's default region. Rejected
// rows never abort the import; a file-level error (encoding, garbage, a
// line too long, I/O, cancellation) aborts it and nothing of it becomes
// visible. progress, if set, receives bytes read and rows seen.
func (db *DB) ImportFile(ctx context.Context, campaign, format string, r io.Reader, progress func(bytes int64, rows int)) (engine.ImportReport, error) {
	var rep engine.ImportReport
	parse := importer.ParseCSV
	switch format {
	case UploadCSV:
	case UploadJSON:
		parse = importer.ParseJSON
	default:
		return rep, fmt.Errorf("import format %q: want csv or json: %w", format, engine.ErrInvalid)
	}
	c, err := db.Campaign(ctx, campaign)
	if err != nil {
		return rep, err
	}
	cl, err := db.Cliente(ctx, c.Cliente)
	if err != nil {
		return rep, err
	}
	imp, err := db.BeginImport(ctx, campaign)
	if err != nil {
		return rep, err
	}
	defer imp.Abort() // no-op after Commit
	opts := importer.Options{
		DefaultRegion: cl.DefaultRegion,
		Progress:      progress,
		Reject: func(rj importer.Rejected) {
			rep.RejectedCount++
			if len(rep.Rejected) < MaxSkippedReported {
				rep.Rejected = append(rep.Rejected, engine.RejectedRow{Line: rj.Line, Reason: rj.Reason})
			}
		},
	}
	sum, err := parse(ctx, r, opts, func(row importer.Row) error {
		return imp.Add(ctx, NewEnvio{Line: row.Line, Telefono: row.Telefono, Nombre: row.Nombre, Variables: row.Variables})
	})
	merge := func(r engine.ImportReport) engine.ImportReport {
		r.Rows, r.RejectedCount, r.Rejected = sum.Rows, rep.RejectedCount, rep.Rejected
		return r
	}
	if err != nil {
		return merge(imp.Report()), fmt.Errorf("import %s: %w", campaign, err)
	}
	committed, err := imp.Commit(ctx)
	return merge(committed), err
}
