package wa

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"leadmaster/engine"
)

// maxJIDCache bounds the per-session cache of JIDs resolved by IsOnWhatsApp.
const maxJIDCache = 10000

// errGateClosed is the cause of a request's context canceled because the
// live gate closed while it was in flight.
var errGateClosed = errors.New("the connection was lost during the request")

// liveConn returns the cliente's client if the live gate is open, and ctx
// derived so that it ends when the gate closes (call done when finished).
func (m *Manager) liveConn(ctx context.Context, cliente string) (s *session, c *conn, rctx context.Context, done func(), err error) {
	s = m.lookup(cliente)
	if s == nil {
		return nil, nil, nil, nil, fmt.Errorf("%w: %w", engine.ErrSessionDown, engine.ErrNoSession)
	}
	s.mu.Lock()
	if !s.live || s.c == nil {
		st := s.cur.State
		s.mu.Unlock()
		return nil, nil, nil, nil, fmt.Errorf("%w: %s", engine.ErrSessionDown, st)
	}
	c, gate := s.c, s.gate
	s.mu.Unlock()
	rctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(gate, func() { cancel(errGateClosed) })
	return s, c, rctx, func() { stop(); cancel(nil) }, nil
}

// gateErr reports a request cut short by the gate closing as ErrSessionDown.
func gateErr(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errGateClosed) {
		return fmt.Errorf("%w: %w", engine.ErrSessionDown, errGateClosed)
	}
	return err
}

// Send sends m.Text to m.To with m.MsgID as the message id and returns the
// server's timestamp of its ack. Errors: engine.ErrSessionDown (gate
// closed, or it closed during the send: the send is abandoned at once,
// its outcome unknown; a resend with the same id is deduplicated), *engine.AckError
// (the server refused the id with a code), engine.ErrNotOnWhatsApp, ctx's
// error or the SendTimeout's (outcome unknown), or another transient error.
func (m *Manager) Send(ctx context.Context, cliente string, msg engine.Outgoing) (time.Time, error) {
	if msg.MsgID == "" {
		return time.Time{}, fmt.Errorf("send to %s: %w: empty message id", msg.To, engine.ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, m.opts.SendTimeout)
	defer cancel()
	s, c, ctx, done, err := m.liveConn(ctx, cliente)
	if err != nil {
		return time.Time{}, err
	}
	defer done()
	jid, err := s.resolve(ctx, c, msg.To)
	if err != nil {
		return time.Time{}, gateErr(ctx, err)
	}
	resp, err := c.cli.SendMessage(ctx, jid, &waE2E.Message{Conversation: proto.String(msg.Text)},
		whatsmeow.SendRequestExtra{ID: types.MessageID(msg.MsgID)})
	if err != nil {
		return time.Time{}, gateErr(ctx, mapSendErr(err, msg.MsgID))
	}
	return resp.Timestamp, nil
}

// mapSendErr turns a SendMessage error into the engine's.
func mapSendErr(err error, id string) error {
	// send.go: fmt.Errorf("no LID found for %s from server", to), before
	// anything is sent; whatsmeow has no sentinel for it.
	if strings.Contains(err.Error(), "no LID found for ") {
		return fmt.Errorf("%w: %w", engine.ErrNoLID, err)
	}
	if errors.Is(err, whatsmeow.ErrServerReturnedError) {
		// send.go: fmt.Errorf("%w %d", ErrServerReturnedError, code)
		s := strings.TrimSpace(strings.TrimPrefix(err.Error(), whatsmeow.ErrServerReturnedError.Error()))
		if code, perr := strconv.Atoi(s); perr == nil {
			return &engine.AckError{MsgID: id, Code: code}
		}
	}
	return mapErr(err)
}

// mapErr classifies whatsmeow errors common to every request.
func mapErr(err error) error {
	var disc *whatsmeow.DisconnectedError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, whatsmeow.ErrNotConnected), errors.Is(err, whatsmeow.ErrNotLoggedIn),
		errors.As(err, &disc), errors.Is(err, whatsmeow.ErrClientIsNil):
		return fmt.Errorf("%w: %w", engine.ErrSessionDown, err)
	}
	return err
}

// digits checks an E.164 phone and returns it without '+'.
func digits(phone string) (string, error) {
	d := strings.TrimPrefix(phone, "+")
	if len(d) < 7 || len(d) > 15 || d[0] == '0' {
		return "", fmt.Errorf("phone %q: %w: not E.164", phone, engine.ErrInvalid)
	}
	for _, r := range d {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("phone %q: %w: not E.164", phone, engine.ErrInvalid)
		}
	}
	return d, nil
}

// needsLookup says whether a number's JID cannot be derived from its E.164
// form: Mexican mobiles are registered as 521 + ten digits, while E.164 has
// dropped the 1 since 2019, so the server's answer is the only sure JID.
func needsLookup(d string) bool {
	return strings.HasPrefix(d, "52") && len(d) == 12
}

// resolve returns the JID to send to: derived from the phone, or looked up
// with IsOnWhatsApp (and cached) where deriving is not safe.
func (s *session) resolve(ctx context.Context, c *conn, phone string) (types.JID, error) {
	d, err := digits(phone)
	if err != nil {
		return types.JID{}, err
	}
	if !needsLookup(d) {
		return types.NewJID(d, types.DefaultUserServer), nil
	}
	s.mu.Lock()
	jid, ok := s.jids[d]
	s.mu.Unlock()
	if ok {
		return jid, nil
	}
	on, err := s.lookup(ctx, c, []string{phone})
	if err != nil {
		return types.JID{}, err
	}
	if !on[phone] {
		return types.JID{}, fmt.Errorf("%s: %w", phone, engine.ErrNotOnWhatsApp)
	}
	s.mu.Lock()
	jid = s.jids[d]
	s.mu.Unlock()
	return jid, nil
}

// lookup asks the server which phones are on WhatsApp and caches the JIDs
// of those that are.
func (s *session) lookup(ctx context.Context, c *conn, phones []string) (map[string]bool, error) {
	queries := make([]string, 0, len(phones))
	byDigits := make(map[string]string, len(phones))
	for _, p := range phones {
		d, err := digits(p)
		if err != nil {
			return nil, err
		}
		queries = append(queries, "+"+d)
		byDigits[d] = p
	}
	res, err := c.cli.IsOnWhatsApp(ctx, queries)
	if err != nil {
		return nil, fmt.Errorf("is on whatsapp: %w", mapErr(err))
	}
	out := make(map[string]bool, len(phones))
	for _, p := range phones {
		out[p] = false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range res {
		d := strings.TrimPrefix(r.Query, "+")
		p, ok := byDigits[d]
		if !ok {
			continue
		}
		out[p] = r.IsIn
		if r.IsIn && !r.JID.IsEmpty() {
			if len(s.jids) >= maxJIDCache {
				clear(s.jids)
			}
			s.jids[d] = r.JID.ToNonAD()
		}
	}
	return out, nil
}

// OnWhatsApp checks which E.164 phones have a WhatsApp account (one usync
// query). ErrSessionDown when the gate is closed.
func (m *Manager) OnWhatsApp(ctx context.Context, cliente string, phones []string) (map[string]bool, error) {
	s, c, ctx, done, err := m.liveConn(ctx, cliente)
	if err != nil {
		return nil, err
	}
	defer done()
	if len(phones) == 0 {
		return map[string]bool{}, nil
	}
	on, err := s.lookup(ctx, c, phones)
	return on, gateErr(ctx, err)
}

// Typing shows "typing…" in the chat with phone (best effort; no lookup).
func (m *Manager) Typing(ctx context.Context, cliente, phone string) error {
	s, c, ctx, done, err := m.liveConn(ctx, cliente)
	if err != nil {
		return err
	}
	defer done()
	d, err := digits(phone)
	if err != nil {
		return err
	}
	s.mu.Lock()
	jid, ok := s.jids[d]
	s.mu.Unlock()
	if !ok {
		jid = types.NewJID(d, types.DefaultUserServer)
	}
	if err := c.cli.SendChatPresence(ctx, jid, types.ChatPresenceComposing, types.ChatPresenceMediaText); err != nil {
		return fmt.Errorf("typing: %w", gateErr(ctx, mapErr(err)))
	}
	return nil
}

// receipt forwards delivered and read receipts of our messages.
func (s *session) receipt(c *conn, e *events.Receipt) {
	var kind engine.ReceiptKind
	switch e.Type {
	case types.ReceiptTypeDelivered:
		kind = engine.ReceiptDelivered
	case types.ReceiptTypeRead:
		kind = engine.ReceiptRead
	default:
		return
	}
	if e.IsFromMe || e.IsGroup || len(e.MessageIDs) == 0 {
		return
	}
	r := engine.Receipt{Cliente: s.id, MsgIDs: make([]string, len(e.MessageIDs)), Kind: kind, At: e.Timestamp}
	for i, id := range e.MessageIDs {
		r.MsgIDs[i] = string(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == c {
		s.queueLocked(func() { s.m.in.Receipt(r) })
	}
}

// message forwards incoming direct text messages as replies.
func (s *session) message(c *conn, e *events.Message) {
	if e.Info.IsFromMe || e.Info.IsGroup || e.Info.Chat.Server == types.BroadcastServer || e.Message == nil {
		return
	}
	text := e.Message.GetConversation()
	if text == "" {
		text = e.Message.GetExtendedTextMessage().GetText()
	}
	if text == "" {
		return
	}
	info := e.Info
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != c {
		return
	}
	s.queueLocked(func() {
		phone, err := s.m.phoneOf(info.Sender, info.SenderAlt)
		if err != nil {
			s.m.log.Warn("reply from an unknown number", "cliente", s.id, "sender", info.Sender, "err", err)
			return
		}
		s.m.in.Reply(engine.Reply{Cliente: s.id, From: phone, MsgID: string(info.ID), Text: text, At: info.Timestamp})
	})
}

// phoneOf returns the E.164 phone of a sender, mapping a LID sender through
// the event's alternative address or the store's LID map.
func (m *Manager) phoneOf(sender, alt types.JID) (string, error) {
	switch {
	case sender.Server == types.DefaultUserServer:
		return "+" + sender.User, nil
	case alt.Server == types.DefaultUserServer:
		return "+" + alt.User, nil
	case sender.Server == types.HiddenUserServer:
		pn, err := m.store.LIDMap.GetPNForLID(context.Background(), sender.ToNonAD())
		if err != nil {
			return "", err
		}
		if pn.IsEmpty() {
			return "", fmt.Errorf("no phone number known for %s", sender)
		}
		return "+" + pn.User, nil
	}
	return "", fmt.Errorf("sender %s is not a user", sender)
}

// reachout forwards the server's reach-out timelock notification.
func (s *session) reachout(c *conn, e *events.NotifyAccountReachoutTimelock) {
	n := engine.ReachNotice{Cliente: s.id, Active: e.IsActive, Until: e.TimeEnforcementEnds.Time, Enforcement: e.EnforcementType}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == c {
		s.queueLocked(func() { s.m.in.ReachChanged(n) })
	}
}

// tcTokenBucket is one of the 7-day buckets of a privacy token: WhatsApp
// honours a token for four of them (whatsmeow's tctoken.go), counted from
// the start of the oldest.
const tcTokenBucket = 7 * 24 * time.Hour

// HasChat says whether the cliente's device holds an unexpired privacy
// token (tctoken) of phone: WhatsApp issues one when the two have a chat,
// and a message carrying it does not count as reaching out.
func (m *Manager) HasChat(ctx context.Context, cliente, phone string) (bool, error) {
	s := m.lookup(cliente)
	if s == nil {
		return false, nil
	}
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil || c.cli.Store == nil || c.cli.Store.ID == nil {
		return false, nil
	}
	d, err := digits(phone)
	if err != nil {
		return false, err
	}
	// The store answers for the phone or its LID (the LID map links them).
	tok, err := c.cli.Store.PrivacyTokens.GetPrivacyToken(ctx, types.NewJID(d, types.DefaultUserServer))
	if err != nil {
		return false, fmt.Errorf("privacy token of %s: %w", phone, err)
	}
	return tok != nil && len(tok.Token) > 0 && !tokenExpired(tok.Timestamp, time.Now()), nil
}

// tokenExpired mirrors whatsmeow's isTCTokenExpired: a token older than
// the start of the bucket three before the current one is void.
func tokenExpired(ts, now time.Time) bool {
	b := int64(tcTokenBucket / time.Second)
	cutoff := time.Unix((now.Unix()/b-3)*b, 0)
	return ts.IsZero() || ts.Before(cutoff)
}
