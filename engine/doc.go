// Package engine is LeadMaster's domain: clientes, campañas and envíos, the
// states of an envío and the one table of legal transitions between them,
// and the small interfaces the send engine consumes (a store, a WhatsApp
// gateway, a renderer).
//
// engine imports none of LeadMaster's other packages; every other package
// may import it. The rules that make the seed incident impossible live here
// as types: an envío only reaches Enviado from Enviando, Enviando is written
// ahead of the send with a deterministic message id (MessageID), and every
// transition is journaled by the store in the transaction that applies it.
//
// One worker per cliente sends (worker.go): it tries the cliente's
// transactional messages first (messages.go: one campaign per cliente, an
// idempotency key per message), then its campaigns round-robin, within each
// campaign's programación and the number's caps (ratelimit.go). When
// WhatsApp answers 463 or announces its reach-out timelock, the cliente's
// new chats are locked (reach.go): only warm recipients are sent to, the
// others wait with their ids until the lock ends. Why a worker is not
// sending is named state (sendstate.go), never a silent stall.
package engine
