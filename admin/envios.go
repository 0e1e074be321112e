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
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
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
	return "", errorf(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: text/csv, application/json or multipart/form-data with a file part, got %q", ct)
}

// partFormat is the format of a multipart file part: its Content-Type if
// that names CSV or JSON, else its file name's extension (curl -F sends
// application/octet-stream for a .csv, some browsers
// application/vnd.ms-excel).
func partFormat(p *multipart.Part) (string, error) {
	ct := p.Header.Get(fiber.HeaderContentType)
	if f, err := uploadFormat(ct); err == nil {
		return f, nil
	}
	switch strings.ToLower(filepath.Ext(p.FileName())) {
	case ".csv":
		return "csv", nil
	case ".json":
		return "json", nil
	}
	return "", errorf(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "file part %q (Content-Type %q): want a .csv or .json file, or Content-Type text/csv or application/json", p.FileName(), ct)
}

// upload is the file of an envío upload: the raw body, or the file part
// of a multipart/form-data body.
type upload struct {
	format string
	r      io.Reader
	close  func() // the multipart reader's
}

// uploadOf finds the file in the request: the body itself (text/csv,
// application/json), or the one part of a multipart/form-data body that
// has a file name (curl -F file=@contactos.csv); other parts are ignored.
// The body is fasthttp's, in memory and within the route's limit
// (MaxUpload): the part is read from it as the spool file is written.
func uploadOf(c *fiber.Ctx) (upload, error) {
	ct := c.Get(fiber.HeaderContentType)
	mt, params, _ := mime.ParseMediaType(ct)
	if mt != "multipart/form-data" {
		format, err := uploadFormat(ct)
		return upload{format: format, r: bytes.NewReader(c.Body()), close: func() {}}, err
	}
	if params["boundary"] == "" {
		return upload{}, badRequest("multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(c.Body()), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return upload{}, badRequest("the multipart form has no file part: send the file as a part with a file name, e.g. curl -F file=@contactos.csv")
		}
		if err != nil {
			return upload{}, badRequest("malformed multipart body: %v", err)
		}
		if p.FileName() == "" {
			p.Close()
			continue
		}
		format, err := partFormat(p)
		if err != nil {
			p.Close()
			return upload{}, err
		}
		return upload{format: format, r: p, close: func() { p.Close() }}, nil
	}
}

// handleUploadEnvios handles "POST /api/clientes/:id/campaigns/:cid/envios":
// the file (the raw body as CSV or a JSON array, or the file part of a
// multipart/form-data body) is spooled to a file and checked on the way
// for what can be refused at once (empty, not UTF-8, not JSON), then
// imported by a background job; the answer is 202 {"job":"…"}. A file that
// fails later leaves nothing.
func (s *Server) handleUploadEnvios(c *fiber.Ctx) error {
	camp := campaignOf(c)
	if engine.IsMessages(camp) {
		return errorf(fiber.StatusConflict, "conflict", "campaña %q holds the transactional messages: send them with POST /api/clientes/%s/mensajes", camp.ID, camp.Cliente)
	}
	up, err := uploadOf(c)
	if err != nil {
		return err
	}
	defer up.close()
	if camp.Status == engine.Terminada || camp.Status == engine.Cancelada {
		return errorf(fiber.StatusConflict, "conflict", "campaña %q is %s: it takes no more envíos", camp.ID, camp.Status)
	}
	// The upload goes to a file for the background job, not to a second
	// copy in memory: a million-row CSV is tens of megabytes.
	spool, size, err := spoolUpload(s.opts.SpoolDir, up.r, up.format)
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	if err != nil {
		s.log.Error("spool upload", "err", err)
		return errorf(fiber.StatusInsufficientStorage, "no_space", "the upload could not be stored for the import: %v", err)
	}
	format := up.format
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

// spoolUpload copies an upload to a new file in dir (created if needed)
// and returns it open, positioned at its start, with its size. On the way
// the text is checked (textCheck), and a JSON upload must be one array;
// those refusals are *apiError 400, and leave no file. The file is
// unlinked by the job that reads it; leftovers of a crash are removed by
// CleanSpool.
func spoolUpload(dir string, r io.Reader, format string) (*os.File, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (*os.File, int64, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	src, chk := &readErr{r: r}, &textCheck{}
	w := &countWriter{w: io.MultiWriter(chk, f)}
	if format == "json" {
		err = copyJSONArray(w, src)
	} else {
		_, err = io.Copy(w, src)
	}
	switch {
	case src.err != nil: // a malformed multipart body; a write error is the disk's
		return fail(badRequest("the upload could not be read: %v", src.err))
	case chk.err() != nil:
		return fail(chk.err())
	case !chk.nonSpace:
		return fail(badRequest("the file is empty"))
	case err != nil:
		return fail(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, w.n, nil
}

// copyJSONArray copies r to w while checking that it is one JSON array:
// one element at a time, so memory stays bounded by the largest element.
func copyJSONArray(w io.Writer, r io.Reader) error {
	tee := io.TeeReader(r, w)
	dec := json.NewDecoder(tee)
	notJSON := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return badRequest("the body is not valid JSON (want an array of objects)")
		}
		return err
	}
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil // empty: textCheck says so
	}
	if err != nil {
		return notJSON(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return badRequest("the JSON body must be an array of objects")
	}
	for dec.More() {
		var el json.RawMessage
		if err := dec.Decode(&el); err != nil {
			return notJSON(err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return notJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return badRequest("the body is not valid JSON (want one array of objects and nothing after it)")
		}
		return notJSON(err)
	}
	_, err = io.Copy(io.Discard, tee) // whatever the decoder did not read
	return err
}

// errNotText stops a copy at the first byte that is not UTF-8 text.
var errNotText = badRequest("the file is not UTF-8 text (save it as CSV UTF-8)")

// textCheck sees an upload as it is written: valid UTF-8 without NUL
// bytes, and whether anything but white space came.
type textCheck struct {
	nonSpace bool
	bad      bool
	carry    []byte // an incomplete UTF-8 sequence at the end of the last write
}

func (t *textCheck) Write(p []byte) (int, error) {
	if t.bad {
		return 0, errNotText
	}
	if bytes.IndexByte(p, 0) >= 0 {
		t.bad = true
		return 0, errNotText
	}
	if !t.nonSpace && len(bytes.TrimSpace(p)) > 0 {
		t.nonSpace = true
	}
	data := p
	if len(t.carry) > 0 {
		data = append(t.carry, p...)
	}
	cut := len(data) // data[cut:] is a rune cut by the write's end
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(data[:cut]) {
		t.bad = true
		return 0, errNotText
	}
	t.carry = append([]byte(nil), data[cut:]...)
	return len(p), nil
}

// err is the check's verdict once everything was written.
func (t *textCheck) err() error {
	if t.bad || len(t.carry) > 0 {
		return errNotText
	}
	return nil
}

// readErr keeps the error of its reader, to tell it from the spool's.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

// countWriter counts what was written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
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
	st, after, limit, err := envioListQuery(c)
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

// envioListQuery reads a list of envíos' query: ?estado=&after=&limit=
// (100 by default, at most 1000).
func envioListQuery(c *fiber.Ctx) (st engine.State, after uint64, limit int, err error) {
	if v := c.Query("estado"); v != "" {
		if st, err = engine.ParseState(v); err != nil {
			return "", 0, 0, badRequest("query \"estado\": %v", err)
		}
	}
	if after, err = queryUint(c, "after"); err != nil {
		return "", 0, 0, err
	}
	if limit, err = queryLimit(c, 100, 1000); err != nil {
		return "", 0, 0, err
	}
	return st, after, limit, nil
}
