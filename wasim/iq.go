package wasim

import (
	"encoding/binary"
	"strconv"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// iqError is an <error code text/> answer to an IQ.
type iqError struct {
	Code int
	Text string
}

// iqHandler answers one client IQ (type get or set) with the children of the result, or an
// error. It runs on the connection's reader goroutine and must not block on the client.
type iqHandler func(s *Server, c *conn, iq *waBinary.Node) ([]waBinary.Node, *iqError)

// iqHandlers is the dispatch table by xmlns. Anything else gets an empty result (the client
// must never wait for its IQ timeout) and an EventIQUnhandled.
var iqHandlers = map[string]iqHandler{
	"w:p":     iqPing,
	"passive": iqPassive,
	"encrypt": iqEncrypt,
	"md":      iqMultiDevice,
	"usync":   iqUsync,
	"privacy": iqPrivacy,
}

func (s *Server) handleIQ(c *conn, iq *waBinary.Node) {
	xmlns := iq.AttrGetter().OptionalString("xmlns")
	h := iqHandlers[xmlns]
	var (
		content []waBinary.Node
		ierr    *iqError
	)
	if h != nil {
		content, ierr = h(s, c, iq)
	} else {
		child := ""
		if ch := iq.GetChildren(); len(ch) > 0 {
			child = ch[0].Tag
		}
		s.log.Info("wasim: unhandled iq, answering empty result", "conn", c.id, "xmlns", xmlns, "child", child)
		s.events.add(Event{Kind: EventIQUnhandled, Conn: c.id, JID: jidString(c.jid), Detail: xmlns + "/" + child})
	}
	resp := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id": iq.Attrs["id"], "from": types.ServerJID, "type": "result",
	}}
	if ierr != nil {
		resp.Attrs["type"] = "error"
		resp.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": ierr.Code, "text": ierr.Text}}}
	} else if content != nil {
		resp.Content = content
	}
	if err := c.send(resp); err != nil {
		s.log.Debug("wasim: iq answer", "conn", c.id, "err", err)
	}
	if f := c.afterReply; f != nil {
		c.afterReply = nil
		f()
	}
}

func jidString(j types.JID) string {
	if j.IsEmpty() {
		return ""
	}
	return j.String()
}

func iqPing(*Server, *conn, *waBinary.Node) ([]waBinary.Node, *iqError) { return nil, nil }

// EventActive: a logged-in client's post-login <iq xmlns="passive"><active/></iq> was
// answered; whatsmeow emits events.Connected right after reading that answer.
const EventActive EventKind = "active"

func iqPassive(s *Server, c *conn, iq *waBinary.Node) ([]waBinary.Node, *iqError) {
	if _, ok := iq.GetOptionalChildByTag("active"); ok && !c.jid.IsEmpty() {
		c.afterReply = func() {
			s.events.add(Event{Kind: EventActive, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User})
		}
	}
	return nil, nil
}

// iqEncrypt handles the Signal key namespace: <count/> (one-time prekeys left on the server),
// the registration upload, and <key> bundle fetches.
func iqEncrypt(s *Server, c *conn, iq *waBinary.Node) ([]waBinary.Node, *iqError) {
	if _, ok := iq.GetOptionalChildByTag("count"); ok {
		s.mu.Lock()
		_, dev := s.reg.deviceLocked(c.jid)
		n := 0
		if dev != nil {
			n = len(dev.PreKeys)
		}
		s.mu.Unlock()
		return []waBinary.Node{{Tag: "count", Attrs: waBinary.Attrs{"value": n}}}, nil
	}
	if list, ok := iq.GetOptionalChildByTag("list"); ok {
		return nil, s.uploadPreKeys(c, iq, &list)
	}
	if key, ok := iq.GetOptionalChildByTag("key"); ok {
		return s.preKeyBundles(c, &key)
	}
	return nil, &iqError{400, "bad-request"}
}

// uploadPreKeys stores a device's registration and one-time prekeys.
func (s *Server) uploadPreKeys(c *conn, iq, list *waBinary.Node) *iqError {
	var fresh []PreKey
	for _, k := range list.GetChildren() {
		id, _ := k.GetChildByTag("id").Content.([]byte)
		val, _ := k.GetChildByTag("value").Content.([]byte)
		if len(id) != 3 || len(val) != 32 {
			return &iqError{400, "bad-request"}
		}
		fresh = append(fresh, PreKey{ID: uint32FromBE(id), Pub: [32]byte(val)})
	}
	regID, _ := iq.GetChildByTag("registration").Content.([]byte)
	ident, _ := iq.GetChildByTag("identity").Content.([]byte)
	skey := iq.GetChildByTag("skey")
	skID, _ := skey.GetChildByTag("id").Content.([]byte)
	skVal, _ := skey.GetChildByTag("value").Content.([]byte)
	skSig, _ := skey.GetChildByTag("signature").Content.([]byte)

	s.mu.Lock()
	_, dev := s.reg.deviceLocked(c.jid)
	if dev == nil || c.jid.IsEmpty() {
		s.mu.Unlock()
		return &iqError{401, "not-authorized"}
	}
	if len(regID) == 4 && len(ident) == 32 && len(skID) == 3 && len(skVal) == 32 && len(skSig) == 64 {
		dev.RegistrationID = binary.BigEndian.Uint32(regID)
		dev.Identity = [32]byte(ident)
		dev.SignedPreKey = SignedPreKey{ID: uint32FromBE(skID), Pub: [32]byte(skVal), Signature: [64]byte(skSig)}
	}
	have := make(map[uint32]bool, len(dev.PreKeys))
	for _, k := range dev.PreKeys {
		have[k.ID] = true
	}
	for _, k := range fresh {
		if !have[k.ID] {
			dev.PreKeys = append(dev.PreKeys, k)
		}
	}
	s.saveLocked()
	s.mu.Unlock()
	s.events.add(Event{Kind: EventPreKeys, Conn: c.id, JID: c.jid.String(), Phone: c.jid.User, Detail: strconv.Itoa(len(fresh))})
	return nil
}

// preKeyBundles answers a <key><user jid reason/>...</key> fetch: simulated primary phones
// (device 0) mint a one-time prekey per fetch; linked devices hand out their uploaded ones.
// Unknown devices get a per-user <error code="404"/>. A device fetching its own bundle (a
// quirk of this whatsmeow version on every send) gets it without a one-time prekey, so its
// stock is not drained.
func (s *Server) preKeyBundles(c *conn, key *waBinary.Node) ([]waBinary.Node, *iqError) {
	var users []waBinary.Node
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range key.GetChildren() {
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		acc, dev := s.reg.deviceLocked(jid)
		switch {
		case acc != nil && jid.Device == 0 && !acc.Unregistered:
			reg, ident, pre, signed := acc.phoneLocked().bundle(true)
			users = append(users, bundleNode(jid, reg, ident, pre, signed))
		case dev != nil && dev.RegistrationID != 0:
			self := jid.User == c.jid.User && jid.Device == c.jid.Device
			var pre *PreKey
			if !self && len(dev.PreKeys) > 0 {
				pre = &dev.PreKeys[0]
				dev.PreKeys = dev.PreKeys[1:]
			}
			users = append(users, bundleNode(jid, dev.RegistrationID, dev.Identity, pre, dev.SignedPreKey))
		default:
			users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{
				{Tag: "error", Attrs: waBinary.Attrs{"code": 404, "text": "item-not-found"}},
			}})
		}
	}
	return []waBinary.Node{{Tag: "list", Content: users}}, nil
}

// bundleNode renders one user's prekey bundle (pre may be nil).
func bundleNode(jid types.JID, regID uint32, ident [32]byte, pre *PreKey, signed SignedPreKey) waBinary.Node {
	reg := make([]byte, 4)
	binary.BigEndian.PutUint32(reg, regID)
	content := []waBinary.Node{
		{Tag: "registration", Content: reg},
		{Tag: "type", Content: []byte{5}},
		{Tag: "identity", Content: ident[:]},
	}
	if pre != nil {
		content = append(content, waBinary.Node{Tag: "key", Content: []waBinary.Node{
			{Tag: "id", Content: uint32ToBE3(pre.ID)}, {Tag: "value", Content: pre.Pub[:]},
		}})
	}
	content = append(content, waBinary.Node{Tag: "skey", Content: []waBinary.Node{
		{Tag: "id", Content: uint32ToBE3(signed.ID)},
		{Tag: "value", Content: signed.Pub[:]},
		{Tag: "signature", Content: signed.Signature[:]},
	}})
	return waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: content}
}

func uint32FromBE(b []byte) uint32 {
	var v uint32
	for _, x := range b {
		v = v<<8 | uint32(x)
	}
	return v
}

func uint32ToBE3(v uint32) []byte { return []byte{byte(v >> 16), byte(v >> 8), byte(v)} }
