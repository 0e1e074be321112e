package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"

	"leadmaster/engine"
)

type messageResp struct {
	ID, Clave, Telefono, Texto, Estado, Motivo string
	Campana                                    string
	Envio                                      uint64
}

// postMessage sends POST …/mensajes with an Idempotency-Key.
func (h *harness) postMessage(cliente, token, key, query string, body any) (resp, messageResp) {
	h.t.Helper()
	data, _ := json.Marshal(body)
	req := httptest.NewRequest("POST", "/api/clientes/"+cliente+"/mensajes"+query, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := h.srv.App().Test(req, -1)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m messageResp
	_ = json.Unmarshal(b, &m)
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}, m
}

func TestMessagesAPI(t *testing.T) {
	h := newHarness(t, nil)
	key1, key2 := h.setup()
	h.gw.SetReady("c1", false) // held: nothing goes out until the end
	body := map[string]string{"telefono": "011 2345-6701", "texto": "Tu turno es mañana a las 10"}

	r, m := h.postMessage("c1", key1, "turno-1", "", body)
	if r.Status != 202 || m.ID == "" || m.Clave != "turno-1" || m.Estado != "pendiente" || m.Telefono != "+541123456701" || m.Texto != body["texto"] {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	r2, m2 := h.postMessage("c1", key1, "turno-1", "", body)
	if r2.Status != 202 || m2.ID != m.ID || m2.Texto != body["texto"] || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("same key: %d %s %v", r2.Status, r2.Body, r2.Header)
	}
	// The same key for another message is the caller's bug: 422, nothing sent.
	if r, _ := h.postMessage("c1", key1, "turno-1", "", map[string]string{"telefono": "+5491123456799", "texto": "otro"}); r.Status != 422 || !bytes.Contains(r.Body, []byte("idempotency_key_reused")) {
		t.Fatalf("the key for another message: %d %s", r.Status, r.Body)
	}
	// No key: one is made up and answered.
	r3, m3 := h.postMessage("c1", key1, "", "", body)
	if r3.Status != 202 || m3.Clave == "" || r3.Header.Get("Idempotency-Key") != m3.Clave || m3.ID == m.ID {
		t.Fatalf("no key: %d %s", r3.Status, r3.Body)
	}
	// The ack does not come in time: 504, the message still tracked.
	if r, m := h.postMessage("c1", key1, "turno-1", "?esperar=50ms", body); r.Status != 504 || m.Estado != "pendiente" {
		t.Fatalf("esperar while held: %d %s", r.Status, r.Body)
	}
	for _, bad := range []struct {
		query string
		body  any
		code  int
	}{
		{"?esperar=2m", body, 400},
		{"?esperar=abc", body, 400},
		{"", map[string]string{"telefono": "12", "texto": "x"}, 400},
		{"", map[string]string{"telefono": "+5491123456701", "texto": " "}, 400},
		{"", map[string]any{"telefono": "+5491123456701", "texto": "x", "extra": 1}, 400},
	} {
		if r, _ := h.postMessage("c1", key1, "bad", bad.query, bad.body); r.Status != bad.code {
			t.Errorf("POST%s %v: %d %s, want %d", bad.query, bad.body, r.Status, r.Body, bad.code)
		}
	}
	if err := h.db.Suppress(context.Background(), "c1", "+5491123456702", engine.ReasonOptOut); err != nil {
		t.Fatal(err)
	}
	if r, _ := h.postMessage("c1", key1, "baja", "", map[string]string{"telefono": "+5491123456702", "texto": "x"}); r.Status != 409 || !bytes.Contains(r.Body, []byte("opted_out")) {
		t.Fatalf("opted out: %d %s", r.Status, r.Body)
	}
	// Another cliente's key cannot post for c1, nor read its messages.
	if r, _ := h.postMessage("c1", key2, "x", "", body); r.Status != 403 {
		t.Fatalf("c2's key posting for c1: %d", r.Status)
	}
	h.must(403, h.do("GET", "/api/clientes/c1/mensajes/"+m.ID, key2, nil))

	// Released: the message is acked, and esperar answers 200 with the state.
	h.gw.SetReady("c1", true)
	h.eng.SessionChanged(engine.SessionEvent{Cliente: "c1", State: engine.SessionReady})
	r, m = h.postMessage("c1", key1, "turno-1", "?esperar=20s", body)
	if r.Status != 200 || m.Estado != "enviado" {
		t.Fatalf("esperar after release: %d %s", r.Status, r.Body)
	}
	var got messageResp
	if err := json.Unmarshal(h.must(200, h.do("GET", "/api/clientes/c1/mensajes/"+m.ID, key1, nil)).Body, &got); err != nil || got.ID != m.ID || got.Estado != "enviado" || got.Clave != "turno-1" {
		t.Fatalf("GET by id: %+v %v", got, err)
	}
	if err := json.Unmarshal(h.must(200, h.do("GET", "/api/clientes/c1/mensajes/turno-1", key1, nil)).Body, &got); err != nil || got.ID != m.ID {
		t.Fatalf("GET by key: %+v %v", got, err)
	}
	h.must(404, h.do("GET", "/api/clientes/c1/mensajes/nada", key1, nil))
	var list struct{ Items []messageResp }
	if err := json.Unmarshal(h.must(200, h.do("GET", "/api/clientes/c1/mensajes?estado=enviado", key1, nil)).Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) == 0 || list.Items[0].ID != m.ID || list.Items[0].Clave != "turno-1" {
		t.Fatalf("list: %+v", list)
	}
	if err := json.Unmarshal(h.must(200, h.do("GET", "/api/clientes/c2/mensajes", key2, nil)).Body, &list); err != nil || len(list.Items) != 0 {
		t.Fatalf("c2 has no messages: %+v %v", list, err)
	}
	acked := h.gw.AckedIDs()
	if acked[m.ID] != 1 {
		t.Errorf("message %s acked %d times", m.ID, acked[m.ID])
	}
}

// The messages campaign takes no upload: its envíos come one by one.
func TestMessagesCampaignTakesNoUpload(t *testing.T) {
	h := newHarness(t, nil)
	key1, _ := h.setup()
	_, m := h.postMessage("c1", key1, "k", "", map[string]string{"telefono": "+5491123456701", "texto": "hola"})
	r := h.doCT("POST", "/api/clientes/c1/campaigns/"+m.Campana+"/envios", key1, "text/csv", "telefono\n+5491123456702\n")
	if r.Status != 409 {
		t.Fatalf("upload into the messages campaign: %d %s", r.Status, r.Body)
	}
}
