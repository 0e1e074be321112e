package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"

	"leadmaster/engine"
	"leadmaster/scripting"
)

// scriptHooks adapts the scripting package to engine.Hooks: a campaign with
// a Lua script gets its hooks, each hook it does not define falls back to
// the template and the default opt-out rule. Compiled scripts are cached by
// campaign and source.
type scriptHooks struct {
	mu    sync.Mutex
	cache map[string]cachedScript // campaign id -> compiled script
}

type cachedScript struct {
	sum    [32]byte
	script *scripting.Script
}

// hooksFor is engine.Config.HooksFor.
func (s *scriptHooks) hooksFor(c engine.Campaign) (engine.Hooks, error) {
	if c.Script == "" {
		return engine.TemplateHooks{}, nil
	}
	sum := sha256.Sum256([]byte(c.Script))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]cachedScript{}
	}
	if cs, ok := s.cache[c.ID]; ok && cs.sum == sum {
		return luaHooks{cs.script}, nil
	}
	sc, err := scripting.Compile(c.ID, c.Script)
	if err != nil {
		return nil, err
	}
	if old, ok := s.cache[c.ID]; ok {
		old.script.Close()
	}
	s.cache[c.ID] = cachedScript{sum, sc}
	return luaHooks{sc}, nil
}

// luaHooks is one campaign's script as engine.Hooks.
type luaHooks struct{ s *scripting.Script }

func (h luaHooks) Personalize(ctx context.Context, c engine.Campaign, e engine.Envio) (engine.Rendered, error) {
	if !h.s.HasHook(scripting.HookPersonalize) {
		return engine.TemplateHooks{}.Personalize(ctx, c, e)
	}
	r, err := h.s.Personalize(ctx, scripting.Envio{
		ID: e.Ref.String(), Telefono: e.Telefono, Nombre: e.Nombre, Variables: e.Variables,
		Campana: c.ID, Plantilla: c.Template, Attempt: e.Attempts + 1, TimeZone: c.Schedule.TimeZone,
	})
	if err != nil {
		return engine.Rendered{}, err
	}
	return engine.Rendered{Text: r.Text, Skip: r.Skip, Reason: r.Reason}, nil
}

func (h luaHooks) Throttle(ctx context.Context, c engine.Campaign, st engine.ThrottleStats) (engine.ThrottleDecision, error) {
	if !h.s.HasHook(scripting.HookThrottle) {
		return engine.ThrottleDecision{}, nil
	}
	disponible := 0
	if c.Schedule.DailyQuota > 0 {
		disponible = max(c.Schedule.DailyQuota-st.SentToday, 0)
	}
	d, err := h.s.Throttle(ctx, scripting.Stats{
		Campana: c.ID, SentToday: st.SentToday, SentLastHour: st.SentLastHour, ErrorStreak: st.ErrorStreak,
		Cupo: c.Schedule.DailyQuota, Disponible: disponible, Now: st.LocalTime, TimeZone: c.Schedule.TimeZone,
	})
	if err != nil {
		return engine.ThrottleDecision{}, err
	}
	return engine.ThrottleDecision{Delay: d.Delay, PauseUntil: d.PauseUntil, Skip: d.Skip}, nil
}

func (h luaHooks) OnReply(ctx context.Context, c engine.Campaign, e engine.Envio, r engine.Reply) (engine.ReplyDecision, error) {
	if !h.s.HasHook(scripting.HookOnReply) {
		return engine.TemplateHooks{}.OnReply(ctx, c, e, r)
	}
	a, err := h.s.OnReply(ctx, scripting.Reply{
		Telefono: r.From, Nombre: e.Nombre, Texto: r.Text, Campana: c.ID, EnvioID: e.Ref.String(),
		Now: r.At, TimeZone: c.Schedule.TimeZone,
	})
	if errors.Is(err, scripting.ErrNoHook) {
		return engine.TemplateHooks{}.OnReply(ctx, c, e, r)
	}
	if err != nil {
		return engine.ReplyDecision{}, err
	}
	tag := ""
	if len(a.Tags) > 0 {
		tag = a.Tags[0]
	}
	return engine.ReplyDecision{OptOut: a.OptOut, Tag: tag}, nil
}
