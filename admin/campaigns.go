package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
	"leadmaster/scripting"
)

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

// handleListCampaigns handles "GET /api/clientes/:id/campaigns".
func (s *Server) handleListCampaigns(c *fiber.Ctx) error {
	if _, err := s.data.Cliente(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	cs, err := s.data.Campaigns(c.UserContext(), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(items(cs, ""))
}

type createCampaignRequest struct {
	ID           string          `json:"id"`
	Nombre       string          `json:"nombre"`
	Plantilla    string          `json:"plantilla"`
	Script       string          `json:"script"`
	Programacion engine.Schedule `json:"programacion"`
	Ritmo        ritmo           `json:"ritmo"`
}

// ritmo is a campaign's engine.Rate as the API reads it
// (engine.ParseRateJSON): durations as Go duration strings ("30s") or
// numbers of seconds (30), never nanoseconds. Answers write strings.
type ritmo engine.Rate

func (r *ritmo) UnmarshalJSON(data []byte) error {
	v, err := engine.ParseRateJSON(data)
	if te, ok := engine.IsDurationError(err); ok {
		return fmt.Errorf("ritmo.%s: want a duration like \"30s\" or seconds, got %s", te.Field, te.Value)
	}
	if err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return err // the decoder adds the path: field "ritmo.por_hora"
		}
		return fmt.Errorf("ritmo: %w", err)
	}
	*r = ritmo(v)
	return nil
}

// maxRateDelay bounds ritmo's delays: a longer pause between two sends is
// a mistake, most likely nanoseconds sent as seconds.
const maxRateDelay = 7 * 24 * time.Hour

// handleCreateCampaign handles "POST /api/clientes/:id/campaigns": a new
// borrador.
func (s *Server) handleCreateCampaign(c *fiber.Ctx) error {
	var req createCampaignRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	camp := engine.Campaign{ID: req.ID, Cliente: c.Params("id"), Name: req.Nombre, Template: req.Plantilla, Script: req.Script, Schedule: req.Programacion, Rate: engine.Rate(req.Ritmo)}
	if err := engine.ValidateID("campaña", camp.ID); err != nil {
		return err
	}
	if err := validateCampaign(camp); err != nil {
		return err
	}
	if err := s.data.CreateCampaign(c.UserContext(), camp); err != nil {
		return err
	}
	camp, err := s.data.Campaign(c.UserContext(), camp.ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(camp)
}

// validateCampaign checks the editable fields: programación, ritmo, and
// that the script compiles (a syntax error is answered with its line).
func validateCampaign(c engine.Campaign) error {
	if err := c.Schedule.Validate(); err != nil {
		return badRequest("programacion: %v", err)
	}
	if c.Schedule.TimeZone != "" && !scripting.ValidZone(c.Schedule.TimeZone) {
		return badRequest("programacion.zona: unknown time zone %q", c.Schedule.TimeZone)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"min_delay", c.Rate.MinDelay}, {"max_delay", c.Rate.MaxDelay}} {
		switch {
		case d.v < 0:
			return badRequest("ritmo.%s: want a duration of 0 or more, got %q", d.field, d.v.String())
		case d.v > maxRateDelay:
			return badRequest("ritmo.%s: %s is more than a week between sends (a number counts seconds, not nanoseconds)", d.field, d.v)
		}
	}
	if err := c.Rate.Validate(); err != nil {
		return badRequest("ritmo: %v", err)
	}
	if c.Script != "" {
		sc, err := scripting.Compile(c.ID, c.Script)
		if err != nil {
			return err
		}
		sc.Close()
	}
	return nil
}

// handleGetCampaign handles "GET /api/clientes/:id/campaigns/:cid".
func (s *Server) handleGetCampaign(c *fiber.Ctx) error {
	return c.JSON(campaignOf(c))
}

type patchCampaignRequest struct {
	Nombre       *string          `json:"nombre"`
	Plantilla    *string          `json:"plantilla"`
	Script       *string          `json:"script"`
	Programacion *engine.Schedule `json:"programacion"`
	Ritmo        *ritmo           `json:"ritmo"`
}

// handlePatchCampaign handles "PATCH /api/clientes/:id/campaigns/:cid":
// the fields present are replaced; a finished campaign cannot change.
func (s *Server) handlePatchCampaign(c *fiber.Ctx) error {
	var req patchCampaignRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.updateCampaign(c, func(camp *engine.Campaign) {
		if req.Nombre != nil {
			camp.Name = *req.Nombre
		}
		if req.Plantilla != nil {
			camp.Template = *req.Plantilla
		}
		if req.Script != nil {
			camp.Script = *req.Script
		}
		if req.Programacion != nil {
			camp.Schedule = *req.Programacion
		}
		if req.Ritmo != nil {
			camp.Rate = engine.Rate(*req.Ritmo)
		}
	})
}

// updateCampaign validates the edited campaign before anything is written.
func (s *Server) updateCampaign(c *fiber.Ctx, edit func(*engine.Campaign)) error {
	// Validate (and compile) outside the store's write transaction.
	check := campaignOf(c)
	edit(&check)
	if err := validateCampaign(check); err != nil {
		return err
	}
	camp, err := s.data.UpdateCampaign(c.UserContext(), check.ID, func(camp *engine.Campaign) error {
		if camp.Status == engine.Terminada || camp.Status == engine.Cancelada {
			return fmt.Errorf("campaña %q is %s: %w", camp.ID, camp.Status, engine.ErrConflict)
		}
		edit(camp)
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(camp)
}

// handlePutScript handles "PUT /api/clientes/:id/campaigns/:cid/script":
// the body is the Lua source (empty removes the script). A syntax error is
// answered 400 {"error":{"code":"script","message":…,"line":N}}.
func (s *Server) handlePutScript(c *fiber.Ctx) error {
	src := string(c.Body())
	return s.updateCampaign(c, func(camp *engine.Campaign) { camp.Script = src })
}

// handleLifecycle handles "POST …/campaigns/:cid/{start,pause,resume,cancel}".
func (s *Server) handleLifecycle(op func(ctx context.Context, id string) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		camp := campaignOf(c)
		if err := op(c.UserContext(), camp.ID); err != nil {
			return err
		}
		st, err := s.eng.CampaignStats(c.UserContext(), camp.ID)
		if err != nil {
			return err
		}
		return c.JSON(st)
	}
}

// handleStats handles "GET /api/clientes/:id/campaigns/:cid/stats".
func (s *Server) handleStats(c *fiber.Ctx) error {
	st, err := s.eng.CampaignStats(c.UserContext(), campaignOf(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

type previewRequest struct {
	Plantilla string `json:"plantilla"`
	Script    string `json:"script"`
	Row       struct {
		Telefono  string            `json:"telefono"`
		Nombre    string            `json:"nombre"`
		Variables map[string]string `json:"variables"`
	} `json:"row"`
}

type previewResponse struct {
	Text   string `json:"text"`
	Skip   bool   `json:"skip,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// handlePreview handles "POST /api/clientes/:id/campaigns/:cid/preview":
// the page's live preview of one row, through the script's personalize
// hook if a script is given, else the template.
func (s *Server) handlePreview(c *fiber.Ctx) error {
	var req previewRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	camp := campaignOf(c)
	var sc *scripting.Script
	if req.Script != "" {
		var err error
		if sc, err = scripting.Compile(camp.ID, req.Script); err != nil {
			return err
		}
		defer sc.Close()
	}
	if sc == nil || !sc.HasHook(scripting.HookPersonalize) { // the template renders the text
		text, err := engine.RenderTemplate(req.Plantilla, engine.Envio{Cliente: camp.Cliente, Telefono: req.Row.Telefono, Nombre: req.Row.Nombre, Variables: req.Row.Variables})
		if err != nil {
			return errorf(fiber.StatusBadRequest, "template", "%v", err)
		}
		return c.JSON(previewResponse{Text: text})
	}
	res, err := sc.Personalize(c.UserContext(), scripting.Envio{
		ID: camp.ID + "/preview", Telefono: req.Row.Telefono, Nombre: req.Row.Nombre, Variables: req.Row.Variables,
		Campana: camp.ID, Plantilla: req.Plantilla, Attempt: 1, TimeZone: camp.Schedule.TimeZone,
	})
	if err != nil {
		return err
	}
	return c.JSON(previewResponse{Text: res.Text, Skip: res.Skip, Reason: res.Reason})
}
