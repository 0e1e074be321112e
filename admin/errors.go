package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
	"leadmaster/scripting"
)

// apiError is an error with its HTTP status and code, as the client sees it:
// {"error":{"code":"…","message":"…","line":N}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Line    int    `json:"line,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(fiber.StatusBadRequest, "invalid", format, args...)
}

// codes maps engine's sentinel errors to statuses: the one place where an
// error becomes an HTTP status.
var codes = []struct {
	err    error
	status int
	code   string
}{
	{engine.ErrNotFound, fiber.StatusNotFound, "not_found"},
	{engine.ErrInvalid, fiber.StatusBadRequest, "invalid"},
	{engine.ErrBadTransition, fiber.StatusConflict, "bad_transition"},
	{engine.ErrCampaignEmpty, fiber.StatusConflict, "campaign_empty"}, // before ErrConflict, which it wraps
	{engine.ErrConflict, fiber.StatusConflict, "conflict"},
	{engine.ErrOptedOut, fiber.StatusConflict, "opted_out"},
	{engine.ErrKeyReused, fiber.StatusUnprocessableEntity, "idempotency_key_reused"},
	{engine.ErrAlreadyConnected, fiber.StatusConflict, "already_connected"},
	{engine.ErrNoSession, fiber.StatusConflict, "no_session"},
	{engine.ErrSessionDown, fiber.StatusConflict, "session_down"},
	{context.DeadlineExceeded, fiber.StatusGatewayTimeout, "timeout"},
}

// toAPIError classifies err; ok is false for an unexpected (internal) error.
func toAPIError(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, true
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := strings.ToLower(strings.ReplaceAll(fiberText(fe.Code), " ", "_"))
		return &apiError{Status: fe.Code, Code: code, Message: fe.Message}, true
	}
	var se *scripting.SyntaxError
	if errors.As(err, &se) {
		return &apiError{Status: fiber.StatusBadRequest, Code: "script", Message: se.Msg, Line: se.Line}, true
	}
	var re *scripting.RuntimeError
	if errors.As(err, &re) {
		return &apiError{Status: fiber.StatusBadRequest, Code: "script", Message: re.Msg, Line: re.Line}, true
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return &apiError{Status: c.status, Code: c.code, Message: err.Error()}, true
		}
	}
	return &apiError{Status: fiber.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
}

func fiberText(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not found"
	case fiber.StatusMethodNotAllowed:
		return "method not allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too large"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported media type"
	case fiber.StatusTooManyRequests:
		return "too many requests"
	case fiber.StatusUnauthorized:
		return "unauthorized"
	case fiber.StatusForbidden:
		return "forbidden"
	case fiber.StatusServiceUnavailable:
		return "unavailable"
	case fiber.StatusRequestTimeout:
		return "timeout"
	}
	if status >= 500 {
		return "internal"
	}
	return "bad request"
}

// handleError is fiber's ErrorHandler: every error a handler returns is
// answered here as JSON; unexpected ones are logged and hidden.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	ae, ok := toAPIError(err)
	if !ok {
		s.log.Error("admin request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	if ae.Status == fiber.StatusInternalServerError && ok {
		ae = &apiError{Status: ae.Status, Code: "internal", Message: "internal error"}
	}
	body, _ := json.Marshal(struct {
		Error *apiError `json:"error"`
	}{ae})
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Status(ae.Status).Send(body)
}
