// Package devicestore is a bbolt implementation of whatsmeow's device store
// (every interface in go.mau.fi/whatsmeow/store that a *store.Device needs),
// kept at parity with whatsmeow's own SQL store (store/sqlstore) by one
// conformance suite that runs against both.
//
// It shares the application's bbolt file: New takes an already-open *bbolt.DB
// (opened by package kv) and creates its root buckets, all prefixed "wa."
// (the application's are prefixed "app.", so they cannot collide). Each
// device is one root bucket, "wa.device.<AD JID>", holding one sub-bucket per
// whatsmeow table; deleting the device deletes the bucket and with it all of
// the device's data. The LID<->phone map is global, as in sqlstore.
//
// # Transactions
//
// As in sqlstore, a transaction travels in the context. Container.DoTxn (and
// EventBuffer.DoDecryptionTxn) open one bbolt write transaction and put it in
// the ctx they hand to fn; every store method called with that ctx joins it,
// so whatsmeow store calls and the application's own writes (TxFromContext)
// commit or roll back together. A nested DoTxn joins the outer one. The
// OnDeleteDevice hook runs inside the device-deletion transaction.
//
// # Caveats
//
//   - bbolt has one writer per file. While a goroutine is inside DoTxn it must
//     pass the ctx it was given to every store call: a store call with another
//     ctx would wait for the writer lock this goroutine already holds
//     (deadlock). Never make network calls (SendMessage…) inside DoTxn.
//   - Values read from bbolt are only valid for the life of the transaction.
//     Every getter here copies what it returns; application code using
//     TxFromContext must do the same (bytes.Clone or decode before returning).
//   - *bbolt.Tx is not goroutine-safe. Store calls that share one ctx
//     transaction are serialised by a mutex; the *bbolt.Tx returned by
//     TxFromContext must only be used by the goroutine running fn.
//     Using a ctx after its DoTxn returned gives ErrTxDone.
//   - Group commit: small independent single writes (one session, identity,
//     sender key, push name, LID mapping…) go through a group committer: a
//     lone writer commits at once, and writers arriving while a commit is
//     being fsync'd are coalesced into the next transaction. A caller returns
//     only after the transaction holding its write committed, so durability
//     is that of a plain Update (NoSync must stay off). As with bbolt's Batch,
//     a function may run more than once (a failing one is re-run alone), so
//     only idempotent single writes take this path: never decryption, prekey
//     generation, PN->LID migration or import, which use their own Update.
//   - Writes to a device that does not exist (for example after logout) fail
//     with ErrDeviceNotFound instead of recreating its bucket, as sqlstore's
//     foreign keys do.
//
// # Deliberate differences from sqlstore
//
// The conformance suite asserts each store's own answer for these:
//
//   - Privacy tokens are deleted with their device (sqlstore's table has no
//     foreign key, so its rows outlive the device).
//   - GetOutgoingEvent for a message that is not kept returns ErrNotFound;
//     sqlstore returns sql.ErrNoRows (whatsmeow only wraps and logs either).
//
// Not asserted, by design or because whatsmeow never does it:
//
//   - PutPrivacyTokens with no tokens is a no-op (sqlstore: syntax error).
//   - GetAllDevices is ordered by JID (sqlstore: unspecified).
//   - DeleteIdentity is an exact match (sqlstore uses LIKE).
//   - Equal timestamps: GetLatestAppStateSyncKeyID and GetAllAppStateSyncKeys
//     order them by key ID; a privacy token under both the PN and the LID of
//     a user with the same timestamp gives the LID's or PN's, unspecified in
//     SQL too. GetOutgoingEvent with a message kept under both chatJID and
//     altChatJID returns chatJID's (SQL: either).
//   - Clocks: event-buffer and retry-buffer timestamps come from
//     Container.Now (time.Now unless a test replaces it); sqlstore always
//     uses time.Now.
//   - The LID map has no in-memory cache (sqlstore's is per process).
//
// whatsmeow from 2026-08 fixed the two LID-map quirks older sqlstore had
// (GetManyLIDsForPNs dropped the device on a cache miss; the cache kept a
// stale reverse entry after a remap), so there the stores now agree.
//
// # Schema
//
// The file records a schema version in wa.meta (layout.go). New migrates an
// older file in place in one transaction: schema 1 (whatsmeow before 2026)
// to 2 adds the retry-buffer sub-buckets to every device; device and
// privacy-token records written at schema 1 decode as they are (their new
// trailing fields, the companion meta nonce and the sender timestamp, read
// as "" and NULL, as sqlstore's migrations 12 and 15 default them), so a
// paired device keeps its session without a new QR. A file of a newer
// schema is refused (ErrNewerSchema).
package devicestore
