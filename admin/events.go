package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"leadmaster/engine"
)

// handleEvents handles "GET /api/events?cliente=…": server-sent events,
// "event: session|envio|campaign|reply" with an engine.Event as data;
// "event: stats" with an engine.Stats, at most once per StatsInterval for
// each campaign that changed (the campaign counters, so a page need not
// count transitions itself); "event: lost" with {"lost": n} when this stream
// has missed n events in all because the client read too slowly (reload
// what is shown); and a ": heartbeat" comment every Heartbeat.
// A cliente key sees only its own cliente's events; the admin sees all, or
// one cliente's with ?cliente=.
func (s *Server) handleEvents(c *fiber.Ctx) error {
	p := who(c)
	filter := c.Query("cliente")
	if p.Role == roleCliente {
		if filter != "" && filter != p.Cliente {
			return errorf(fiber.StatusForbidden, "forbidden", "this key belongs to another cliente")
		}
		filter = p.Cliente
	}
	sub := s.eng.Events().Open(s.opts.EventBuffer)
	events := sub.C
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	done := s.ctx.Done()
	ctx := s.ctx
	heartbeat, statsEvery := s.opts.Heartbeat, s.opts.StatsInterval
	s.met.sseClients.Inc()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.met.sseClients.Dec()
		defer sub.Close()
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		statsTick := time.NewTicker(statsEvery)
		defer statsTick.Stop()
		dirty := map[string]bool{} // campaigns whose counters changed since the last stats event
		var lost uint64            // events this stream missed, as last told to the client
		fmt.Fprint(w, "retry: 3000\n: connected\n\n")
		if w.Flush() != nil {
			return
		}
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fmt.Fprint(w, ": heartbeat\n\n")
			case <-statsTick.C:
				if len(dirty) == 0 {
					continue
				}
				for id := range dirty {
					st, err := s.eng.CampaignStats(ctx, id)
					if err != nil {
						continue
					}
					if data, err := json.Marshal(st); err == nil {
						fmt.Fprintf(w, "event: stats\ndata: %s\n\n", data)
					}
				}
				clear(dirty)
			case ev, ok := <-events:
				if !ok {
					return
				}
				if filter != "" && s.clienteOf(ctx, ev) != filter {
					continue
				}
				data, err := json.Marshal(ev)
				if err != nil {
					continue
				}
				fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data)
				if ev.Campaign != "" && (ev.Type == "envio" || ev.Type == "campaign") {
					dirty[ev.Campaign] = true
				}
			}
			if n := sub.Lost(); n > lost {
				// The client missed events (it read too slowly): it should
				// reload what it shows rather than trust its deltas.
				lost = n
				fmt.Fprintf(w, "event: lost\ndata: {\"lost\":%d}\n\n", n)
			}
			if w.Flush() != nil {
				return // the client went away
			}
		}
	})
	return nil
}

// clienteOf is the cliente an event belongs to (envío events carry only
// their campaign).
func (s *Server) clienteOf(ctx context.Context, ev engine.Event) string {
	if ev.Cliente != "" {
		return ev.Cliente
	}
	if ev.Session != nil {
		return ev.Session.Cliente
	}
	if ev.Campaign != "" {
		return s.ownerOf(ctx, ev.Campaign)
	}
	return ""
}
