package wa

import (
	"context"
	"log/slog"
	"testing"

	"go.mau.fi/whatsmeow/types"

	"leadmaster/engine"
	"leadmaster/kv"
	"leadmaster/kv/devicestore"
)

type nopInbound struct{}

func (nopInbound) SessionChanged(engine.SessionEvent) {}
func (nopInbound) Receipt(engine.Receipt)             {}
func (nopInbound) Reply(engine.Reply)                 {}
func (nopInbound) ReachChanged(engine.ReachNotice)    {}

// A reply's sender is turned into an E.164 phone: a phone-number JID as is,
// a LID through the event's alternative address or the store's LID map.
func TestPhoneOfSender(t *testing.T) {
	db, err := kv.Open(t.TempDir(), kv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := devicestore.New(db.Bolt(), StoreLog(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(db, st, nopInbound{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pn := types.NewJID("5491155550000", types.DefaultUserServer)
	lid := types.NewJID("100000000000077", types.HiddenUserServer)
	if err := m.store.LIDMap.PutLIDMapping(context.Background(), lid, pn); err != nil {
		t.Fatal(err)
	}
	unknown := types.NewJID("100000000000099", types.HiddenUserServer)
	for _, c := range []struct {
		name        string
		sender, alt types.JID
		want        string
	}{
		{"PhoneNumber", types.NewJID("15550002222", types.DefaultUserServer), types.EmptyJID, "+15550002222"},
		{"PhoneNumberDevice", types.JID{User: "15550002222", Server: types.DefaultUserServer, Device: 3}, types.EmptyJID, "+15550002222"},
		{"LIDWithAlt", unknown, types.NewJID("15550003333", types.DefaultUserServer), "+15550003333"},
		{"LIDFromStore", types.JID{User: lid.User, Server: types.HiddenUserServer, Device: 2}, types.EmptyJID, "+5491155550000"},
		{"LIDUnknown", unknown, types.EmptyJID, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.phoneOf(c.sender, c.alt)
			if got != c.want || (c.want == "") != (err != nil) {
				t.Errorf("phoneOf(%s, %s) = %q, %v; want %q", c.sender, c.alt, got, err, c.want)
			}
		})
	}
}

// Phones that are not E.164 are refused before anything is sent; Mexican
// mobiles are looked up, others derived.
func TestDigits(t *testing.T) {
	for in, want := range map[string]string{"+15550002222": "15550002222", "+5491155550000": "5491155550000", "+0123456789": "", "+1555abc2222": "", "+12": ""} {
		got, err := digits(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("digits(%q) = %q, %v", in, got, err)
		}
	}
	if !needsLookup("525512345678") || needsLookup("5215512345678") || needsLookup("5491155550000") {
		t.Error("needsLookup")
	}
}
