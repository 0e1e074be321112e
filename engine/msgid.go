package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// MessageID is the WhatsApp message id of an envío: "3EB0" followed by the
// upper-case hex of the first 9 bytes of HMAC-SHA256(secret, envío key), the
// shape of whatsmeow's own ids. The same envío gets the same id forever, so
// a retry or a resend after a crash is the same message to WhatsApp and the
// recipient sees it once. secret is the per-install secret.
func MessageID(secret []byte, r Ref) string {
	if len(secret) == 0 {
		panic("engine: MessageID without the install's secret")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(r.Campaign))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint64(nil, r.Seq))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(m.Sum(nil)[:9]))
}

// messageID is an envío's message id in this install.
func (e *Engine) messageID(r Ref) string { return MessageID(e.store.Secret(), r) }
