//go:build race

package wasim_test

// raceEnabled is true under -race. Some fault tests provoke a data race inside whatsmeow
// itself (see skipUnderRace) and are skipped then.
const raceEnabled = true
