package admin_test

import (
	"testing"

	"leadmaster/engine"
)

// A cliente's messages campaign id is derived from its id
// (engine.MessagesCampaignID), and campaign ids are global: another
// cliente must not be able to take it, or every transactional message of
// the first one answers 409 for ever.
func TestReview_MessagesCampaignIDCannotBeTakenByAnotherCliente(t *testing.T) {
	h := newHarness(t, nil)
	key1, key2 := h.setup()
	h.gw.SetReady("c1", false)
	r := h.do("POST", "/api/clientes/c2/campaigns", key2, map[string]any{"id": engine.MessagesCampaignID("c1"), "nombre": "squat", "plantilla": "Hola {{nombre}}"})
	if r.Status < 400 || r.Status >= 500 {
		t.Errorf("c2 creating c1's messages campaign: %d %s, want a 4xx", r.Status, r.Body)
	}
	m, _ := h.postMessage("c1", key1, "k-1", "", map[string]string{"telefono": "+5491123456701", "texto": "hola"})
	if m.Status != 202 {
		t.Errorf("c1's message: %d %s, want 202", m.Status, m.Body)
	}
}
