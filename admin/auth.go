package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
)

// Roles of a caller.
const (
	roleAdmin   = "admin"
	roleCliente = "cliente"
)

// principal is who is calling: the admin, or one cliente's API key.
type principal struct {
	Role    string `json:"role"`
	Cliente string `json:"cliente,omitempty"`
}

const localPrincipal = "principal"

func who(c *fiber.Ctx) *principal {
	p, _ := c.Locals(localPrincipal).(*principal)
	return p
}

// authenticator checks tokens: the admin token against its hash (constant
// time), API keys by their hash in the store; it locks out addresses that
// keep sending bad tokens.
type authenticator struct {
	creds     Credentials
	adminHash []byte
	now       func() time.Time

	after     int
	base, max time.Duration

	mu    sync.Mutex
	fails map[string]*failures // remote address -> recent failures
}

type failures struct {
	n     int
	until time.Time // locked out until then
	last  time.Time
}

// hashToken is how tokens and keys are stored: they are 32 random bytes,
// so a fast hash is as good as a slow one.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// newToken makes a random token with a readable prefix.
func newToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func newAuthenticator(ctx context.Context, o Options) (*authenticator, error) {
	a := &authenticator{creds: o.Data, now: o.Now, after: o.LockoutAfter, base: o.LockoutBase, max: o.LockoutMax, fails: map[string]*failures{}}
	if o.AdminToken != "" {
		a.adminHash = hashToken(o.AdminToken)
		return a, nil
	}
	h, err := o.Data.AdminTokenHash(ctx)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	if h == nil {
		tok := newToken("lma_")
		err := o.Data.SetAdminTokenHash(ctx, hashToken(tok))
		switch {
		case errors.Is(err, engine.ErrConflict): // another start stored one meanwhile
			if h, err = o.Data.AdminTokenHash(ctx); err != nil {
				return nil, fmt.Errorf("admin token: %w", err)
			}
		case err != nil:
			return nil, fmt.Errorf("admin token: %w", err)
		default:
			h = hashToken(tok)
			o.Logger.Warn("generated the admin token; it is shown only this once (only its hash is stored). Set LEADMASTER_ADMIN_TOKEN to choose your own.", "admin_token", tok)
		}
	}
	a.adminHash = h
	return a, nil
}

// resolve maps a token to a principal; nil if it is unknown.
func (a *authenticator) resolve(ctx context.Context, tok string) (*principal, error) {
	if tok == "" {
		return nil, nil
	}
	h := hashToken(tok)
	if subtle.ConstantTimeCompare(h, a.adminHash) == 1 {
		return &principal{Role: roleAdmin}, nil
	}
	cl, err := a.creds.APIKeyCliente(ctx, h)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &principal{Role: roleCliente, Cliente: cl}, nil
}

// locked reports whether addr is locked out, and until when.
func (a *authenticator) locked(addr string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.fails[addr]
	if f == nil || !a.now().Before(f.until) {
		return time.Time{}, false
	}
	return f.until, true
}

// failed counts a bad token from addr; past the threshold each failure
// locks addr out for longer (base doubling, up to max).
func (a *authenticator) failed(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	f := a.fails[addr]
	if f == nil || now.Sub(f.last) > a.max { // forgotten after a quiet spell
		if len(a.fails) > 10000 {
			a.fails = map[string]*failures{}
		}
		f = &failures{}
		a.fails[addr] = f
	}
	f.n++
	f.last = now
	if f.n >= a.after {
		d := a.base << min(f.n-a.after, 20)
		if d > a.max || d <= 0 {
			d = a.max
		}
		f.until = now.Add(d)
	}
}

func (a *authenticator) succeeded(addr string) {
	a.mu.Lock()
	delete(a.fails, addr)
	a.mu.Unlock()
}

// tokenOf reads "Authorization: Bearer …" or ?token= (for EventSource and
// <img src>, which cannot set headers).
func tokenOf(c *fiber.Ctx) string {
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return c.Query("token")
}

// authenticate requires a valid token on every /api route.
func (s *Server) authenticate(c *fiber.Ctx) error {
	p, err := s.checkToken(c)
	if err != nil {
		return err
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}

// checkToken resolves the caller's token, counting failures per address
// and refusing a locked-out address before looking at its token.
func (s *Server) checkToken(c *fiber.Ctx) (*principal, error) {
	addr := c.IP()
	if until, ok := s.auth.locked(addr); ok {
		c.Set(fiber.HeaderRetryAfter, fmt.Sprint(int(until.Sub(s.opts.Now()).Seconds())+1))
		return nil, errorf(fiber.StatusTooManyRequests, "locked_out", "too many bad tokens from this address; try again later")
	}
	p, err := s.auth.resolve(c.UserContext(), tokenOf(c))
	if err != nil {
		return nil, err
	}
	if p == nil {
		s.auth.failed(addr)
		s.met.authFailures.Inc()
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="leadmaster"`)
		return nil, errorf(fiber.StatusUnauthorized, "unauthorized", "missing or invalid token (Authorization: Bearer <token>, or ?token=)")
	}
	s.auth.succeeded(addr)
	return p, nil
}

// authMetrics guards /metrics with the admin token unless PublicMetrics.
func (s *Server) authMetrics(c *fiber.Ctx) error {
	if s.opts.PublicMetrics {
		return c.Next()
	}
	p, err := s.checkToken(c)
	if err != nil {
		return err
	}
	c.Locals(localPrincipal, p)
	return adminOnly(c)
}

// adminOnly refuses cliente keys.
func adminOnly(c *fiber.Ctx) error {
	if p := who(c); p == nil || p.Role != roleAdmin {
		return errorf(fiber.StatusForbidden, "forbidden", "this route needs the admin token")
	}
	return c.Next()
}

// ownCliente lets a cliente key act only under its own /api/clientes/:id.
func (s *Server) ownCliente(c *fiber.Ctx) error {
	p := who(c)
	if p == nil {
		return errorf(fiber.StatusUnauthorized, "unauthorized", "missing token")
	}
	if p.Role != roleAdmin && p.Cliente != c.Params("id") {
		return errorf(fiber.StatusForbidden, "forbidden", "this key belongs to another cliente")
	}
	return c.Next()
}

// ownCampaign answers 404 for a campaign of another cliente, as if it did
// not exist, and keeps the campaign for the handler.
func (s *Server) ownCampaign(c *fiber.Ctx) error {
	camp, err := s.data.Campaign(c.UserContext(), c.Params("cid"))
	if err != nil {
		return err
	}
	if camp.Cliente != c.Params("id") {
		return errorf(fiber.StatusNotFound, "not_found", "campaña %q not found", c.Params("cid"))
	}
	s.owners.Store(camp.ID, camp.Cliente)
	c.Locals("campaign", camp)
	return c.Next()
}

func campaignOf(c *fiber.Ctx) engine.Campaign {
	camp, _ := c.Locals("campaign").(engine.Campaign)
	return camp
}

// ownerOf is the cliente of a campaign (for filtering events).
func (s *Server) ownerOf(ctx context.Context, campaign string) string {
	if v, ok := s.owners.Load(campaign); ok {
		return v.(string)
	}
	camp, err := s.data.Campaign(ctx, campaign)
	if err != nil {
		return ""
	}
	s.owners.Store(campaign, camp.Cliente)
	return camp.Cliente
}
