//go:build race

package materializer

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = true
