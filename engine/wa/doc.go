// Package wa is the WhatsApp side of LeadMaster: one whatsmeow client per
// cliente, its device keys in the device store main gives it
// (kv/devicestore, in the application's bbolt file), and the session
// states of DESIGN.md derived from whatsmeow's events. Manager implements
// engine.Sessions (and so engine.Gateway). It reads the clientes and their
// devices through Directory and writes nothing of the product's: the
// engine journals each session event and records the device it names.
//
// # States and the live gate
//
// Every whatsmeow event of a cliente's client updates that session's state
// at once, under the session's lock: State, Ready and WaitQR see it
// immediately. The side effects of the change (a logout's device deletion,
// then Inbound.SessionChanged, where the engine journals the event before
// it publishes it) follow in order on the session's effect queue. Nothing polls: waiters sleep on a channel
// that is closed on every change.
//
// Ready is true only between an events.Connected and the next
// events.Disconnected (or stream error, keepalive timeout, logout,
// replacement) of the current client. whatsmeow's IsLoggedIn is not used:
// it survives a dropped socket and is true again as soon as a new socket's
// handshake completes, before the server accepted the login.
//
// Send, OnWhatsApp and Typing run under a context that ends when the gate
// closes: a send in flight when the connection drops returns
// engine.ErrSessionDown at once (its outcome unknown), instead of waiting
// for whatsmeow's retry of the frame on the next socket, which waits 5 s or,
// when the new socket's handshake finished first, until the caller's
// deadline. A resend with the same message id is deduplicated by WhatsApp.
//
// # Reconnect
//
// whatsmeow reconnects by itself after a dropped socket (0 s, 2 s, 4 s …).
// After Options.HandOverAfter failed attempts, and whenever whatsmeow gives
// up (a failed Connect, an unknown connect failure, a temporary ban), the
// manager reconnects with its own exponential backoff, bounded by
// Options.BackoffMax.
//
// # Caveats
//
//   - Logout (by the operator or a 401 from the server) deletes the device
//     from the store and then the engine forgets the cliente's device
//     mapping as it journals the logout, in two transactions: the device
//     store's deletion is whatsmeow's own call. A crash between the two
//     leaves a mapping to a missing device; the next start treats it as
//     logged out (forgets it and journals it).
//   - whatsmeow's frame reader leaks a goroutine if the server sends a frame
//     after Disconnect stopped its consumer. Close a Manager when the server
//     has nothing more to send (tests wait for the last receipt first).
//   - whatsmeow dispatches events.Connected and events.Disconnected from
//     separate goroutines. A Connected whose socket dropped before it was
//     dispatched is ignored when the client has no socket at that moment;
//     if the reconnect's handshake already finished, it is not detectable.
//     A Disconnected that finds the new socket up closes the gate and
//     confirms the login with a request; a Connected that finds the gate
//     open leaves it open, so the requests in flight go on.
//   - A socket dropped with a send in flight makes whatsmeow race with
//     itself (retryFrame and autoReconnect both write an exsync.Event
//     field under a read lock; FrameSocket.closed is read and written
//     unlocked): -race reports it, so the tests that do it skip under
//     -race and `make test` runs them without. The server's close of a
//     logged-out or replaced socket does too (an ack sent while it closes),
//     and a Disconnect of ours during that close would race with it as well
//     (NoiseSocket.Stop writes FrameSocket.OnDisconnect, which Close reads
//     twice and may then start nil): such a conn is abandoned (its context
//     canceled), never disconnected.
//   - whatsmeow.WACertPubKey is process-wide: Options.Configure pointing
//     clients at wasim makes the whole process talk to the simulator.
package wa
