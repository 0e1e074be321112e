package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
)

// Import job states.
const (
	jobRunning = "running"
	jobDone    = "done"
	jobFailed  = "failed"
)

// job is one envío upload being imported in the background.
type job struct {
	ID       string
	Cliente  string
	Campaign string
	bytes    atomic.Int64
	rows     atomic.Int64
	done     chan struct{} // closed when the job has finished

	mu     sync.Mutex
	state  string
	report engine.ImportReport
	err    string
}

// jobView is the answer of GET …/imports/:job.
type jobView struct {
	Job      string              `json:"job"`
	Campaign string              `json:"campana"`
	State    string              `json:"state"`
	Bytes    int64               `json:"bytes"`
	Total    int64               `json:"total"`
	Rows     int64               `json:"rows"`
	Report   engine.ImportReport `json:"report"`
	Error    string              `json:"error,omitempty"`
}

type jobs struct {
	mu    sync.Mutex
	byID  map[string]*job
	order []string // oldest first; finished jobs beyond maxJobs are forgotten
	total map[string]int64
}

const maxJobs = 1000

func newJobs() *jobs { return &jobs{byID: map[string]*job{}, total: map[string]int64{}} }

func (js *jobs) add(j *job, total int64) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.byID[j.ID] = j
	js.total[j.ID] = total
	js.order = append(js.order, j.ID)
	for len(js.order) > maxJobs {
		old := js.byID[js.order[0]]
		old.mu.Lock()
		running := old.state == jobRunning
		old.mu.Unlock()
		if running {
			break
		}
		delete(js.byID, js.order[0])
		delete(js.total, js.order[0])
		js.order = js.order[1:]
	}
}

func (js *jobs) get(id string) (*job, int64) {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.byID[id], js.total[id]
}

func (js *jobs) running() int {
	js.mu.Lock()
	defer js.mu.Unlock()
	n := 0
	for _, j := range js.byID {
		j.mu.Lock()
		if j.state == jobRunning {
			n++
		}
		j.mu.Unlock()
	}
	return n
}

func (j *job) view(total int64) jobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	return jobView{Job: j.ID, Campaign: j.Campaign, State: j.state, Bytes: j.bytes.Load(), Total: total, Rows: j.rows.Load(), Report: j.report, Error: j.err}
}

// uploadFormat maps the Content-Type of an upload to the store's format.
func uploadFormat(ct string) (string, error) {
	mt, _, _ := mime.ParseMediaType(ct)
	switch mt {
	case "text/csv", "application/csv":
		return "csv", nil
	case fiber.MIMEApplicationJSON:
		return "json", nil
	}
	return "", errorf(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: text/csv or application/json, got %q", ct)
}

// handleUploadEnvios handles "POST /api/clientes/:id/campaigns/:cid/envios":
// the body (CSV or a JSON array) is checked for what can be refused at
// once (empty, not UTF-8, not JSON), then imported by a background job;
// the answer is 202 {"job":"…"}. A file that fails later leaves nothing.
func (s *Server) handleUploadEnvios(c *fiber.Ctx) error {
	camp := campaignOf(c)
	format, err := uploadFormat(c.Get(fiber.HeaderContentType))
	if err != nil {
		return err
	}
	body := c.Body() // valid until the handler returns: the job reads a spooled copy
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return badRequest("the file is empty")
	case !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0:
		return badRequest("the file is not UTF-8 text (save it as CSV UTF-8)")
	case format == "json" && !json.Valid(body):
		return badRequest("the body is not valid JSON (want an array of objects)")
	case format == "json" && bytes.TrimSpace(body)[0] != '[':
		return badRequest("the JSON body must be an array of objects")
	}
	if camp.Status == engine.Terminada || camp.Status == engine.Cancelada {
		return errorf(fiber.StatusConflict, "conflict", "campaña %q is %s: it takes no more envíos", camp.ID, camp.Status)
	}
	// The upload goes to a file for the background job, not to a second
	// copy in memory: a million-row CSV is tens of megabytes.
	spool, err := spoolUpload(s.opts.SpoolDir, body)
	if err != nil {
		s.log.Error("spool upload", "err", err)
		return errorf(fiber.StatusInsufficientStorage, "no_space", "the upload could not be stored for the import: %v", err)
	}
	size := int64(len(body))
	id := make([]byte, 8)
	rand.Read(id)
	j := &job{ID: hex.EncodeToString(id), Cliente: camp.Cliente, Campaign: camp.ID, state: jobRunning, done: make(chan struct{})}
	s.jobs.add(j, size)
	started := s.goTracked(func() {
		s.met.importsRunning.Inc()
		defer s.met.importsRunning.Dec()
		defer close(j.done)
		defer os.Remove(spool.Name())
		defer spool.Close()
		rep, err := s.data.ImportFile(s.ctx, camp.ID, format, spool, func(b int64, rows int) {
			j.bytes.Store(b)
			j.rows.Store(int64(rows))
		})
		j.mu.Lock()
		j.report = rep
		if err != nil {
			j.state, j.err = jobFailed, importMessage(err)
		} else {
			j.state = jobDone
			j.bytes.Store(size)
		}
		j.mu.Unlock()
		if err == nil {
			s.met.importedRows.Add(float64(rep.Accepted))
			s.eng.NotifyImported(camp.Cliente)
		} else if !errors.Is(err, engine.ErrInvalid) {
			s.log.Info("import failed", "campaign", camp.ID, "job", j.ID, "err", err)
		}
	})
	if !started {
		spool.Close()
		os.Remove(spool.Name())
		close(j.done)
		return errorf(fiber.StatusServiceUnavailable, "unavailable", "the server is shutting down")
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"job": j.ID})
}

// spoolUpload writes an upload to a new file in dir (created if needed)
// and returns it open, positioned at its start. The file is unlinked by the
// job that reads it; leftovers of a crash are removed by CleanSpool.
func spoolUpload(dir string, body []byte) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

const spoolPattern = "upload-*.part"

// CleanSpool removes the uploads a previous process left in dir (it died
// during their import, which left nothing of them in the data file).
func CleanSpool(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// importMessage is the operator's text of a failed import.
func importMessage(err error) string {
	if ae, ok := toAPIError(err); ok && ae.Status != fiber.StatusInternalServerError {
		return ae.Message
	}
	return err.Error()
}

// handleImportJob handles "GET /api/clientes/:id/imports/:job".
func (s *Server) handleImportJob(c *fiber.Ctx) error {
	j, total := s.jobs.get(c.Params("job"))
	if j == nil || j.Cliente != c.Params("id") {
		return errorf(fiber.StatusNotFound, "not_found", "import job %q not found", c.Params("job"))
	}
	return c.JSON(j.view(total))
}

// envioView is an envío in a listing, with its sequence number.
type envioView struct {
	Seq uint64 `json:"seq"`
	engine.Envio
}

// handleListEnvios handles "GET …/campaigns/:cid/envios?estado=&telefono=&after=&limit=".
func (s *Server) handleListEnvios(c *fiber.Ctx) error {
	var st engine.State
	if v := c.Query("estado"); v != "" {
		var err error
		if st, err = engine.ParseState(v); err != nil {
			return badRequest("query \"estado\": %v", err)
		}
	}
	after, err := queryUint(c, "after")
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	camp := campaignOf(c)
	var es []engine.Envio
	if tel := c.Query("telefono"); tel != "" { // search: one phone's envíos of this campaign
		if !validE164(tel) {
			return badRequest("query \"telefono\": want E.164, e.g. +5491122334455, got %q", tel)
		}
		all, err := s.data.EnviosByPhone(c.UserContext(), camp.Cliente, tel)
		if err != nil {
			return err
		}
		for _, e := range all {
			if e.Ref.Campaign == camp.ID && e.Ref.Seq > after && (st == "" || e.State == st) && len(es) < limit {
				es = append(es, e)
			}
		}
	} else {
		var err error
		if es, err = s.data.Envios(c.UserContext(), camp.ID, after, limit, st); err != nil {
			return err
		}
	}
	out := make([]envioView, len(es))
	for i, e := range es {
		out[i] = envioView{Seq: e.Ref.Seq, Envio: e}
	}
	next := ""
	if len(es) == limit {
		next = uitoa(es[len(es)-1].Ref.Seq)
	}
	return c.JSON(items(out, next))
}
