package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// recoverPanic turns a handler panic into a 500 (logged), never a crash.
func (s *Server) recoverPanic(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("admin handler panic", "path", c.Path(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return c.Next()
}

// logRequests logs each request with slog (never the query: it may carry
// a token) and feeds the request metrics.
func (s *Server) logRequests(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.app.Config().ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	dur := time.Since(start)
	s.met.observe(c.Method(), route, status, dur)
	level := slogLevel(status)
	attrs := []any{"method", c.Method(), "path", c.Path(), "status", status, "dur", dur.Round(time.Microsecond)}
	if p := who(c); p != nil {
		attrs = append(attrs, "role", p.Role)
		if p.Cliente != "" {
			attrs = append(attrs, "cliente", p.Cliente)
		}
	}
	s.log.Log(c.UserContext(), level, "admin request", attrs...)
	return nil
}

// securityHeaders: no sniffing, no framing, no referrer, a strict CSP for
// the page; no CORS headers at all (same-origin only).
func securityHeaders(c *fiber.Ctx) error {
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set("Cache-Control", "no-store")
	return c.Next()
}

// limitBody bounds every /api body to MaxBody, except envío uploads (the
// server-wide limit, MaxUpload).
func (s *Server) limitBody(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodPost && isUploadPath(c.Path()) {
		return c.Next()
	}
	if n := len(c.Body()); n > s.opts.MaxBody {
		return errorf(fiber.StatusRequestEntityTooLarge, "too_large", "body of %d bytes is over the limit of %d", n, s.opts.MaxBody)
	}
	return c.Next()
}

func isUploadPath(p string) bool {
	return len(p) > len("/envios") && p[len(p)-len("/envios"):] == "/envios"
}

// decodeJSON decodes a JSON body strictly: application/json, one object,
// no unknown fields, right types; errors say which field is wrong.
func decodeJSON(c *fiber.Ctx, v any) error {
	if mt, _, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); mt != fiber.MIMEApplicationJSON {
		return errorf(fiber.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold one JSON object and nothing after it")
	}
	return nil
}

func jsonError(err error) *apiError {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return badRequest("the body must be a JSON %s, got %s", te.Type.Kind(), te.Value)
		}
		return badRequest("field %q: want %s, got %s", te.Field, te.Type.String(), te.Value)
	case errors.As(err, &se):
		return badRequest("malformed JSON at byte %d: %v", se.Offset, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("empty or truncated JSON body")
	default:
		return badRequest("%v", err) // e.g. json: unknown field "x"
	}
}

// queryUint reads an optional unsigned query parameter.
func queryUint(c *fiber.Ctx, name string) (uint64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, badRequest("query %q: want a non-negative integer, got %q", name, v)
	}
	return n, nil
}

// queryLimit reads ?limit= (1..max, default def).
func queryLimit(c *fiber.Ctx, def, max int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("query \"limit\": want 1..%d, got %q", max, v)
	}
	return n, nil
}

func slogLevel(status int) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelError
	case status >= 400:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
