package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"leadmaster/engine"
)

// Store is the persistence the admin API reads and writes. kv.DB implements
// it; every method returns engine's sentinel errors (ErrNotFound,
// ErrConflict, ErrInvalid) wrapped with %w.
type Store interface {
	CreateCliente(ctx context.Context, c engine.Cliente) error
	Cliente(ctx context.Context, id string) (engine.Cliente, error)
	Clientes(ctx context.Context) ([]engine.Cliente, error)
	// UpdateCliente edits name and region (not the id or the device).
	UpdateCliente(ctx context.Context, id string, fn func(*engine.Cliente) error) (engine.Cliente, error)
	CreateCampaign(ctx context.Context, c engine.Campaign) error
	Campaign(ctx context.Context, id string) (engine.Campaign, error)
	Campaigns(ctx context.Context, cliente string) ([]engine.Campaign, error)
	UpdateCampaign(ctx context.Context, id string, fn func(*engine.Campaign) error) (engine.Campaign, error)
	// ImportFile imports an upload ("csv" or "json"); a file-level failure
	// leaves nothing behind.
	ImportFile(ctx context.Context, campaign, format string, r io.Reader, progress func(bytes int64, rows int)) (engine.ImportReport, error)
	Envios(ctx context.Context, campaign string, after uint64, limit int, state engine.State) ([]engine.Envio, error)
	// EnviosByPhone finds a cliente's envíos to an E.164 phone (search).
	EnviosByPhone(ctx context.Context, cliente, phone string) ([]engine.Envio, error)
	ClienteReplies(ctx context.Context, cliente string, after uint64, limit int) ([]engine.StoredReply, error)
	JournalPage(ctx context.Context, after uint64, limit int) ([]engine.Entry, error)
	JournalTail(ctx context.Context, n int) ([]engine.Entry, error)
	// ExportJournal streams records with Seq > after as "ndjson" or "csv".
	ExportJournal(ctx context.Context, w io.Writer, format string, after uint64) error
	// Backup streams a consistent snapshot of the data file.
	Backup(ctx context.Context, w io.Writer) (int64, error)
	Credentials
}

// Credentials stores the hashes of the admin token and of the per-cliente
// API keys (SHA-256; the secrets themselves are never stored).
type Credentials interface {
	// AdminTokenHash is nil when no admin token was generated yet.
	AdminTokenHash(ctx context.Context) ([]byte, error)
	// SetAdminTokenHash stores the first one; ErrConflict afterwards.
	SetAdminTokenHash(ctx context.Context, hash []byte) error
	// CreateAPIKey stores a key's hash for a cliente; ErrNotFound if the
	// cliente does not exist.
	CreateAPIKey(ctx context.Context, cliente string, hash []byte) error
	// APIKeyCliente resolves a key's hash; ErrNotFound if unknown.
	APIKeyCliente(ctx context.Context, hash []byte) (string, error)
	// APIKeys lists a cliente's keys by id (a prefix of the hash).
	APIKeys(ctx context.Context, cliente string) (ids []string, created []time.Time, err error)
	// RevokeAPIKey deletes one; ErrNotFound if the cliente has no such key.
	RevokeAPIKey(ctx context.Context, cliente, id string) error
}

// Options configure New. Engine and Data are required.
type Options struct {
	Engine *engine.Engine
	Data   Store
	// Sessions controls the WhatsApp sessions; nil answers the session
	// routes with 503.
	Sessions engine.Sessions
	// UI is the page (assets.FS), served at / with index.html; nil serves
	// no page.
	UI fs.FS
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// AdminToken is the admin token in clear (LEADMASTER_ADMIN_TOKEN).
	// Empty: the stored hash is used, and on the very first start a token
	// is generated, its hash stored and the token logged once.
	AdminToken string
	// DemoScan, if set, enables POST /api/demo/scan: the simulated phone
	// scans the cliente's current QR.
	DemoScan func(ctx context.Context, cliente string) error
	// MaxBody bounds JSON and script bodies (default 1 MiB); MaxUpload
	// bounds envío uploads (default 64 MiB).
	MaxBody, MaxUpload int
	// QRTimeout is the default and MaxQRTimeout the largest wait of the QR
	// route (defaults 20s and 60s).
	QRTimeout, MaxQRTimeout time.Duration
	// Heartbeat is the SSE comment interval (default 15s); StatsInterval
	// the most often a stream sends a campaign's counters (default 1s).
	Heartbeat, StatsInterval time.Duration
	// EventBuffer is how many live events one SSE stream may fall behind
	// before it loses some (default 256).
	EventBuffer int
	// SpoolDir holds uploads while their import runs (default: the
	// system's temporary directory; the appliance uses DATA/uploads).
	SpoolDir string
	// LockoutAfter bad tokens from one address lock it out for
	// LockoutBase, doubling per further failure up to LockoutMax
	// (defaults 5, 1s, 5m).
	LockoutAfter            int
	LockoutBase, LockoutMax time.Duration
	// PublicMetrics serves /metrics without a token (for a scraper on a
	// private network). Default: admin token required.
	PublicMetrics bool
	// Now is the clock of the lockout (default time.Now).
	Now func() time.Time

	// Outbox enables outgoing webhooks (nil: the webhook routes answer
	// 503). WebhookClient defaults to an http.Client; WebhookClock (the
	// retry timers) to engine.SystemClock; retries back off from
	// WebhookBackoffBase (default 1s) to WebhookBackoffMax (default 5m).
	Outbox                                Outbox
	WebhookClient                         *http.Client
	WebhookClock                          engine.Clock
	WebhookBackoffBase, WebhookBackoffMax time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxUpload <= 0 {
		o.MaxUpload = 64 << 20
	}
	if o.MaxUpload < o.MaxBody {
		o.MaxUpload = o.MaxBody
	}
	if o.QRTimeout <= 0 {
		o.QRTimeout = 20 * time.Second
	}
	if o.MaxQRTimeout <= 0 {
		o.MaxQRTimeout = 60 * time.Second
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 256
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = time.Second
	}
	if o.LockoutAfter <= 0 {
		o.LockoutAfter = 5
	}
	if o.LockoutBase <= 0 {
		o.LockoutBase = time.Second
	}
	if o.LockoutMax <= 0 {
		o.LockoutMax = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WebhookClient == nil {
		o.WebhookClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.WebhookClock == nil {
		o.WebhookClock = engine.SystemClock{}
	}
	if o.WebhookBackoffBase <= 0 {
		o.WebhookBackoffBase = time.Second
	}
	if o.WebhookBackoffMax <= 0 {
		o.WebhookBackoffMax = 5 * time.Minute
	}
}

// Server is the admin HTTP server.
type Server struct {
	opts   Options
	eng    *engine.Engine
	data   Store
	sess   engine.Sessions
	log    *slog.Logger
	app    *fiber.App
	auth   *authenticator
	jobs   *jobs
	met    *metrics
	owners sync.Map    // campaign id -> cliente id (never changes)
	disp   *dispatcher // nil without an Outbox

	ctx    context.Context // ends at Close: import jobs and streams stop
	cancel context.CancelFunc
	mu     sync.Mutex // guards closed and wg.Add
	closed bool
	wg     sync.WaitGroup // import jobs and SSE streams
}

// New builds the server: the admin token is resolved (and generated on the
// first start), the routes are registered. Call Close when done (Listen
// does it on return).
func New(opts Options) (*Server, error) {
	if opts.Engine == nil || opts.Data == nil {
		return nil, errors.New("admin: Engine and Data are required")
	}
	opts.defaults()
	s := &Server{opts: opts, eng: opts.Engine, data: opts.Data, sess: opts.Sessions, log: opts.Logger}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	auth, err := newAuthenticator(s.ctx, opts)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.auth = auth
	s.jobs = newJobs()
	s.met = newMetrics(s)
	s.app = fiber.New(fiber.Config{
		Immutable:             true, // handlers may keep strings from the Ctx (STYLE "What to avoid" 3)
		ErrorHandler:          s.handleError,
		BodyLimit:             opts.MaxUpload,
		DisableStartupMessage: true,
		AppName:               "leadmaster",
		ReadTimeout:           2 * time.Minute,
		IdleTimeout:           2 * time.Minute,

		// Multipart bodies stay in memory like the others: the envíos
		// route reads their file part into its spool file (envios.go).
		DisablePreParseMultipartForm: true,
	})
	s.routes()
	if opts.Outbox != nil {
		s.disp = &dispatcher{s: s, out: opts.Outbox, client: opts.WebhookClient, clock: opts.WebhookClock,
			base: opts.WebhookBackoffBase, max: opts.WebhookBackoffMax, retry: map[string]retryState{},
			wake: make(chan struct{}, 1), rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
		s.goTracked(func() { s.disp.run(s.ctx) })
	}
	return s, nil
}

// routes is the whole route table (documented in openapi.json; a test
// checks that both agree).
func (s *Server) routes() {
	app := s.app
	app.Use(s.recoverPanic, s.logRequests, securityHeaders)

	app.Get("/healthz", s.handleHealthz)
	app.Get("/readyz", s.handleReadyz)
	app.Get("/metrics", s.authMetrics, s.handleMetrics)
	app.Get("/api/openapi.json", s.handleOpenAPI)

	api := app.Group("/api", s.authenticate, s.limitBody)
	api.Get("/me", s.handleMe)
	api.Get("/events", s.handleEvents)
	api.Get("/journal", adminOnly, s.handleJournal)
	api.Get("/journal/export", adminOnly, s.handleJournalExport)
	api.Get("/backup", adminOnly, s.handleBackup)
	if s.opts.DemoScan != nil {
		api.Post("/demo/scan", s.handleDemoScan)
	}

	api.Get("/clientes", s.handleListClientes)
	api.Post("/clientes", adminOnly, s.handleCreateCliente)
	cl := api.Group("/clientes/:id", s.ownCliente)
	cl.Get("", s.handleGetCliente)
	cl.Patch("", adminOnly, s.handlePatchCliente)
	cl.Get("/keys", adminOnly, s.handleListKeys)
	cl.Post("/keys", adminOnly, s.handleCreateKey)
	cl.Delete("/keys/:kid", adminOnly, s.handleRevokeKey)
	cl.Get("/replies", s.handleReplies)
	cl.Get("/imports/:job", s.handleImportJob)
	cl.Get("/webhook", s.handleGetWebhook)
	cl.Put("/webhook", s.handlePutWebhook)

	cl.Get("/session", s.handleSession)
	cl.Get("/session/qr", s.handleSessionQR)
	cl.Post("/session/start", s.handleSessionStart)
	cl.Post("/session/pair", s.handleSessionPair)
	cl.Post("/session/logout", s.handleSessionLogout)

	cl.Post("/mensajes", s.handleSendMessage)
	cl.Get("/mensajes", s.handleListMessages)
	cl.Get("/mensajes/:mid", s.handleGetMessage)

	cl.Get("/campaigns", s.handleListCampaigns)
	cl.Post("/campaigns", s.handleCreateCampaign)
	cp := cl.Group("/campaigns/:cid", s.ownCampaign)
	cp.Get("", s.handleGetCampaign)
	cp.Patch("", s.handlePatchCampaign)
	cp.Put("/script", s.handlePutScript)
	cp.Post("/start", s.handleLifecycle(s.eng.StartCampaign))
	cp.Post("/pause", s.handleLifecycle(s.eng.PauseCampaign))
	cp.Post("/resume", s.handleLifecycle(s.eng.ResumeCampaign))
	cp.Post("/cancel", s.handleLifecycle(s.eng.CancelCampaign))
	cp.Post("/envios", s.handleUploadEnvios)
	cp.Get("/envios", s.handleListEnvios)
	cp.Get("/stats", s.handleStats)
	cp.Get("/pronostico", s.handleForecast)
	cp.Post("/preview", s.handlePreview)

	api.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound }) // unknown /api paths: JSON 404, not the page
	if s.opts.UI != nil {
		app.Use("/", filesystem.New(filesystem.Config{Root: http.FS(s.opts.UI), Index: "index.html"}))
	}
}

// App is the fiber app, for tests (app.Test needs no listener).
func (s *Server) App() *fiber.App { return s.app }

// Listen serves on addr until ctx ends, then shuts down gracefully.
// It warns when addr is not a loopback address.
func (s *Server) Listen(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Listen on a listener (tests use 127.0.0.1:0). It closes ln and
// the server before returning.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if !isLoopback(ln.Addr()) {
		s.log.Warn("admin API bound beyond loopback: put TLS in front of it (a reverse proxy) and keep the tokens secret", "addr", ln.Addr().String())
	}
	s.log.Info("admin API listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.cancel() // streams (SSE, exports) end, so Shutdown does not wait on them
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.app.ShutdownWithContext(sctx)
	ln.Close() // if Shutdown ran before the server took the listener, this ends its Serve
	<-errc
	s.Close()
	return err
}

// Close stops import jobs and streams and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// goTracked runs f as a tracked background goroutine, unless closed.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func isLoopback(a net.Addr) bool {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
