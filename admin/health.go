package admin

import (
	"context"
	_ "embed"
	"time"

	"github.com/gofiber/fiber/v2"
)

//go:embed openapi.json
var openapiDoc []byte

// handleHealthz handles "GET /healthz": the process answers.
func (s *Server) handleHealthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// handleReadyz handles "GET /readyz": the store answers and the server is
// not shutting down.
func (s *Server) handleReadyz(c *fiber.Ctx) error {
	if s.ctx.Err() != nil {
		return errorf(fiber.StatusServiceUnavailable, "unavailable", "shutting down")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if _, err := s.data.Clientes(ctx); err != nil {
		s.log.Error("readyz: store", "err", err)
		return errorf(fiber.StatusServiceUnavailable, "unavailable", "the data file does not answer")
	}
	if ok, err := s.eng.StoreHealthy(); !ok {
		return errorf(fiber.StatusServiceUnavailable, "unavailable", "sending is stalled: the data file cannot be written (%v)", err)
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// handleOpenAPI handles "GET /api/openapi.json" (no token: it describes
// the API, it holds no data).
func (s *Server) handleOpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(openapiDoc)
}
