// Package kv is LeadMaster's storage: one bbolt file holding clientes,
// campañas, envíos, their indexes and counters, and the append-only,
// hash-chained journal. It implements the store the engine consumes and
// enforces the engine's transition table.
//
// # Guarantees
//
//   - Every envío transition, its indexes, the per-campaign counters and one
//     journal record are written in the same bbolt transaction: a crash can
//     never leave a state without its journal record, or the reverse.
//   - Writes from concurrent callers are coalesced into one transaction
//     (group commit). A caller returns only after that transaction's fsync.
//     NoSync is never set.
//   - An import becomes visible with one final commit; staged rows of an
//     import that failed or crashed are invisible and removed at open.
//
// # Caveats
//
//   - Values returned by bbolt are only valid inside their transaction; this
//     package decodes or copies them before the closure returns.
//   - Read transactions are kept short: long scans (journal verify, export)
//     page through the data in many small transactions.
//   - Root buckets of the app are prefixed "app."; the whatsmeow device store
//     (kv/devicestore) uses "wa." in the same file.
//   - The file is locked by one process. A second process fails within the
//     lock timeout with ErrLocked instead of hanging.
package kv
