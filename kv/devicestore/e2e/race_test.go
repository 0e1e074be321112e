//go:build race

package e2e_test

// raceEnabled is true under -race. Tests that make whatsmeow race with
// itself skip then; the Makefile runs them without -race.
const raceEnabled = true
