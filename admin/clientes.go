package admin

import (
	"encoding/hex"
	"time"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
)

// handleMe handles "GET /api/me": who the token belongs to, and whether
// this is `leadmaster demo` (the page then offers the simulated phone).
func (s *Server) handleMe(c *fiber.Ctx) error {
	p := who(c)
	return c.JSON(struct {
		Role    string `json:"role"`
		Cliente string `json:"cliente,omitempty"`
		Demo    bool   `json:"demo"`
	}{p.Role, p.Cliente, s.opts.DemoScan != nil})
}

// handleListClientes handles "GET /api/clientes": all of them for the
// admin, only its own for a cliente key.
func (s *Server) handleListClientes(c *fiber.Ctx) error {
	p := who(c)
	if p.Role == roleCliente {
		cl, err := s.data.Cliente(c.UserContext(), p.Cliente)
		if err != nil {
			return err
		}
		return c.JSON(items([]engine.Cliente{cl}, ""))
	}
	cls, err := s.data.Clientes(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(items(cls, ""))
}

type createClienteRequest struct {
	ID     string `json:"id"`
	Nombre string `json:"nombre"`
	Region string `json:"region"`
}

// handleCreateCliente handles "POST /api/clientes" (admin).
func (s *Server) handleCreateCliente(c *fiber.Ctx) error {
	var req createClienteRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := engine.ValidateID("cliente", req.ID); err != nil {
		return err
	}
	if req.Region != "" && !validRegion(req.Region) {
		return badRequest("region %q: want a two-letter ISO country code, e.g. \"AR\"", req.Region)
	}
	cl := engine.Cliente{ID: req.ID, Name: req.Nombre, DefaultRegion: req.Region}
	if err := s.data.CreateCliente(c.UserContext(), cl); err != nil {
		return err
	}
	s.eng.AddCliente(cl.ID)
	cl, err := s.data.Cliente(c.UserContext(), cl.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(cl)
}

func validRegion(r string) bool {
	if len(r) != 2 {
		return false
	}
	for _, ch := range r {
		if ch < 'A' || ch > 'Z' {
			return false
		}
	}
	return true
}

// handleGetCliente handles "GET /api/clientes/:id".
func (s *Server) handleGetCliente(c *fiber.Ctx) error {
	cl, err := s.data.Cliente(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(cl)
}

type patchClienteRequest struct {
	Nombre *string `json:"nombre"`
	Region *string `json:"region"`
}

// handlePatchCliente handles "PATCH /api/clientes/:id" (admin): name and
// default region.
func (s *Server) handlePatchCliente(c *fiber.Ctx) error {
	var req patchClienteRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Region != nil && *req.Region != "" && !validRegion(*req.Region) {
		return badRequest("region %q: want a two-letter ISO country code, e.g. \"AR\"", *req.Region)
	}
	cl, err := s.data.UpdateCliente(c.UserContext(), c.Params("id"), func(cl *engine.Cliente) error {
		if req.Nombre != nil {
			cl.Name = *req.Nombre
		}
		if req.Region != nil {
			cl.DefaultRegion = *req.Region
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(cl)
}

// handleCreateKey handles "POST /api/clientes/:id/keys" (admin): a new API
// key for the cliente, shown only in this answer, with its id (for revoking).
func (s *Server) handleCreateKey(c *fiber.Ctx) error {
	key := newToken("lmk_")
	h := hashToken(key)
	if err := s.data.CreateAPIKey(c.UserContext(), c.Params("id"), h); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"key": key, "id": hex.EncodeToString(h[:8]), "cliente": c.Params("id")})
}

type keyView struct {
	ID      string    `json:"id"`
	Created time.Time `json:"creada"`
}

// handleListKeys handles "GET /api/clientes/:id/keys" (admin): the ids and
// creation times of the cliente's keys (never the keys).
func (s *Server) handleListKeys(c *fiber.Ctx) error {
	if _, err := s.data.Cliente(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	ids, created, err := s.data.APIKeys(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	out := make([]keyView, len(ids))
	for i := range ids {
		out[i] = keyView{ID: ids[i], Created: created[i]}
	}
	return c.JSON(items(out, ""))
}

// handleRevokeKey handles "DELETE /api/clientes/:id/keys/:kid" (admin): the
// key stops working at once.
func (s *Server) handleRevokeKey(c *fiber.Ctx) error {
	if err := s.data.RevokeAPIKey(c.UserContext(), c.Params("id"), c.Params("kid")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// handleReplies handles "GET /api/clientes/:id/replies?after=&limit=".
func (s *Server) handleReplies(c *fiber.Ctx) error {
	after, err := queryUint(c, "after")
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, 100, 1000)
	if err != nil {
		return err
	}
	if _, err := s.data.Cliente(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	rs, err := s.data.ClienteReplies(c.UserContext(), c.Params("id"), after, limit)
	if err != nil {
		return err
	}
	next := ""
	if len(rs) == limit {
		next = uitoa(rs[len(rs)-1].Seq)
	}
	return c.JSON(items(rs, next))
}

// page is a list answer: {"items":[…],"next":"…"}; next is the cursor of
// the following page ("" on the last one).
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func items[T any](xs []T, next string) page[T] {
	if xs == nil {
		xs = []T{}
	}
	return page[T]{Items: xs, Next: next}
}
