package admin

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"leadmaster/engine"
	"leadmaster/engine/phone"
)

// maxWait bounds ?esperar on a transactional send.
const maxWait = 60 * time.Second

// messageView is a transactional message as the API shows it.
type messageView struct {
	ID       string       `json:"id"`    // the WhatsApp message id (deterministic, known before the send)
	Key      string       `json:"clave"` // the idempotency key
	Telefono string       `json:"telefono"`
	Texto    string       `json:"texto"`
	Estado   engine.State `json:"estado"`
	Motivo   string       `json:"motivo,omitempty"`
	Intentos int          `json:"intentos"`
	Creado   time.Time    `json:"creado"`
	Enviado  time.Time    `json:"enviado_en,omitzero"` // WhatsApp's ack time
	Campana  string       `json:"campana"`
	Envio    uint64       `json:"envio"`
}

func (s *Server) messageView(env engine.Envio, key string) messageView {
	return messageView{ID: s.eng.MessageIDOf(env), Key: key, Telefono: env.Telefono, Texto: env.Variables[engine.MessageTextVar],
		Estado: env.State, Motivo: env.Reason, Intentos: env.Attempts, Creado: env.CreatedAt, Enviado: env.SentAt,
		Campana: env.Ref.Campaign, Envio: env.Ref.Seq}
}

type sendMessageRequest struct {
	Telefono string `json:"telefono"`
	Texto    string `json:"texto"`
}

// handleSendMessage handles "POST /api/clientes/:id/mensajes?esperar=10s":
// one transactional message on the campaigns' ack-confirmed path. The
// Idempotency-Key header (made up when absent, and answered) names it for
// ever: the same key answers the same message and sends nothing again.
// 202 while it is on its way; 200 once WhatsApp acked it (or it ended
// without being sent: estado says how); with esperar, 504 if the ack did
// not come in time (the message is still tracked); 409 opted_out.
func (s *Server) handleSendMessage(c *fiber.Ctx) error {
	var wait time.Duration
	if v := c.Query("esperar"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxWait {
			return badRequest("query \"esperar\": want a duration up to %s, e.g. 10s, got %q", maxWait, v)
		}
		wait = d
	}
	key := c.Get("Idempotency-Key")
	if key == "" {
		key = uuid.NewString()
	}
	var req sendMessageRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	id := c.Params("id")
	cl, err := s.data.Cliente(ctx, id)
	if err != nil {
		return err
	}
	tel, err := phone.Normalize(req.Telefono, cl.DefaultRegion)
	if err != nil {
		return badRequest("telefono %q: %v", req.Telefono, err)
	}
	env, created, err := s.eng.SendMessage(ctx, engine.Message{Cliente: id, Key: key, Telefono: tel, Texto: req.Texto})
	if err != nil {
		return err
	}
	c.Set("Idempotency-Key", key)
	if !created {
		c.Set("Idempotent-Replayed", "true")
	}
	if wait > 0 && !env.State.Sent() && !env.State.Final() {
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		env, err = s.eng.WaitFinal(wctx, env.Ref)
		if errors.Is(err, context.DeadlineExceeded) {
			return c.Status(fiber.StatusGatewayTimeout).JSON(s.messageView(env, key))
		}
		if err != nil {
			return err
		}
	}
	status := fiber.StatusAccepted
	if env.State.Sent() || env.State.Final() {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(s.messageView(env, key))
}

// handleGetMessage handles "GET /api/clientes/:id/mensajes/:mid": one
// message by its id or its idempotency key.
func (s *Server) handleGetMessage(c *fiber.Ctx) error {
	env, err := s.eng.Message(c.UserContext(), c.Params("id"), c.Params("mid"))
	if err != nil {
		return err
	}
	return c.JSON(s.messageView(env, s.eng.MessageKey(c.UserContext(), env)))
}

// handleListMessages handles "GET /api/clientes/:id/mensajes?estado=&after=&limit=".
func (s *Server) handleListMessages(c *fiber.Ctx) error {
	st, after, limit, err := envioListQuery(c)
	if err != nil {
		return err
	}
	es, err := s.data.Envios(c.UserContext(), engine.MessagesCampaignID(c.Params("id")), after, limit, st)
	if errors.Is(err, engine.ErrNotFound) {
		es, err = nil, nil // no message yet
	}
	if err != nil {
		return err
	}
	out := make([]messageView, len(es))
	for i, e := range es {
		out[i] = s.messageView(e, s.eng.MessageKey(c.UserContext(), e))
	}
	next := ""
	if len(es) == limit {
		next = uitoa(es[len(es)-1].Ref.Seq)
	}
	return c.JSON(items(out, next))
}
