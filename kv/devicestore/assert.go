package devicestore

import "go.mau.fi/whatsmeow/store"

// The full set whatsmeow's store package defines (store.AllStores) is split
// between the per-device Store and the global LIDMap; *store.Device needs
// exactly these plus a DeviceContainer.
var (
	_ store.AllSessionSpecificStores = (*Store)(nil)
	_ store.AllGlobalStores          = (*LIDMap)(nil)
	_ store.DeviceContainer          = (*Container)(nil)
	_ store.AllStores                = struct {
		*Store
		*LIDMap
	}{}
)
