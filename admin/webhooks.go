package admin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
)

// Outbox is the durable webhook queue; kv.DB implements it. Journal
// records (and replies) of clientes with a webhook are queued by
// FeedOutbox in the transaction that advances its cursor, and leave the
// queue only on OutboxAck, after the receiver answered 2xx.
type Outbox interface {
	SetWebhook(ctx context.Context, cliente, url, secret string) error
	Webhook(ctx context.Context, cliente string) (url, secret string, err error)
	WebhookClientes(ctx context.Context) ([]string, error)
	FeedOutbox(ctx context.Context, limit int) (queued int, more bool, err error)
	OutboxPending(ctx context.Context, cliente string, limit int) ([]uint64, []engine.Entry, error)
	OutboxAck(ctx context.Context, cliente string, id uint64) error
}

// Webhook request headers. The signature is the hex HMAC-SHA256, under the
// webhook's secret, of the timestamp, a dot, and the body.
const (
	HeaderSignature = "X-LeadMaster-Signature" // "sha256=<hex>"
	HeaderTimestamp = "X-LeadMaster-Timestamp" // unix seconds
	HeaderDelivery  = "X-LeadMaster-Delivery"  // cliente/queue id: the same on every retry
	HeaderEvent     = "X-LeadMaster-Event"     // the record kind
)

// Sign computes the signature header value of a webhook body.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookPayload is the body of a webhook request.
type WebhookPayload struct {
	Delivery string       `json:"delivery"`
	Cliente  string       `json:"cliente"`
	Kind     string       `json:"kind"` // transition | session | campaign | suppress | import | cliente | reply | reach
	Entry    engine.Entry `json:"entry"`
}

// dispatcher delivers each cliente's queue in order: one request at a
// time per cliente, the next only after a 2xx, retries with exponential
// backoff on the injected clock.
type dispatcher struct {
	s      *Server
	out    Outbox
	client *http.Client
	clock  engine.Clock
	base   time.Duration
	max    time.Duration
	retry  map[string]retryState // cliente -> backoff state
	wake   chan struct{}         // a webhook was set
	rng    *rand.Rand
}

type retryState struct {
	attempts int
	at       time.Time
}

func (d *dispatcher) run(ctx context.Context) {
	// Engine events are only a wake-up signal. A forwarder drains them at
	// once (so the broker never counts a drop for this subscriber, however
	// long a delivery takes) into the one-slot wake channel.
	events, unsubscribe := d.s.eng.Events().Subscribe(64)
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for range events {
			select {
			case d.wake <- struct{}{}:
			default:
			}
		}
	}()
	defer func() { unsubscribe(); <-forwarded }()
	for {
		next := d.pass(ctx)
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = d.clock.After(max(next.Sub(d.clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer:
		case <-time.After(30 * time.Second): // a safety sweep (e.g. a webhook set while idle)
		}
	}
}

// pass feeds the outbox and delivers what is due; it returns the earliest
// retry time (zero if none waits).
func (d *dispatcher) pass(ctx context.Context) time.Time {
	clientes, err := d.out.WebhookClientes(ctx)
	if err != nil {
		return d.clock.Now().Add(d.base)
	}
	if len(clientes) == 0 {
		return time.Time{} // nothing to feed: no write transaction either
	}
	for {
		_, more, err := d.out.FeedOutbox(ctx, 1000)
		if err != nil {
			if ctx.Err() == nil {
				d.s.log.Error("webhooks: outbox feed", "err", err)
			}
			return d.clock.Now().Add(d.base)
		}
		if !more {
			break
		}
	}
	var next time.Time
	for _, cl := range clientes {
		if r, ok := d.retry[cl]; ok && d.clock.Now().Before(r.at) {
			next = earliest(next, r.at)
			continue
		}
		if at := d.deliver(ctx, cl); !at.IsZero() {
			next = earliest(next, at)
		}
	}
	return next
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// deliver sends a cliente's queue in order until it is empty or a request
// fails; it returns the retry time after a failure.
func (d *dispatcher) deliver(ctx context.Context, cliente string) time.Time {
	u, secret, err := d.out.Webhook(ctx, cliente)
	if err != nil || u == "" {
		return time.Time{}
	}
	for ctx.Err() == nil {
		ids, es, err := d.out.OutboxPending(ctx, cliente, 100)
		if err != nil || len(ids) == 0 {
			delete(d.retry, cliente)
			return time.Time{}
		}
		for i, id := range ids {
			if err := d.post(ctx, u, secret, cliente, id, es[i]); err != nil {
				r := d.retry[cliente]
				r.attempts++
				r.at = d.clock.Now().Add(engine.Backoff(r.attempts, d.base, d.max, d.rng))
				d.retry[cliente] = r
				d.s.met.webhookFailures.Inc()
				d.s.log.Info("webhook delivery failed; will retry", "cliente", cliente, "attempt", r.attempts, "err", err)
				return r.at
			}
			delete(d.retry, cliente)
			d.s.met.webhookDelivered.Inc()
			if err := d.out.OutboxAck(ctx, cliente, id); err != nil {
				return d.clock.Now().Add(d.base)
			}
		}
	}
	return time.Time{}
}

func (d *dispatcher) post(ctx context.Context, u, secret, cliente string, id uint64, e engine.Entry) error {
	delivery := cliente + "/" + strconv.FormatUint(id, 10)
	body, err := json.Marshal(WebhookPayload{Delivery: delivery, Cliente: cliente, Kind: string(e.Kind), Entry: e})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(d.clock.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "LeadMaster-Webhook/1")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	req.Header.Set(HeaderDelivery, delivery)
	req.Header.Set(HeaderEvent, string(e.Kind))
	res, err := d.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", res.Status)
	}
	return nil
}

func (s *Server) outbox() (Outbox, error) {
	if s.opts.Outbox == nil {
		return nil, errorf(fiber.StatusServiceUnavailable, "unavailable", "webhooks are not enabled in this process")
	}
	return s.opts.Outbox, nil
}

// handleGetWebhook handles "GET /api/clientes/:id/webhook" (the secret is
// never shown again).
func (s *Server) handleGetWebhook(c *fiber.Ctx) error {
	ob, err := s.outbox()
	if err != nil {
		return err
	}
	if _, err := s.data.Cliente(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	u, _, err := ob.Webhook(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"url": u})
}

type webhookRequest struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

// handlePutWebhook handles "PUT /api/clientes/:id/webhook" {"url","secret"}:
// sets the cliente's webhook (url "" removes it); a secret is generated when
// none is given and shown in this answer only.
func (s *Server) handlePutWebhook(c *fiber.Ctx) error {
	var req webhookRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.URL != "" {
		u, err := url.Parse(req.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return badRequest("url %q: want an absolute http(s) URL", req.URL)
		}
		if req.Secret == "" {
			req.Secret = newToken("whsec_")
		}
		if len(req.Secret) < 16 {
			return badRequest("secret: want at least 16 characters")
		}
	}
	ob, err := s.outbox()
	if err != nil {
		return err
	}
	if err := ob.SetWebhook(c.UserContext(), c.Params("id"), req.URL, req.Secret); err != nil {
		return err
	}
	s.wakeWebhooks()
	return c.JSON(fiber.Map{"url": req.URL, "secret": req.Secret})
}

// wakeWebhooks nudges the dispatcher (it also wakes on every engine event).
func (s *Server) wakeWebhooks() {
	if s.disp == nil {
		return
	}
	select {
	case s.disp.wake <- struct{}{}:
	default:
	}
}
