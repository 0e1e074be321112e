package devicestore

import (
	"encoding/binary"

	"go.mau.fi/whatsmeow/types"
)

// Root buckets. Every root bucket of this package starts with "wa.".
var (
	bucketMeta   = []byte("wa.meta")
	bucketLID2PN = []byte("wa.lid2pn") // <lid user> -> <pn user>
	bucketPN2LID = []byte("wa.pn2lid") // <pn user>  -> <lid user>

	devicePrefix = []byte("wa.device.") // + AD JID string: one root bucket per device
)

// Keys inside wa.meta.
var keySchema = []byte("schema")

// schemaVersion 2 (whatsmeow 2026-08): the retry buffer sub-buckets in
// every device bucket; device and privacy-token records grew trailing
// fields, which version-1 records simply lack (the nonce reads as "", the
// sender timestamp as NULL).
const schemaVersion = 2

// Inside a device bucket: the device record and one sub-bucket per table.
var (
	keyDevice = []byte("device")

	subIdentities  = []byte("identities")  // <signal addr> -> identity
	subSessions    = []byte("sessions")    // <signal addr> -> session
	subPreKeys     = []byte("prekeys")     // <key id u32 BE> -> prekey
	subSenderKeys  = []byte("senderkeys")  // <sender addr> 0x00 <group> -> sender key
	subSyncKeys    = []byte("synckeys")    // 'k' <key id> -> app state sync key
	subAppState    = []byte("appstate")    // <name>/ {"v" -> version, "m"/ <index mac><^version BE> -> value mac}
	subContacts    = []byte("contacts")    // <JID string> -> contact
	subChats       = []byte("chats")       // <chat JID string> -> chat settings
	subMsgSecrets  = []byte("msgsecrets")  // <chat> 0x00 <sender> 0x00 <msg id> -> secret
	subPrivTokens  = []byte("privtokens")  // <user non-AD JID string> -> token
	subEventBuffer = []byte("eventbuf")    // <ciphertext hash> -> buffered event
	subEventByTime = []byte("eventbuf_ts") // <insert ms u64 BE><hash> -> "" (purge index)
	subRetryBuf    = []byte("retrybuf")    // <chat JID string> 0x00 <msg id> -> outgoing message (retry receipts)
	subRetryByTime = []byte("retrybuf_ts") // <insert ms u64 BE><retrybuf key> -> "" (purge index)

	keyNCTSalt = []byte("nctsalt") // the device's NCT salt (cstoken), a value in the device bucket

	deviceSubBuckets = [][]byte{
		subIdentities, subSessions, subPreKeys, subSenderKeys, subSyncKeys, subAppState,
		subContacts, subChats, subMsgSecrets, subPrivTokens, subEventBuffer, subEventByTime,
		subRetryBuf, subRetryByTime,
	}

	keyAppStateVersion = []byte("v")
	subAppStateMACs    = []byte("m")
)

func deviceBucketName(jid types.JID) []byte {
	return append(append([]byte(nil), devicePrefix...), jid.String()...)
}

func u32Key(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// senderKeyKey puts the sender first so PN->LID migration is a prefix scan.
func senderKeyKey(group, user string) []byte {
	k := make([]byte, 0, len(user)+1+len(group))
	return append(append(append(k, user...), 0), group...)
}

func syncKeyKey(id []byte) []byte { return append([]byte{'k'}, id...) }

// macKey sorts the highest version first under each index MAC.
func macKey(indexMAC []byte, version uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), indexMAC...), ^version)
}

func msgSecretKey(chat, sender types.JID, id types.MessageID) []byte {
	return msgSecretKeyStr(chat.String(), sender.String(), id)
}

func msgSecretKeyStr(chat, sender, id string) []byte {
	k := make([]byte, 0, len(chat)+len(sender)+len(id)+2)
	return append(append(append(append(append(k, chat...), 0), sender...), 0), id...)
}

func eventTimeKey(insertMS int64, hash []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(insertMS)), hash...)
}

func retryBufKey(chat string, id string) []byte {
	k := make([]byte, 0, len(chat)+1+len(id))
	return append(append(append(k, chat...), 0), id...)
}
