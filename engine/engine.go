package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the persistence the engine needs; kv.DB implements it. Apply
// is atomic per call and journals every transition in the same transaction.
type Store interface {
	Apply(ctx context.Context, ts ...Transition) error
	// SaveSession journals a session event (KindSession) and, if device is
	// not nil, sets the cliente's device to it, in one transaction.
	SaveSession(ctx context.Context, e Entry, device *string) error
	// InFlight lists the envíos in enviando.
	InFlight(ctx context.Context) ([]Ref, error)
	Envio(ctx context.Context, r Ref) (Envio, error)
	EnvioByMsgID(ctx context.Context, msgID string) (Envio, error)
	EnviosByPhone(ctx context.Context, cliente, phone string) ([]Envio, error)
	Envios(ctx context.Context, campaign string, after uint64, limit int, state State) ([]Envio, error)
	NextDue(ctx context.Context, campaign string, now time.Time) (Due, error)
	Cliente(ctx context.Context, id string) (Cliente, error)
	Clientes(ctx context.Context) ([]Cliente, error)
	Campaign(ctx context.Context, id string) (Campaign, error)
	Campaigns(ctx context.Context, cliente string) ([]Campaign, error)
	UpdateCampaign(ctx context.Context, id string, fn func(*Campaign) error) (Campaign, error)
	Counts(ctx context.Context, campaign string) (Counts, error)
	Suppress(ctx context.Context, cliente, phone, reason string) error
	Suppressed(ctx context.Context, cliente, phone string) (bool, error)
	KnownNumbers(ctx context.Context, cliente string, phones []string, since time.Time) (map[string]bool, error)
	SaveNumbers(ctx context.Context, cliente string, checks map[string]bool) error
	// SentSince: cliente -> campaign -> times of enviado, newest first.
	SentSince(ctx context.Context, since time.Time) (map[string]map[string][]time.Time, error)
	// SaveReachLock stores a cliente's reach lock and journals it
	// (KindReach) in one transaction; ReachLocks reads them all at start.
	SaveReachLock(ctx context.Context, l ReachLock) error
	ReachLocks(ctx context.Context) (map[string]ReachLock, error)
	// HasChat says whether the cliente has a chat with phone as far as the
	// store knows: a reply from it, or an envío to it delivered or read.
	HasChat(ctx context.Context, cliente, phone string) (bool, error)
	// SaveReply stores a recipient's reply, with the envío it answers (if
	// known) and whether it opted out: part of the contract, so a store that
	// cannot keep replies does not compile (they were dropped silently).
	SaveReply(ctx context.Context, r Reply, envio *Ref, optOut bool) error
	// CreateCampaign stores a new campaña (ErrConflict if its id exists).
	CreateCampaign(ctx context.Context, c Campaign) error
	// AddMessage adds a transactional message to a cliente's messages
	// campaign (see SendMessage); MessageRef finds one by key or id.
	// idOf gives the new envío's message id (the engine's MessageID), for
	// the message-id index.
	AddMessage(ctx context.Context, campaign string, m Message, idOf func(Ref) string) (Envio, bool, error)
	MessageRef(ctx context.Context, cliente, campaign, keyOrID string) (Ref, error)
	MessageKey(ctx context.Context, cliente string, seq uint64) (string, error)
	// Secret is the install's secret, from which the engine mints the
	// deterministic message ids (MessageID). Never changes.
	Secret() []byte
}

// Config tunes the engine. The zero value gets the defaults below.
type Config struct {
	Clock  Clock
	Rand   *rand.Rand
	Logger *slog.Logger
	// SendTimeout bounds one SendMessage (whatsmeow's retry after a dropped
	// socket has no timeout of its own). Default 30s.
	SendTimeout time.Duration
	// BackoffBase and BackoffMax shape retries. Default 30s and 30m.
	BackoffBase, BackoffMax time.Duration
	// BreakerThreshold consecutive failures pause the cliente for
	// BreakerCooldown. Default 5 and 10m.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// NumberCheck turns on the IsOnWhatsApp check before the first send
	// to a phone; checks are cached for NumberCheckTTL (default 30 days),
	// batched by NumberCheckBatch (default 50) and at most one call per
	// NumberCheckEvery (default 10s).
	NumberCheck      bool
	NumberCheckTTL   time.Duration
	NumberCheckBatch int
	NumberCheckEvery time.Duration
	// ScriptErrorPause pauses a campaign after this many script failures
	// in a row (default 10).
	ScriptErrorPause int
	// HooksFor returns the hooks of a campaign (its compiled script);
	// default TemplateHooks.
	HooksFor func(Campaign) (Hooks, error)
	// ReachLockDefault is how long new chats stay locked after a 463 when
	// the server named no end (no timelock notification). Default 24h:
	// WhatsApp's timelocks last hours to days, and sending into one makes
	// it worse.
	ReachLockDefault time.Duration
	// FreeSpace, if set, reports the free bytes of the data file's disk;
	// below MinFreeBytes (default 32 MiB) no envío is written ahead, so a
	// full disk stalls sending before a send, by design, and says so
	// (SendState BlockDiskLow).
	FreeSpace    func() (uint64, error)
	MinFreeBytes uint64
	// MessagesRate is the ritmo of every cliente's messages campaign
	// (transactional messages), whatever it stored; zero fields take
	// MessagesRate's.
	MessagesRate Rate
}

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 30 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Minute
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = 10 * time.Minute
	}
	if c.NumberCheckTTL <= 0 {
		c.NumberCheckTTL = 30 * 24 * time.Hour
	}
	if c.NumberCheckBatch <= 0 {
		c.NumberCheckBatch = 50
	}
	if c.NumberCheckEvery <= 0 {
		c.NumberCheckEvery = 10 * time.Second
	}
	if c.ScriptErrorPause <= 0 {
		c.ScriptErrorPause = 10
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 32 << 20
	}
	if c.ReachLockDefault <= 0 {
		c.ReachLockDefault = 24 * time.Hour
	}
	if c.HooksFor == nil {
		c.HooksFor = func(Campaign) (Hooks, error) { return TemplateHooks{}, nil }
	}
	return c
}

// Engine sends campaigns: one worker per cliente claims due envíos, writes
// them ahead as enviando, sends through the Gateway and commits enviado
// only on the server's ack.
type Engine struct {
	store  Store
	gw     Gateway
	cfg    Config
	log    *slog.Logger
	events Broker

	mu       sync.Mutex
	rng      *rand.Rand // guarded by mu
	workers  map[string]*worker
	runCtx   context.Context
	wg       sync.WaitGroup
	receipts map[string][]Receipt // msg id -> receipts that arrived before the enviado commit
	reach    map[string]ReachLock // cliente -> its reach lock, as stored
	reachMu  sync.Mutex           // serializes lock changes: check and change are one step
	// warmth counts what can make a pendiente warm or add one (a reply, a
	// receipt, an import, a message): a reach-lock scan that found nothing
	// is not repeated while it stands still.
	warmth  atomic.Uint64
	sending map[string]SendState    // cliente -> what its worker is doing
	waits   map[string]CampaignWait // campaign -> why it sends nothing now

	// reachLoaded: e.reach holds the stored locks (loadReachLocked);
	// guarded by reachMu.
	reachLoaded bool

	// publishing serializes commit-then-publish per envío (striped), so an
	// envío's events go out in the order its transitions were committed: a
	// receipt's entregado cannot overtake the worker's enviado.
	publishing [64]sync.Mutex
}

// New returns an engine; Run starts it.
func New(store Store, gw Gateway, cfg Config) *Engine {
	cfg = cfg.withDefaults()
	return &Engine{store: store, gw: gw, cfg: cfg, log: cfg.Logger, rng: cfg.Rand,
		workers: map[string]*worker{}, receipts: map[string][]Receipt{}, reach: map[string]ReachLock{},
		sending: map[string]SendState{}, waits: map[string]CampaignWait{}}
}

// ReasonRecovery is the reason journaled when an envío left in enviando by
// a stop or a crash goes back to pendiente.
const ReasonRecovery = "recovery"

// Recover returns every envío left in enviando (a stop or a crash during
// its send: the outcome is unknown) to pendiente, due now, with its
// message id kept, so the resend is the same message to WhatsApp and the
// server deduplicates it. Run calls it once before any worker starts; it
// returns how many it moved.
func (e *Engine) Recover(ctx context.Context) (int, error) {
	refs, err := e.store.InFlight(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover: %w", err)
	}
	const batch = 512 // one transaction each: a big backlog is not one huge commit
	for i := 0; i < len(refs); i += batch {
		ts := make([]Transition, 0, batch)
		for _, r := range refs[i:min(i+batch, len(refs))] {
			ts = append(ts, Transition{Envio: r, From: Enviando, To: Pendiente, Reason: ReasonRecovery})
		}
		if err := e.store.Apply(ctx, ts...); err != nil {
			return i, fmt.Errorf("recover: %w", err)
		}
	}
	return len(refs), nil
}

// Events is the engine's live event stream (SSE, QR waiters, the demo).
func (e *Engine) Events() *Broker { return &e.events }

// Store is the engine's store (read access for the admin layer).
func (e *Engine) Store() Store { return e.store }

// Run recovers envíos left in enviando, starts a worker per cliente and
// blocks until ctx ends; then it stops claiming, lets in-flight sends end
// (each is bounded by SendTimeout) and returns.
func (e *Engine) Run(ctx context.Context) error {
	n, err := e.Recover(ctx)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if n > 0 {
		e.log.Info("recovered envíos left in enviando: back to pendiente with their message ids", "count", n)
	}
	e.reachMu.Lock()
	err = e.loadReachLocked(ctx)
	e.reachMu.Unlock()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	// From here on AddCliente starts the worker of a new cliente itself;
	// the ones listed below are started here (a cliente in both is started
	// once).
	// Workers run on a context of their own so that a failed start can
	// stop (and wait for) the ones AddCliente started meanwhile.
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	fail := func(err error) error {
		stopWorkers()
		e.wg.Wait()
		return err
	}
	e.mu.Lock()
	e.runCtx = wctx
	e.mu.Unlock()
	clientes, err := e.store.Clientes(ctx)
	if err != nil {
		return fail(fmt.Errorf("engine: %w", err))
	}
	// What each cliente sent in the last day, so caps and windows hold
	// across a restart: one read of the journal for all of them.
	sent, err := e.store.SentSince(ctx, e.cfg.Clock.Now().Add(-25*time.Hour))
	if err != nil {
		return fail(fmt.Errorf("engine: reading the recent sends from the journal (leadmaster journal verify tells what is wrong): %w", err))
	}
	e.mu.Lock()
	for _, c := range clientes {
		e.startWorkerLocked(c.ID, sent[c.ID])
	}
	e.mu.Unlock()
	<-ctx.Done()
	e.wg.Wait()
	return nil
}

// AddCliente starts the worker of a cliente created while running.
func (e *Engine) AddCliente(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runCtx != nil {
		e.startWorkerLocked(id, nil) // new: nothing sent yet
	}
}

// startWorkerLocked starts a cliente's worker with what it sent recently
// (campaign -> times, newest first). e.mu must be held.
func (e *Engine) startWorkerLocked(cliente string, sent map[string][]time.Time) {
	if _, ok := e.workers[cliente]; ok || e.runCtx.Err() != nil {
		return
	}
	w := &worker{e: e, cliente: cliente, wake: make(chan struct{}, 1)}
	e.workers[cliente] = w
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		w.run(e.runCtx, sent)
	}()
}

// poke wakes a cliente's worker (new work, session ready, resume).
func (e *Engine) poke(cliente string) {
	e.mu.Lock()
	w := e.workers[cliente]
	e.mu.Unlock()
	if w != nil {
		w.poke()
	}
}

// envioStripe picks one of n publishing locks for an envío.
func envioStripe(r Ref, n int) int {
	h := fnv.New32a()
	h.Write([]byte(r.Campaign))
	return int((h.Sum32() ^ uint32(r.Seq)*0x9E3779B1) % uint32(n))
}

func (e *Engine) randDuration(min, max time.Duration) time.Duration {
	if max <= min {
		return min
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return randDelay(e.rng, min, max)
}

func (e *Engine) backoff(attempt int) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Backoff(attempt, e.cfg.BackoffBase, e.cfg.BackoffMax, e.rng)
}

// apply commits transitions and publishes them, each envío's events in
// the order of its commits. Transitions of different envíos still commit
// together (group commit).
func (e *Engine) apply(ctx context.Context, ts ...Transition) error {
	var stripes [len(e.publishing)]bool
	for _, t := range ts {
		stripes[envioStripe(t.Envio, len(stripes))] = true
	}
	for i := range stripes { // in index order: no lock-order cycles
		if stripes[i] {
			e.publishing[i].Lock()
			defer e.publishing[i].Unlock()
		}
	}
	if err := e.store.Apply(ctx, ts...); err != nil {
		return err
	}
	for _, t := range ts {
		e.events.Publish(Event{Type: "envio", At: e.cfg.Clock.Now(), Campaign: t.Envio.Campaign, Envio: t.Envio.Seq, From: t.From, To: t.To, Reason: t.Reason})
	}
	return nil
}

// SessionChanged publishes a session event (the Sessions adapter has
// journaled it), pauses the cliente's campaigns on logout and wakes the
// worker when READY. It implements Inbound.
func (e *Engine) SessionChanged(ev SessionEvent) {
	if ev.Event != "" {
		entry, device := sessionRecord(ev)
		if err := e.store.SaveSession(context.Background(), entry, device); err != nil {
			e.log.Error("journal session event", "cliente", ev.Cliente, "event", ev.Event, "err", err)
		}
	}
	e.events.Publish(Event{Type: "session", At: e.cfg.Clock.Now(), Cliente: ev.Cliente, Session: &ev})
	if ev.State == SessionLoggedOut {
		e.pauseCliente(context.Background(), ev.Cliente, "logged_out")
	}
	e.poke(ev.Cliente)
}

// pauseCliente pauses every active campaign of a cliente.
func (e *Engine) pauseCliente(ctx context.Context, cliente, reason string) {
	cs, err := e.store.Campaigns(ctx, cliente)
	if err != nil {
		e.log.Error("pause campaigns", "cliente", cliente, "err", err)
		return
	}
	for _, c := range cs {
		// Transactional messages are not paused: they wait for READY, and
		// a re-pair needs no operator to resume them.
		if c.Status == Activa && !IsMessages(c) {
			if err := e.setStatus(ctx, c.ID, Pausada, reason, Activa); err != nil {
				e.log.Error("pause campaign", "campaign", c.ID, "err", err)
			}
		}
	}
}

// Receipt moves enviado -> entregado -> leido. A receipt for an envío whose
// enviado is not committed yet waits for it. It implements Inbound.
func (e *Engine) Receipt(r Receipt) {
	ctx := context.Background()
	for _, id := range r.MsgIDs {
		env, err := e.store.EnvioByMsgID(ctx, id)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				e.log.Error("receipt", "msg_id", id, "err", err)
			}
			continue
		}
		// Not sent yet as far as we know: in flight, or back to pendiente
		// with its id (a timeout, a crash) while the server had it. The
		// receipt waits for the enviado commit of that id.
		if env.State == Enviando || env.State == Pendiente {
			e.mu.Lock()
			e.receipts[id] = append(e.receipts[id], Receipt{Cliente: r.Cliente, MsgIDs: []string{id}, Kind: r.Kind, At: r.At})
			e.mu.Unlock()
			// The worker may have committed enviado and flushed the
			// queue between the read above and the append: look again,
			// or the receipt would wait for ever.
			if cur, err := e.store.EnvioByMsgID(ctx, id); err == nil && cur.State.Sent() {
				e.flushReceipts(ctx, cur)
			}
			continue
		}
		e.applyReceipt(ctx, env, r.Kind, r.At)
	}
}

func (e *Engine) applyReceipt(ctx context.Context, env Envio, kind ReceiptKind, at time.Time) {
	e.warmth.Add(1) // a delivered envío makes its phone warm
	to := Entregado
	if kind == ReceiptRead {
		to = Leido
	}
	// Two receipts of one envío may race (delivered and read together): on
	// a conflict the other one moved it; read it again and go on from there.
	for range 3 {
		if !CanTransition(env.State, to) {
			return // a late or repeated receipt
		}
		err := e.apply(ctx, Transition{Envio: env.Ref, From: env.State, To: to, At: at, Reason: "receipt"})
		if err == nil {
			return
		}
		if !errors.Is(err, ErrConflict) {
			e.log.Error("receipt", "envio", env.Ref, "err", err)
			return
		}
		if env, err = e.store.Envio(ctx, env.Ref); err != nil {
			e.log.Error("receipt", "envio", env.Ref, "err", err)
			return
		}
	}
}

// flushReceipts applies receipts that arrived while env was enviando.
func (e *Engine) flushReceipts(ctx context.Context, env Envio) {
	e.mu.Lock()
	rs := e.receipts[env.MsgID]
	delete(e.receipts, env.MsgID)
	e.mu.Unlock()
	for _, r := range rs {
		cur, err := e.store.Envio(ctx, env.Ref)
		if err != nil {
			return
		}
		e.applyReceipt(ctx, cur, r.Kind, r.At)
	}
}
