package wasim

import (
	"sort"
	"strings"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// iqUsync answers user queries: device lists (before every send to a user not cached),
// contact lookups (IsOnWhatsApp), LIDs. Other query parts (status, picture, business…) get
// empty or no elements.
func iqUsync(s *Server, c *conn, iq *waBinary.Node) ([]waBinary.Node, *iqError) {
	us, ok := iq.GetOptionalChildByTag("usync")
	if !ok {
		return nil, &iqError{400, "bad-request"}
	}
	want := map[string]bool{}
	query, list := us.GetChildByTag("query"), us.GetChildByTag("list")
	for _, q := range query.GetChildren() {
		want[q.Tag] = true
	}
	var users []waBinary.Node
	s.mu.Lock()
	for _, u := range list.GetChildren() {
		if u.Tag != "user" {
			continue
		}
		var (
			acc     *Account
			jid     types.JID
			pnJID   types.JID // set for contact queries in addressing_mode lid
			contact waBinary.Node
			isQuery bool
		)
		if ct, ok := u.GetOptionalChildByTag("contact"); ok {
			isQuery = true
			raw := contentString(ct.Content)
			phone := digits(strings.TrimSuffix(raw, "@"+types.LegacyUserServer))
			jid = types.NewJID(phone, types.DefaultUserServer)
			acc = s.lookupLocked(phone)
			typ := "out"
			if acc != nil {
				typ = "in"
			}
			contact = waBinary.Node{Tag: "contact", Attrs: waBinary.Attrs{"type": typ}, Content: []byte(raw)}
			if ct.AttrGetter().OptionalString("addressing_mode") == "lid" {
				// IsOnWhatsApp since whatsmeow 2026-07: the user's LID as jid, the
				// phone as pn_jid; a number not on WhatsApp has no LID.
				pnJID = jid
				if acc != nil {
					jid = acc.LIDJID()
				} else {
					jid = types.EmptyJID
				}
			}
		} else if j, ok := u.Attrs["jid"].(types.JID); ok {
			jid = j.ToNonAD()
			if jid.Server == types.HiddenUserServer {
				acc = s.reg.byLIDLocked(jid.User)
				if acc != nil && acc.Unregistered {
					acc = nil
				}
			} else {
				acc = s.lookupLocked(jid.User)
			}
		} else {
			continue
		}
		var content []waBinary.Node
		for _, tag := range []string{"contact", "devices", "lid", "business"} {
			if !want[tag] {
				continue
			}
			switch tag {
			case "contact":
				if isQuery {
					content = append(content, contact)
				}
			case "devices":
				var list []waBinary.Node
				if acc != nil {
					for _, id := range acc.deviceIDs() {
						list = append(list, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": int(id)}})
					}
				}
				content = append(content, waBinary.Node{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: list}}})
			case "lid":
				if acc != nil {
					content = append(content, waBinary.Node{Tag: "lid", Attrs: waBinary.Attrs{"val": acc.LIDJID()}})
				} else {
					content = append(content, waBinary.Node{Tag: "lid"})
				}
			case "business":
				content = append(content, waBinary.Node{Tag: "business"})
			}
		}
		attrs := waBinary.Attrs{}
		if !jid.IsEmpty() {
			attrs["jid"] = jid
		}
		if !pnJID.IsEmpty() {
			attrs["pn_jid"] = pnJID
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: attrs, Content: content})
	}
	s.mu.Unlock()
	return []waBinary.Node{{Tag: "usync", Attrs: waBinary.Attrs{
		"sid": us.Attrs["sid"], "index": "0", "last": "true",
		"mode": us.Attrs["mode"], "context": us.Attrs["context"],
	}, Content: []waBinary.Node{{Tag: "list", Content: users}}}}, nil
}

// deviceIDs lists the primary phone (0) and the linked devices, in order.
func (a *Account) deviceIDs() []uint16 {
	ids := []uint16{0}
	for id := range a.Devices {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// lookupLocked returns the account of a phone number if it is on WhatsApp: an existing
// registered account, or (unless Options.StrictNumbers) a new one made on the spot, since
// every number is on WhatsApp by default. s.mu must be held.
func (s *Server) lookupLocked(phone string) *Account {
	if phone == "" {
		return nil
	}
	if a := s.reg.Accounts[phone]; a != nil {
		if a.Unregistered {
			return nil
		}
		return a
	}
	if s.opts.StrictNumbers {
		return nil
	}
	a := s.reg.accountLocked(phone, true)
	s.saveLocked()
	return a
}

func contentString(c any) string {
	switch v := c.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}
