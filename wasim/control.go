package wasim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// The control API: JSON over HTTP on the simulator's own port, for a simulator running in
// another process (a crash test kills the appliance, not the simulator). Every action of the
// in-process API has a route. Errors are {"error":"…"} with 400 (bad input), 404 (unknown
// device / QR / pairing), 409 (device not connected), 504 (timeout) or 500.
//
//	GET  /sim/healthz                          "ok"
//	GET  /sim/accounts                         []AccountInfo
//	GET  /sim/events?after=N&wait=5s&kind=K&jid=J   []Event after N; with wait, blocks until one matches
//	POST /sim/scan      {"qr":"…","phone":"…"}      {"jid":"…"}   (ScanQR)
//	POST /sim/paircode  {"phone":"…","code":"…"}    {"jid":"…"}   (EnterPairCode)
//	POST /sim/logout    {"jid":"…"}                                (Logout)
//	POST /sim/stream-error {"jid":"…","code":"503","conflict":""}  (StreamError)
//	POST /sim/drop      {"jid":"…"}                                (Drop)
//	POST /sim/refuse    {"for":"5s"}                               (RefuseConnections)
//	GET  /sim/ledger                           []LedgerEntry, in order of first arrival (Ledger);
//	                                           ?format=ndjson: one entry per line (WriteLedger)
//	POST /sim/users     {"phone":"…","name":"…"}  {"jid":"…"}     (AddUser)
//	POST /sim/send      {"from":"phone","to":"jid","text":"…"} {"id":"…"} (SendText)
//	POST /sim/faults    {"phone":"…","faults":Faults}              (SetFaults; "" for all)
//	POST /sim/chaos     Chaos, or null to turn it off              (SetChaos)
//	POST /sim/behavior  {"phone":"…","behavior":Behavior}          (SetBehavior; "" for all)
//	POST /sim/registered {"phone":"…","registered":false}          (SetRegistered)
//
// Durations inside Faults, Chaos and Behavior are JSON numbers of nanoseconds (time.Duration).
func (s *Server) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /sim/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /sim/accounts", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Accounts()) })
	mux.HandleFunc("GET /sim/events", s.handleEvents)
	mux.HandleFunc("POST /sim/scan", s.handleScan)
	mux.HandleFunc("POST /sim/paircode", s.handlePairCode)
	mux.HandleFunc("POST /sim/logout", s.handleLogout)
	mux.HandleFunc("POST /sim/stream-error", s.handleStreamError)
	mux.HandleFunc("POST /sim/drop", s.handleDrop)
	mux.HandleFunc("POST /sim/refuse", s.handleRefuse)
	mux.HandleFunc("GET /sim/ledger", s.handleLedger)
	mux.HandleFunc("POST /sim/users", s.handleUsers)
	mux.HandleFunc("POST /sim/send", s.handleSend)
	mux.HandleFunc("POST /sim/faults", s.handleFaults)
	mux.HandleFunc("POST /sim/chaos", s.handleChaos)
	mux.HandleFunc("POST /sim/behavior", s.handleBehavior)
	mux.HandleFunc("POST /sim/registered", s.handleRegistered)
}

// pairTimeout bounds a pairing started through the control API.
const pairTimeout = 60 * time.Second

type controlRequest struct {
	QR       string `json:"qr"`
	Phone    string `json:"phone"`
	Code     string `json:"code"`
	JID      string `json:"jid"`
	Conflict string `json:"conflict"`
	For      string `json:"for"`
}

func decodeControl(w http.ResponseWriter, r *http.Request) (*controlRequest, bool) {
	var req controlRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err))
		return nil, false
	}
	return &req, true
}

func (req *controlRequest) jid(w http.ResponseWriter) (types.JID, bool) {
	jid, err := types.ParseJID(req.JID)
	if err != nil || jid.User == "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad jid %q", req.JID))
		return types.EmptyJID, false
	}
	return jid, true
}

// handleScan handles "POST /sim/scan".
func (s *Server) handleScan(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeControl(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pairTimeout)
	defer cancel()
	jid, err := s.ScanQR(ctx, req.QR, req.Phone)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"jid": jid.String()})
}

// handlePairCode handles "POST /sim/paircode".
func (s *Server) handlePairCode(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeControl(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pairTimeout)
	defer cancel()
	jid, err := s.EnterPairCode(ctx, req.Phone, req.Code)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"jid": jid.String()})
}

// handleLogout handles "POST /sim/logout".
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	s.deviceAction(w, r, func(jid types.JID, _ *controlRequest) error { return s.Logout(jid) })
}

// handleStreamError handles "POST /sim/stream-error".
func (s *Server) handleStreamError(w http.ResponseWriter, r *http.Request) {
	s.deviceAction(w, r, func(jid types.JID, req *controlRequest) error { return s.StreamError(jid, req.Code, req.Conflict) })
}

// handleDrop handles "POST /sim/drop".
func (s *Server) handleDrop(w http.ResponseWriter, r *http.Request) {
	s.deviceAction(w, r, func(jid types.JID, _ *controlRequest) error { return s.Drop(jid) })
}

func (s *Server) deviceAction(w http.ResponseWriter, r *http.Request, f func(types.JID, *controlRequest) error) {
	req, ok := decodeControl(w, r)
	if !ok {
		return
	}
	jid, ok := req.jid(w)
	if !ok {
		return
	}
	if err := f(jid, req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleRefuse handles "POST /sim/refuse".
func (s *Server) handleRefuse(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeControl(w, r)
	if !ok {
		return
	}
	d, err := time.ParseDuration(req.For)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad duration %q", req.For))
		return
	}
	s.RefuseConnections(d)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleEvents handles "GET /sim/events": the event log after ?after=N; with ?wait=D it
// long-polls until an event matching ?kind= and ?jid= (device JID or phone) arrives, and
// answers 504 if none does within D.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	kind, jid := EventKind(q.Get("kind")), q.Get("jid")
	match := func(e Event) bool {
		return (kind == "" || e.Kind == kind) && (jid == "" || e.JID == jid || e.Phone == jid)
	}
	if q.Get("wait") == "" {
		out := []Event{}
		for _, e := range s.Events(after) {
			if match(e) {
				out = append(out, e)
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	d, err := time.ParseDuration(q.Get("wait"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad wait %q", q.Get("wait")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	e, err := s.WaitEvent(ctx, after, match)
	if err != nil {
		writeError(w, http.StatusGatewayTimeout, err)
		return
	}
	writeJSON(w, http.StatusOK, []Event{e})
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadQR), errors.Is(err, ErrWrongPairCode):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownQR), errors.Is(err, ErrNoCodePairing), errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrNoDevices):
		return http.StatusNotFound
	case errors.Is(err, ErrNotConnected):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeBody decodes a JSON control body into v (400 on bad JSON).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad JSON body: %w", err))
		return false
	}
	return true
}

// handleFaults handles "POST /sim/faults".
func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone  string `json:"phone"`
		Faults Faults `json:"faults"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	s.SetFaults(req.Phone, req.Faults)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleChaos handles "POST /sim/chaos" (a Chaos, or null to turn chaos mode off).
func (s *Server) handleChaos(w http.ResponseWriter, r *http.Request) {
	var c *Chaos
	if !decodeBody(w, r, &c) {
		return
	}
	if c != nil && (c.DropRate < 0 || c.ErrorRate < 0 || c.NoAckRate < 0 || c.SlowRate < 0 ||
		c.DropRate+c.ErrorRate+c.NoAckRate+c.SlowRate > 1) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("chaos rates must be >= 0 and sum to at most 1"))
		return
	}
	s.SetChaos(c)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleBehavior handles "POST /sim/behavior".
func (s *Server) handleBehavior(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone    string   `json:"phone"`
		Behavior Behavior `json:"behavior"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	s.SetBehavior(req.Phone, req.Behavior)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleRegistered handles "POST /sim/registered".
func (s *Server) handleRegistered(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone      string `json:"phone"`
		Registered *bool  `json:"registered"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if digits(req.Phone) == "" || req.Registered == nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`want {"phone":"…","registered":true|false}`))
		return
	}
	s.SetRegistered(req.Phone, *req.Registered)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleLedger handles "GET /sim/ledger" (?format=ndjson for NDJSON).
func (s *Server) handleLedger(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("format") == "ndjson" {
		w.Header().Set("Content-Type", "application/x-ndjson")
		_ = s.WriteLedger(w)
		return
	}
	writeJSON(w, http.StatusOK, s.Ledger())
}

// handleUsers handles "POST /sim/users": a simulated user with a push name.
func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone string `json:"phone"`
		Name  string `json:"name"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if digits(req.Phone) == "" {
		writeError(w, http.StatusBadRequest, errors.New(`want {"phone":"…","name":"…"}`))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"jid": s.AddUser(req.Phone, req.Name).String()})
}

// handleSend handles "POST /sim/send": a simulated user sends a text to a linked client.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From string `json:"from"`
		To   string `json:"to"`
		Text string `json:"text"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	to, err := types.ParseJID(req.To)
	if err != nil || to.User == "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("bad jid %q", req.To))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), pairTimeout)
	defer cancel()
	id, err := s.SendText(ctx, req.From, to.ToNonAD(), req.Text)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}
