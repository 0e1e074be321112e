//go:build !race

package wasim_test

const raceEnabled = false
