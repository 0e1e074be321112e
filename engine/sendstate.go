package engine

import (
	"time"
)

// SendState says whether a cliente's worker is sending and, when it is
// not, why and until when: the send loop's waits and failures as named
// state (GET …/session, SSE "sending" events, /metrics, the page), so a
// stall is never silent.
type SendState struct {
	Cliente string `json:"cliente"`
	// Estado: SendingActive (sending, or pacing between sends), SendingIdle
	// (nothing due) or SendingPaused (something holds every send: Motivo).
	Estado  string    `json:"estado"`
	Motivo  string    `json:"motivo,omitempty"` // a Wait* or Block* reason
	Hasta   time.Time `json:"hasta,omitzero"`   // when it is looked at again
	Detalle string    `json:"detalle,omitempty"`
	At      time.Time `json:"at"`
}

// SendState.Estado values.
const (
	SendingActive = "enviando"
	SendingIdle   = "inactivo"
	SendingPaused = "pausado"
)

// Reasons a cliente's sends wait. Wait* hold a campaign (also given per
// campaign in its stats); Block* hold the whole cliente.
const (
	WaitWindow    = "ventana"        // outside the campaign's programación
	WaitQuota     = "cupo_diario"    // the campaign's daily quota is used up
	WaitHourlyCap = "tope_por_hora"  // the number's hourly cap
	WaitDailyCap  = "tope_diario"    // the number's daily cap (with the warm-up ramp)
	WaitScript    = "script"         // the campaign's throttle hook holds it (pause_until, skip)
	BlockSession  = "sesion"         // the WhatsApp session is not READY
	BlockBreaker  = "cortacircuito"  // consecutive failures: the number rests
	BlockReach    = "bloqueo_nuevos" // WhatsApp's reach lock: cold recipients wait
	BlockStore    = "almacenamiento" // the data file cannot be written
	BlockDiskLow  = "disco_lleno"    // free space on the data disk is below the floor
)

// CampaignWait is why an active campaign sends nothing now, until when.
type CampaignWait struct {
	Motivo string    `json:"motivo"`
	Hasta  time.Time `json:"hasta,omitzero"`
}

// SendState is the cliente's current send state (zero Estado: no worker).
func (e *Engine) SendState(cliente string) SendState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sending[cliente]
}

// CampaignWait is why campaign id waits, if its worker said so at its
// last look.
func (e *Engine) CampaignWait(id string) (CampaignWait, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, ok := e.waits[id]
	return w, ok
}

// StoreHealthy reports whether the last write of every worker succeeded;
// err is the last failure while one stands.
func (e *Engine) StoreHealthy() (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.sending {
		if s.Motivo == BlockStore || s.Motivo == BlockDiskLow {
			return false, storeError(s.Detalle)
		}
	}
	return true, nil
}

type storeError string

func (s storeError) Error() string { return string(s) }

// setSendState records and, if it changed (reason, state or end), publishes
// the cliente's send state; a store pause publishes once, not per recheck.
func (e *Engine) setSendState(s SendState) {
	s.At = e.cfg.Clock.Now()
	e.mu.Lock()
	prev := e.sending[s.Cliente]
	e.sending[s.Cliente] = s
	e.mu.Unlock()
	// A disk below the floor or a failing data file is looked at again
	// every few seconds: a new recheck time (or free-space figure) is no
	// change worth an event and a log line each time.
	recheck := s.Motivo == BlockDiskLow || s.Motivo == BlockStore
	if prev.Estado == s.Estado && prev.Motivo == s.Motivo && (recheck || prev.Hasta.Equal(s.Hasta) && prev.Detalle == s.Detalle) {
		return
	}
	if s.Estado == SendingPaused {
		e.log.Info("sending paused", "cliente", s.Cliente, "reason", s.Motivo, "until", s.Hasta, "detail", s.Detalle)
	}
	sc := s
	e.events.Publish(Event{Type: "sending", At: s.At, Cliente: s.Cliente, Status: s.Estado, Reason: s.Motivo, Sending: &sc})
}

// setCampaignWaits replaces the waits of a cliente's campaigns.
func (e *Engine) setCampaignWaits(ids []string, waits map[string]CampaignWait) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if w, ok := waits[id]; ok {
			e.waits[id] = w
		} else {
			delete(e.waits, id)
		}
	}
}

// FreeSpace is the data disk's free bytes, if Config.FreeSpace can tell.
func (e *Engine) FreeSpace() (uint64, bool) {
	if e.cfg.FreeSpace == nil {
		return 0, false
	}
	free, err := e.cfg.FreeSpace()
	return free, err == nil
}
