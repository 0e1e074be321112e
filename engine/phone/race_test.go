//go:build race

package phone

// The race detector makes the library's regular expressions about ten times
// slower; TestValidatorMatchesLibrary compares half as many numbers under it.
func init() { raceEnabled = true }
