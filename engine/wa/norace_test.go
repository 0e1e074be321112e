//go:build !race

package wa_test

const raceEnabled = false
