package kv

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"leadmaster/engine"
)

// exportPage is how many records each read transaction of an export reads.
const exportPage = 1000

// Export formats.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

var csvHeader = []string{"seq", "time", "kind", "cliente", "campana", "envio", "from", "to", "msg_id", "attempt", "reason", "event", "telefono", "first", "last", "digest", "prev"}

// ExportJournal streams the journal records with Seq > after to w as NDJSON
// or CSV, paging in short read transactions.
func (db *DB) ExportJournal(ctx context.Context, w io.Writer, format string, after uint64) error {
	var write func(engine.Entry) error
	var flush func() error
	switch format {
	case FormatNDJSON:
		enc := json.NewEncoder(w)
		write, flush = func(e engine.Entry) error { return enc.Encode(e) }, func() error { return nil }
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		write = func(e engine.Entry) error { return cw.Write(csvRecord(e)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		return fmt.Errorf("export format %q: want ndjson or csv: %w", format, engine.ErrInvalid)
	}
	for {
		page, err := db.JournalPage(ctx, after, exportPage)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, e := range page {
			if err := write(e); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			after = e.Seq
		}
		if err := flush(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if len(page) < exportPage {
			return nil
		}
	}
}

func csvRecord(e engine.Entry) []string {
	num := func(n uint64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatUint(n, 10)
	}
	attempt := ""
	if e.Attempt != 0 {
		attempt = strconv.Itoa(e.Attempt)
	}
	rec := []string{num(e.Seq), e.Time.UTC().Format(time.RFC3339Nano), string(e.Kind), e.Cliente, e.Campaign, num(e.Envio),
		string(e.From), string(e.To), e.MsgID, attempt, e.Reason, e.Event, e.Phone, num(e.FirstSeq), num(e.LastSeq), e.Digest, e.Prev}
	for i, s := range rec {
		rec[i] = NeutralizeCell(s)
	}
	return rec
}

// NeutralizeCell defuses a CSV cell that a spreadsheet would run as a
// formula (leading =, +, -, @, tab or CR) by prefixing a quote.
func NeutralizeCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
