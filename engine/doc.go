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
package engine
