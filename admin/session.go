package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"leadmaster/engine"
)

// sessions returns the session control, or 503 when it is not wired, after
// checking that the cliente exists.
func (s *Server) sessions(c *fiber.Ctx) (engine.Sessions, error) {
	if _, err := s.data.Cliente(c.UserContext(), c.Params("id")); err != nil {
		return nil, err
	}
	if s.sess == nil {
		return nil, errorf(fiber.StatusServiceUnavailable, "unavailable", "WhatsApp sessions are not running in this process")
	}
	return s.sess, nil
}

// handleSession handles "GET /api/clientes/:id/session": the session's
// current state (engine.SessionEvent) and, while one holds, its reach lock.
func (s *Server) handleSession(c *fiber.Ctx) error {
	ss, err := s.sessions(c)
	if err != nil {
		return err
	}
	id := c.Params("id")
	v := sessionView{SessionEvent: ss.State(id)}
	if l, ok := s.eng.ReachHolding(id); ok {
		v.Reach = &l
	}
	if st := s.eng.SendState(id); st.Estado != "" {
		v.Sending = &st
	}
	return c.JSON(v)
}

// sessionView is a session's state with its reach lock, while one holds
// (WhatsApp locked the number out of new chats, so only recipients with a
// chat are sent to until nuevos_contactos.hasta), and what its sending
// does: envios.estado enviando, inactivo or pausado with motivo and hasta.
type sessionView struct {
	engine.SessionEvent
	Reach   *engine.ReachLock `json:"nuevos_contactos,omitempty"`
	Sending *engine.SendState `json:"envios,omitempty"`
}

// handleSessionQR handles "GET /api/clientes/:id/session/qr?format=png|json&timeout=20s".
// It starts the session if needed and waits, on the session's own change
// notifications (engine.Sessions.WaitQR; no polling), for the first QR:
// image/png, or {"qr","data_url"}; 409 when READY, 504 on timeout.
func (s *Server) handleSessionQR(c *fiber.Ctx) error {
	format := c.Query("format", "png")
	if format != "png" && format != "json" {
		return badRequest("query \"format\": want png or json, got %q", format)
	}
	timeout := s.opts.QRTimeout
	if v := c.Query("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > s.opts.MaxQRTimeout {
			return badRequest("query \"timeout\": want a duration up to %s, e.g. 20s, got %q", s.opts.MaxQRTimeout, v)
		}
		timeout = d
	}
	ss, err := s.sessions(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	qr, err := ss.WaitQR(ctx, c.Params("id"))
	switch {
	case errors.Is(err, engine.ErrAlreadyConnected):
		return errorf(fiber.StatusConflict, "already_connected", "the session is READY: no QR is needed")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(fiber.StatusGatewayTimeout, "qr_timeout", "no QR within %s; try again", timeout)
	case err != nil:
		return err
	}
	png, err := qrcode.Encode(qr, qrcode.Medium, 320)
	if err != nil {
		return err
	}
	if format == "png" {
		c.Set(fiber.HeaderContentType, "image/png")
		return c.Send(png)
	}
	return c.JSON(fiber.Map{"qr": qr, "data_url": "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)})
}

// handleSessionStart handles "POST /api/clientes/:id/session/start": it
// connects the session and answers at once (202) with its state.
func (s *Server) handleSessionStart(c *fiber.Ctx) error {
	ss, err := s.sessions(c)
	if err != nil {
		return err
	}
	if err := ss.Start(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(ss.State(c.Params("id")))
}

type pairRequest struct {
	Phone string `json:"phone"`
}

// handleSessionPair handles "POST /api/clientes/:id/session/pair": a code
// to type on the phone instead of scanning the QR.
func (s *Server) handleSessionPair(c *fiber.Ctx) error {
	var req pairRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if !validE164(req.Phone) {
		return badRequest("phone %q: want E.164, e.g. +5491122334455", req.Phone)
	}
	ss, err := s.sessions(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), s.opts.QRTimeout)
	defer cancel()
	code, err := ss.PairPhone(ctx, c.Params("id"), req.Phone)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"code": code})
}

func validE164(p string) bool {
	if len(p) < 8 || len(p) > 16 || p[0] != '+' || p[1] == '0' {
		return false
	}
	for _, ch := range p[1:] {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// handleSessionLogout handles "POST /api/clientes/:id/session/logout".
func (s *Server) handleSessionLogout(c *fiber.Ctx) error {
	ss, err := s.sessions(c)
	if err != nil {
		return err
	}
	if err := ss.Logout(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	return c.JSON(ss.State(c.Params("id")))
}

type demoScanRequest struct {
	Cliente string `json:"cliente"`
}

// handleDemoScan handles "POST /api/demo/scan" (demo only): the simulated
// phone scans the cliente's current QR.
func (s *Server) handleDemoScan(c *fiber.Ctx) error {
	var req demoScanRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if p := who(c); p.Role != roleAdmin && p.Cliente != req.Cliente {
		return errorf(fiber.StatusForbidden, "forbidden", "this key belongs to another cliente")
	}
	if _, err := s.data.Cliente(c.UserContext(), req.Cliente); err != nil {
		return err
	}
	if err := s.opts.DemoScan(c.UserContext(), req.Cliente); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"ok": true})
}
