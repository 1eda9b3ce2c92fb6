//go:build !race

package sealpost_test

// raceEnabled reports a -race build, where the Device-level adversarial
// tests sample fewer positions and run shorter loops (the race detector
// makes the primitives several times slower).
const raceEnabled = false
