//go:build !race

package main

// raceDetector: the race detector slows every goroutine down several times.
const raceDetector = false
