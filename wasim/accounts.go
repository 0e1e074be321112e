package wasim

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Account is a WhatsApp account: a phone number with its primary phone and linked devices.
// The simulated primary phone's Signal identity is the account's ADV key (Key): the client pins
// it as the identity of the main device when it pairs.
type Account struct {
	Phone   string             `json:"phone"` // digits only, international, e.g. 15550001111
	LID     string             `json:"lid"`   // user part of the account's @lid JID
	Key     *keys.KeyPair      `json:"key"`   // ADV account key = primary phone identity
	RawID   uint32             `json:"raw_id"`
	Devices map[uint16]*Device `json:"devices"` // linked companions by device id (never 0)
	// NextDevice is the id the next linked device gets; KeyIndex grows with each link.
	NextDevice uint16 `json:"next_device"`
	KeyIndex   uint32 `json:"key_index"`
	// The primary phone's Signal registration (its identity is Key).
	RegistrationID uint32       `json:"registration_id"`
	SignedPreKey   *keys.PreKey `json:"signed_prekey"`
	Name           string       `json:"name,omitempty"`         // push name shown with replies
	Unregistered   bool         `json:"unregistered,omitempty"` // "not on WhatsApp": usync says out

	phone *phoneDevice // live libsignal state of the primary phone, not persisted
}

// phoneLocked returns the primary phone's libsignal device. s.mu must be held.
func (a *Account) phoneLocked() *phoneDevice {
	if a.SignedPreKey == nil {
		a.RegistrationID = newRegistrationID()
		a.SignedPreKey = a.Key.CreateSignedPreKey(1)
	}
	if a.phone == nil {
		a.phone = newPhoneDevice(a)
	}
	return a.phone
}

func newRegistrationID() uint32 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return uint32(binary.BigEndian.Uint16(b[:]))%16380 + 1
}

// JID is the account's phone-number user JID (device 0).
func (a *Account) JID() types.JID { return types.NewJID(a.Phone, types.DefaultUserServer) }

// LIDJID is the account's LID user JID (device 0).
func (a *Account) LIDJID() types.JID { return types.NewJID(a.LID, types.HiddenUserServer) }

// Device is a linked companion device (a whatsmeow client) and its Signal registration.
type Device struct {
	ID             uint16       `json:"id"`
	NoiseKey       [32]byte     `json:"noise_key"` // the client's Noise static public key
	RegistrationID uint32       `json:"registration_id"`
	Identity       [32]byte     `json:"identity"`
	SignedPreKey   SignedPreKey `json:"signed_prekey"`
	PreKeys        []PreKey     `json:"prekeys"` // uploaded one-time prekeys not yet handed out
	Platform       string       `json:"platform,omitempty"`
	PairedAt       time.Time    `json:"paired_at"`
	Via            string       `json:"via"` // "qr" or "code"
}

// SignedPreKey is a device's signed prekey as uploaded in its registration.
type SignedPreKey struct {
	ID        uint32   `json:"id"`
	Pub       [32]byte `json:"pub"`
	Signature [64]byte `json:"signature"`
}

// PreKey is an uploaded one-time prekey.
type PreKey struct {
	ID  uint32   `json:"id"`
	Pub [32]byte `json:"pub"`
}

// registration is the Signal registration a fresh client sends in its ClientPayload.
type registration struct {
	RegistrationID uint32
	Identity       [32]byte
	SignedPreKey   SignedPreKey
}

// firstLID is where allocated LIDs start (15 digits, like real ones).
const firstLID = 100000000000000

// registry holds the accounts. Guarded by Server.mu.
type registry struct {
	Accounts map[string]*Account `json:"accounts"` // by phone
	NextLID  uint64              `json:"next_lid"`
	NextAuto uint64              `json:"next_auto"` // counter for phone numbers the sim picks itself
	// Chats["sender|recipient"]: the recipient has a chat with the sender (SetChat, or it
	// wrote to the sender); sends from sender to recipient are warm.
	Chats map[string]bool `json:"chats,omitempty"`
	// Tokens["holder|issuer"]: the issuer's tctoken as the server handed it to the holder.
	Tokens map[string]*issuedToken `json:"tokens,omitempty"`
	// NCTSalts by phone: the key of the account's cstokens.
	NCTSalts map[string][]byte `json:"nct_salts,omitempty"`
}

func newRegistry() *registry {
	return &registry{Accounts: map[string]*Account{}, NextLID: firstLID + 1, NextAuto: 1}
}

// accountLocked returns the account of phone, creating it if create is set.
func (r *registry) accountLocked(phone string, create bool) *Account {
	if a := r.Accounts[phone]; a != nil || !create {
		return a
	}
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	a := &Account{
		Phone:      phone,
		LID:        strconv.FormatUint(r.NextLID, 10),
		Key:        keys.NewKeyPair(),
		RawID:      binary.BigEndian.Uint32(raw[:]),
		Devices:    map[uint16]*Device{},
		NextDevice: 1,
	}
	a.phoneLocked()
	r.NextLID++
	r.Accounts[phone] = a
	return a
}

func (r *registry) byLIDLocked(lid string) *Account {
	for _, a := range r.Accounts {
		if a.LID == lid {
			return a
		}
	}
	return nil
}

// autoPhoneLocked picks a phone number no account uses yet (1555 000 nnnn).
func (r *registry) autoPhoneLocked() string {
	for {
		p := fmt.Sprintf("1555%07d", r.NextAuto)
		r.NextAuto++
		if r.Accounts[p] == nil {
			return p
		}
	}
}

// deviceLocked finds the device jid (phone-number JID with device id).
func (r *registry) deviceLocked(jid types.JID) (*Account, *Device) {
	a := r.Accounts[jid.User]
	if jid.Server == types.HiddenUserServer {
		a = r.byLIDLocked(jid.User)
	}
	if a == nil {
		return nil, nil
	}
	return a, a.Devices[jid.Device]
}

// AccountInfo is a read-only view of an account.
type AccountInfo struct {
	Phone   string       `json:"phone"`
	LID     string       `json:"lid"`
	Devices []DeviceInfo `json:"devices"`
}

// DeviceInfo is a read-only view of a linked device.
type DeviceInfo struct {
	JID       string    `json:"jid"`
	LID       string    `json:"lid"`
	PreKeys   int       `json:"prekeys"`
	Connected bool      `json:"connected"`
	LoggedIn  bool      `json:"logged_in"`
	PairedAt  time.Time `json:"paired_at"`
	Via       string    `json:"via"`
}

// Accounts lists the accounts and their devices, sorted by phone and device id.
func (s *Server) Accounts() []AccountInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AccountInfo, 0, len(s.reg.Accounts))
	for _, a := range s.reg.Accounts {
		ai := AccountInfo{Phone: a.Phone, LID: a.LID, Devices: []DeviceInfo{}}
		for _, d := range a.Devices {
			jid := types.JID{User: a.Phone, Server: types.DefaultUserServer, Device: d.ID}
			di := DeviceInfo{
				JID: jid.String(), LID: types.JID{User: a.LID, Server: types.HiddenUserServer, Device: d.ID}.String(),
				PreKeys: len(d.PreKeys), PairedAt: d.PairedAt, Via: d.Via,
			}
			if c := s.live[jid]; c != nil {
				di.Connected, di.LoggedIn = true, c.loggedIn.Load()
			}
			ai.Devices = append(ai.Devices, di)
		}
		sort.Slice(ai.Devices, func(i, j int) bool { return ai.Devices[i].JID < ai.Devices[j].JID })
		out = append(out, ai)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Phone < out[j].Phone })
	return out
}

// snapshot file format.
type snapshot struct {
	Version  int       `json:"version"`
	Saved    time.Time `json:"saved"`
	Registry *registry `json:"registry"`
}

const snapshotVersion = 1

// saveLocked writes the registry to Options.SnapshotPath (if set): temp file, fsync, rename, so
// a SIGKILL leaves either the old or the new snapshot. s.mu must be held.
func (s *Server) saveLocked() {
	if s.opts.SnapshotPath == "" {
		return
	}
	if err := writeSnapshot(s.opts.SnapshotPath, s.reg); err != nil {
		s.log.Error("wasim: snapshot", "err", err)
		s.events.add(Event{Kind: EventSnapshotFailed, Detail: err.Error()})
	}
}

func writeSnapshot(path string, reg *registry) error {
	data, err := json.Marshal(snapshot{Version: snapshotVersion, Saved: time.Now().UTC(), Registry: reg})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// loadSnapshot reads path; a missing file gives an empty registry.
func loadSnapshot(path string) (*registry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newRegistry(), nil
	} else if err != nil {
		return nil, err
	}
	var snap snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("wasim: snapshot %s: %w", path, err)
	}
	if snap.Version != snapshotVersion || snap.Registry == nil {
		return nil, fmt.Errorf("wasim: snapshot %s: unsupported version %d", path, snap.Version)
	}
	if snap.Registry.Accounts == nil {
		snap.Registry.Accounts = map[string]*Account{}
	}
	for _, a := range snap.Registry.Accounts {
		if a.Devices == nil {
			a.Devices = map[uint16]*Device{}
		}
	}
	return snap.Registry, nil
}
