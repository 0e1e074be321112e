package admin

import (
	"bufio"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
)

// handleJournal handles "GET /api/journal?after=&limit=" (admin): the
// records after a sequence number, or the last limit records when after is
// absent (the page's journal tail).
func (s *Server) handleJournal(c *fiber.Ctx) error {
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	after, err := queryUint(c, "after")
	if err != nil {
		return err
	}
	if c.Query("after") == "" {
		es, err := s.data.JournalTail(c.UserContext(), limit)
		if err != nil {
			return err
		}
		return c.JSON(items(es, ""))
	}
	es, err := s.data.JournalPage(c.UserContext(), after, limit)
	if err != nil {
		return err
	}
	next := ""
	if len(es) == limit {
		next = uitoa(es[len(es)-1].Seq)
	}
	return c.JSON(items(es, next))
}

// handleJournalExport handles "GET /api/journal/export?format=ndjson|csv&after="
// (admin): the journal streamed, page by page, never all in memory.
func (s *Server) handleJournalExport(c *fiber.Ctx) error {
	format := c.Query("format", "ndjson")
	ct := "application/x-ndjson"
	switch format {
	case "ndjson":
	case "csv":
		ct = "text/csv; charset=utf-8"
	default:
		return badRequest("query \"format\": want ndjson or csv, got %q", format)
	}
	after, err := queryUint(c, "after")
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ct)
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="leadmaster-journal.%s"`, format))
	ctx := s.ctx
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		if err := s.data.ExportJournal(ctx, w, format, after); err != nil {
			s.log.Error("journal export failed mid-stream", "err", err)
			return
		}
		w.Flush()
	})
	return nil
}

// handleBackup handles "GET /api/backup" (admin): a consistent snapshot of
// the data file (one read transaction), streamed.
func (s *Server) handleBackup(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEOctetStream)
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="leadmaster-%s.db"`, time.Now().UTC().Format("20060102-150405")))
	ctx := s.ctx
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		n, err := s.data.Backup(ctx, w)
		if err != nil {
			s.log.Error("backup failed mid-stream: the client gets a truncated file", "err", err, "bytes", n)
			return
		}
		w.Flush()
		s.log.Info("backup streamed", "bytes", n)
	})
	return nil
}
