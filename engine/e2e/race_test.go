//go:build race

package e2e_test

// raceEnabled is true under -race. whatsmeow (as pinned) races with itself
// when a request is waiting in retryFrame's WaitForConnection while its
// autoReconnect runs: both call go.mau.fi/util exsync.Event.GetChan on
// expectedDisconnect, which writes e.waiting under a read lock
// (exsync/event.go:39; client.go:436 vs client.go:575). A connection
// dropped with a message in flight provokes it; the tests that need that
// interleaving drop the connection between sends under -race instead, or
// skip (as wasim's fault tests do for whatsmeow's other races).
const raceEnabled = true
