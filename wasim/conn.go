package wasim

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/types"
)

// Limits of the transport.
const (
	handshakeTimeout = 20 * time.Second
	writeTimeout     = 10 * time.Second
	// readLimit must exceed coder/websocket's 32 KiB default: the first prekey upload is ~50 KiB.
	readLimit = socket.FrameMaxSize + 64
)

var errConnClosed = errors.New("wasim: connection closed")

// conn is one client websocket: Noise transport, node codec, request bookkeeping. Its reader
// runs on the HTTP handler goroutine and dispatches nodes in arrival order; writes may come
// from any goroutine.
type conn struct {
	s      *Server
	id     uint64
	ws     *websocket.Conn
	ctx    context.Context // done when the connection ends
	cancel context.CancelFunc

	// set by the handshake, read-only afterwards
	noiseKey [32]byte
	payload  *waWa6.ClientPayload
	reg      *registration // fresh (registration) connections only
	jid      types.JID     // login connections: the device's phone-number JID

	loggedIn atomic.Bool // <success> sent
	silent   atomic.Bool // Faults.SilentLogin: ignore everything the client sends

	// reader side (reader goroutine only)
	readKey     cipher.AEAD
	readCounter uint32
	inbuf       []byte
	gotHeader   bool

	wmu          sync.Mutex // serialises encrypt+write: counter order = wire order
	writeKey     cipher.AEAD
	writeCounter uint32

	// afterReply, if set by an IQ handler, runs once the IQ's answer is on the wire (reader
	// goroutine only).
	afterReply func()

	pmu     sync.Mutex
	pending map[string]chan *waBinary.Node // server-initiated IQs/notifications awaiting an answer
	nextID  atomic.Uint64
}

// handleWS serves "GET /ws/chat": one client connection, for as long as it lasts.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if until, refused := s.refusing(); refused {
		s.events.add(Event{Kind: EventConnRefused, Detail: "until " + until.Format(time.RFC3339Nano)})
		http.Error(w, "wasim: refusing connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.log.Debug("wasim: websocket accept", "err", err)
		return
	}
	ws.SetReadLimit(readLimit)
	c := &conn{s: s, ws: ws, pending: map[string]chan *waBinary.Node{}}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	if !s.addConn(c) {
		ws.CloseNow()
		c.cancel()
		return
	}
	defer s.removeConn(c)
	c.serve()
}

func (c *conn) serve() {
	hctx, cancel := context.WithTimeout(c.ctx, handshakeTimeout)
	res, err := serverHandshake(c.s.chain, socket.WAConnHeader,
		func() ([]byte, error) { return c.readFrame(hctx) },
		func(b []byte) error { return c.writeFrame(hctx, b) })
	cancel()
	if err != nil {
		c.s.log.Debug("wasim: handshake", "conn", c.id, "err", err)
		c.ws.CloseNow()
		return
	}
	c.noiseKey, c.payload = res.clientStatic, res.payload
	c.readKey, c.writeKey = res.read, res.write
	c.s.events.add(Event{Kind: EventConnOpened, Conn: c.id})

	switch {
	case res.payload.Username != nil:
		c.s.login(c)
	case res.payload.DevicePairingData != nil:
		c.s.startRegistration(c)
	default:
		c.s.log.Warn("wasim: client payload with neither login nor registration data", "conn", c.id)
		c.ws.CloseNow()
		return
	}

	for {
		frame, err := c.readFrame(c.ctx)
		if err != nil {
			c.s.log.Debug("wasim: read", "conn", c.id, "err", err)
			return
		}
		node, err := c.decodeFrame(frame)
		if err != nil {
			c.s.log.Warn("wasim: bad frame from client", "conn", c.id, "err", err)
			c.ws.CloseNow()
			return
		}
		c.s.log.Debug("wasim: recv", "conn", c.id, "node", node)
		c.s.handleNode(c, node)
	}
}

// readFrame returns the next 3-byte-length-prefixed frame, reading websocket messages as
// needed (frames may be split or batched across messages). The first message starts with the
// WA connection header.
func (c *conn) readFrame(ctx context.Context) ([]byte, error) {
	for {
		if len(c.inbuf) >= socket.FrameLengthSize {
			n := int(c.inbuf[0])<<16 | int(c.inbuf[1])<<8 | int(c.inbuf[2])
			if len(c.inbuf) >= socket.FrameLengthSize+n {
				frame := bytes.Clone(c.inbuf[socket.FrameLengthSize : socket.FrameLengthSize+n])
				c.inbuf = c.inbuf[socket.FrameLengthSize+n:]
				return frame, nil
			}
		}
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		if !c.gotHeader {
			if len(data) < len(socket.WAConnHeader) || !bytes.Equal(data[:2], socket.WAConnHeader[:2]) {
				return nil, fmt.Errorf("missing WA connection header")
			}
			data = data[len(socket.WAConnHeader):]
			c.gotHeader = true
		}
		c.inbuf = append(c.inbuf, data...)
	}
}

// writeFrame sends one frame (no header: only the client sends it).
func (c *conn) writeFrame(ctx context.Context, payload []byte) error {
	if len(payload) >= socket.FrameMaxSize {
		return socket.ErrFrameTooLarge
	}
	buf := make([]byte, socket.FrameLengthSize+len(payload))
	buf[0], buf[1], buf[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	copy(buf[socket.FrameLengthSize:], payload)
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageBinary, buf)
}

func (c *conn) decodeFrame(frame []byte) (*waBinary.Node, error) {
	plain, err := c.readKey.Open(frame[:0], noiseIV(c.readCounter), frame, nil)
	c.readCounter++
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	unpacked, err := waBinary.Unpack(plain)
	if err != nil {
		return nil, err
	}
	return waBinary.Unmarshal(unpacked)
}

// send encrypts and writes one node.
func (c *conn) send(n waBinary.Node) error {
	data, err := waBinary.Marshal(n)
	if err != nil {
		return err
	}
	c.s.log.Debug("wasim: send", "conn", c.id, "node", n)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ct := c.writeKey.Seal(nil, noiseIV(c.writeCounter), data, nil)
	c.writeCounter++
	return c.writeFrame(c.ctx, ct)
}

// newID returns a fresh stanza id for server-initiated nodes.
func (c *conn) newID(prefix string) string {
	return prefix + "-" + strconv.FormatUint(c.id, 10) + "." + strconv.FormatUint(c.nextID.Add(1), 10)
}

// request sends n (giving it an id if it has none) and waits for the client's <iq> or <ack>
// with that id.
func (c *conn) request(ctx context.Context, n waBinary.Node) (*waBinary.Node, error) {
	if n.Attrs == nil {
		n.Attrs = waBinary.Attrs{}
	}
	id, _ := n.Attrs["id"].(string)
	if id == "" {
		id = c.newID(n.Tag)
		n.Attrs["id"] = id
	}
	ch := make(chan *waBinary.Node, 1)
	c.pmu.Lock()
	c.pending[id] = ch
	c.pmu.Unlock()
	defer func() {
		c.pmu.Lock()
		delete(c.pending, id)
		c.pmu.Unlock()
	}()
	if err := c.send(n); err != nil {
		return nil, err
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, errConnClosed
	}
}

// responseKey is what an answer from the client is matched on: its id, except for acks of
// receipts, which share the message id of the receipt (and of each other, for delivered and
// read), so their type is part of the key.
func responseKey(n *waBinary.Node) string {
	id, _ := n.Attrs["id"].(string)
	ag := n.AttrGetter()
	if n.Tag == "ack" && ag.OptionalString("class") == "receipt" {
		return receiptAckKey(id, ag.OptionalString("type"))
	}
	return id
}

func receiptAckKey(id, typ string) string { return "receipt:" + id + "/" + typ }

// sendAwait registers a waiter under key, then sends n; the channel gets the client's answer.
// cancel removes the waiter.
func (c *conn) sendAwait(key string, n waBinary.Node) (ch chan *waBinary.Node, cancel func(), err error) {
	ch = make(chan *waBinary.Node, 1)
	c.pmu.Lock()
	c.pending[key] = ch
	c.pmu.Unlock()
	cancel = func() {
		c.pmu.Lock()
		if c.pending[key] == ch {
			delete(c.pending, key)
		}
		c.pmu.Unlock()
	}
	if err = c.send(n); err != nil {
		cancel()
	}
	return ch, cancel, err
}

// deliverResponse hands an <iq type=result|error>, <ack> or <receipt> to a waiting request.
func (c *conn) deliverResponse(n *waBinary.Node) bool {
	id := responseKey(n)
	c.pmu.Lock()
	ch := c.pending[id]
	delete(c.pending, id)
	c.pmu.Unlock()
	if ch == nil {
		return false
	}
	ch <- n
	return true
}

// close ends the connection: gracefully (websocket close handshake) or by dropping the TCP
// connection. It does not wait for the reader to notice.
func (c *conn) close(graceful bool) {
	if graceful {
		c.s.goTracked(func() { _ = c.ws.Close(websocket.StatusNormalClosure, "") })
	} else {
		_ = c.ws.CloseNow()
	}
}

// closeWhenIdle waits up to d for the client to close the connection itself, then closes it.
func (c *conn) closeWhenIdle(d time.Duration) {
	c.s.goTracked(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-c.ctx.Done():
		case <-t.C:
			_ = c.ws.Close(websocket.StatusNormalClosure, "")
		}
	})
}

// barrier sends a no-op notification and waits (up to d) for the client's ack. whatsmeow
// handles stanzas one at a time in arrival order, so the ack proves that everything sent
// before it has been handled.
func (c *conn) barrier(d time.Duration) error {
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	_, err := c.request(ctx, waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"from": types.ServerJID, "type": "server", "t": strconv.FormatInt(time.Now().Unix(), 10),
	}})
	return err
}
