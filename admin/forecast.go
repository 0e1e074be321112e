package admin

import (
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
)

// maxForecastRuns bounds ?corridas: each run simulates the whole campaign.
const maxForecastRuns = 2000

// handleForecast handles "GET /api/clientes/:id/campaigns/:cid/pronostico":
// the campaign's forecast from now (engine.Forecast): its finish as
// p10/p50/p90, the median run's sends per day and per window, and the
// first rule it will wait for. ?corridas=N sets the runs (default 200).
func (s *Server) handleForecast(c *fiber.Ctx) error {
	runs := 0
	if v := c.Query("corridas"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxForecastRuns {
			return fmt.Errorf("corridas: want a number of runs from 1 to %d, got %q: %w", maxForecastRuns, v, engine.ErrInvalid)
		}
		runs = n
	}
	f, err := s.eng.Forecast(c.UserContext(), campaignOf(c).ID, runs)
	if err != nil {
		return err
	}
	return c.JSON(f)
}
