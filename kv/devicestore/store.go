package devicestore

import (
	"sync"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// Store holds one device's data: it implements every per-device interface
// of whatsmeow's store package (store.AllSessionSpecificStores), over the
// device's bucket. Get one through Container.GetDevice or PutDevice.
type Store struct {
	c   *Container
	jid types.JID
	dev []byte // device bucket name

	preKeyLock sync.Mutex // GetOrGenPreKeys / GenOnePreKey, as in sqlstore

	migratedPN sync.Map // pn signal user -> struct{}: MigratePNToLID runs once per PN per process
}

var (
	_ store.AllSessionSpecificStores = (*Store)(nil)
	_ store.IdentityStore            = (*Store)(nil)
	_ store.SessionStore             = (*Store)(nil)
	_ store.PreKeyStore              = (*Store)(nil)
	_ store.SenderKeyStore           = (*Store)(nil)
	_ store.AppStateSyncKeyStore     = (*Store)(nil)
	_ store.AppStateStore            = (*Store)(nil)
	_ store.ContactStore             = (*Store)(nil)
	_ store.ChatSettingsStore        = (*Store)(nil)
	_ store.MsgSecretStore           = (*Store)(nil)
	_ store.PrivacyTokenStore        = (*Store)(nil)
	_ store.NCTSaltStore             = (*Store)(nil)
	_ store.EventBuffer              = (*Store)(nil)
)

func newStore(c *Container, jid types.JID) *Store {
	return &Store{c: c, jid: jid, dev: deviceBucketName(jid)}
}

// JID is the device this store belongs to.
func (s *Store) JID() types.JID { return s.jid }
