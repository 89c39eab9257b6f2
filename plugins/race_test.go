//go:build race

package plugins_test

// raceEnabled: the race detector slows plugin calls about tenfold.
const raceEnabled = true
