//go:build race

package keys

// raceEnabled reports a -race build, where the sweeps sample instead of
// trying every bit (the race detector makes the primitives ~7x slower).
const raceEnabled = true
