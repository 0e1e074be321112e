// Package wasim is a WhatsApp multi-device server on loopback that the unmodified whatsmeow
// client pairs with (QR or phone code), logs into, sends encrypted messages to and gets acks,
// receipts and replies from. Tests and `leadmaster demo` use it in-process (New, Start,
// Configure, ScanQR, WaitEvent, Ledger…); crash tests run it standalone (Main, cmd/wasim)
// and drive it through its HTTP control API. README.md has the API, the client behaviour
// each control produces, and what is not simulated.
//
// # Caveats
//
//   - whatsmeow.WACertPubKey is a process-wide global: a process configured for a simulator
//     cannot talk to the real WhatsApp. All simulators share DefaultRootKey unless told
//     otherwise, so one process can use many (and restarts of one).
//   - Every number is on WhatsApp by default (an account is made on first lookup); use
//     SetRegistered or Options.StrictNumbers.
//   - Simulated phones keep their Signal sessions in memory only; the snapshot holds accounts,
//     keys and linked devices, not sessions.
//   - Callers of SendMessage need a ctx deadline: a retry after a dropped connection has no
//     timeout of its own in whatsmeow.
//   - The control API has no authentication: keep it on loopback.
//   - DMs arrive addressed to LIDs (whatsmeow since 2026-07); LedgerEntry.PN and DeliveredTo
//     give the recipient's phone number. Sends are warm when the recipient has a chat with
//     the sender (SetChat, or it wrote to it), cold otherwise; SetReach enforces privacy
//     tokens and a reach-out timelock on cold sends (ack 463, not delivered), announced
//     with the MEX notification behind events.NotifyAccountReachoutTimelock.
//   - RequestRetry sends a phone's retry receipt; phones never send one on their own.
//   - Not simulated: groups, media, app state (so no NCT salt reaches a client: tests store
//     NCTSalt in it to get cstokens), history sync, presence, calls.
package wasim
