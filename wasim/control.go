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
//	POST /sim/chat      {"sender":"…","recipient":"…","chat":true} (SetChat)
//	GET  /sim/chat?sender=…&recipient=…        {"chat":bool}       (Chat)
//	POST /sim/reach     {"phone":"…","reach":Reach}                (SetReach; "" for all, {} clears)
//	GET  /sim/timelock?phone=…                 Timelock            (Timelock)
//	POST /sim/timelock/end {"phone":"…"}        {"ended":bool}      (EndTimelock)
//	GET  /sim/acks463                          {"<pn jid>":n}      (Acks463)
//	GET  /sim/delivered                        {"<pn jid>":n}      (DeliveredTo)
//	GET  /sim/nct-salt?phone=…                 {"salt":"base64"}   (NCTSalt)
//	POST /sim/retry     {"recipient":"phone","sender":"device jid","id":"…"}  (RequestRetry)
//	POST /sim/forget-sessions {"phone":"…"}                        (ForgetSessions)
//
// Durations inside Faults, Chaos, Behavior and Reach are JSON numbers of nanoseconds
// (time.Duration).
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
	mux.HandleFunc("POST /sim/chat", s.handleSetChat)
	mux.HandleFunc("GET /sim/chat", s.handleGetChat)
	mux.HandleFunc("POST /sim/reach", s.handleReach)
	mux.HandleFunc("GET /sim/timelock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Timelock(r.URL.Query().Get("phone")))
	})
	mux.HandleFunc("POST /sim/timelock/end", s.handleEndTimelock)
	mux.HandleFunc("GET /sim/acks463", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.Acks463()) })
	mux.HandleFunc("GET /sim/delivered", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.DeliveredTo()) })
	mux.HandleFunc("GET /sim/nct-salt", s.handleNCTSalt)
	mux.HandleFunc("POST /sim/retry", s.handleRetry)
	mux.HandleFunc("POST /sim/forget-sessions", s.handleForgetSessions)
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
	case errors.Is(err, ErrUnknownQR), errors.Is(err, ErrNoCodePairing), errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrNoDevices),
		errors.Is(err, ErrUnknownMessage):
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

// handleSetChat handles "POST /sim/chat".
func (s *Server) handleSetChat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Sender    string `json:"sender"`
		Recipient string `json:"recipient"`
		Chat      *bool  `json:"chat"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if digits(req.Sender) == "" || digits(req.Recipient) == "" || req.Chat == nil {
		writeError(w, http.StatusBadRequest, errors.New(`want {"sender":"…","recipient":"…","chat":true|false}`))
		return
	}
	s.SetChat(req.Sender, req.Recipient, *req.Chat)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleGetChat handles "GET /sim/chat?sender=…&recipient=…".
func (s *Server) handleGetChat(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	writeJSON(w, http.StatusOK, map[string]bool{"chat": s.Chat(q.Get("sender"), q.Get("recipient"))})
}

// handleReach handles "POST /sim/reach".
func (s *Server) handleReach(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone string `json:"phone"`
		Reach Reach  `json:"reach"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Reach.TimelockAfterColdSends < 0 || req.Reach.TimelockFor < 0 {
		writeError(w, http.StatusBadRequest, errors.New("timelock_after_cold_sends and timelock_for must be >= 0"))
		return
	}
	s.SetReach(req.Phone, req.Reach)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleEndTimelock handles "POST /sim/timelock/end".
func (s *Server) handleEndTimelock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone string `json:"phone"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ended": s.EndTimelock(req.Phone)})
}

// handleNCTSalt handles "GET /sim/nct-salt?phone=…".
func (s *Server) handleNCTSalt(w http.ResponseWriter, r *http.Request) {
	phone := r.URL.Query().Get("phone")
	if digits(phone) == "" {
		writeError(w, http.StatusBadRequest, errors.New("want ?phone=…"))
		return
	}
	writeJSON(w, http.StatusOK, map[string][]byte{"salt": s.NCTSalt(phone)})
}

// handleRetry handles "POST /sim/retry": the recipient's phone asks the sender's device to
// resend a message. It answers once the client acked the retry receipt (or it was queued).
func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Recipient string `json:"recipient"`
		Sender    string `json:"sender"`
		ID        string `json:"id"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	sender, err := types.ParseJID(req.Sender)
	if err != nil || sender.User == "" || req.ID == "" || digits(req.Recipient) == "" {
		writeError(w, http.StatusBadRequest, errors.New(`want {"recipient":"phone","sender":"device jid","id":"…"}`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), barrierTimeout)
	defer cancel()
	if err := s.RequestRetry(ctx, req.Recipient, sender, req.ID); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleForgetSessions handles "POST /sim/forget-sessions".
func (s *Server) handleForgetSessions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Phone string `json:"phone"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if err := s.ForgetSessions(req.Phone); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
