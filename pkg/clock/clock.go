// Package clock reads CLOCK_MONOTONIC in nanoseconds: the one time base shared
// by the llem parent (sensors, sampler) and every backend worker (Python's
// time.monotonic_ns() reads the same clock, also inside a container).
package clock

import "golang.org/x/sys/unix"

// Now returns CLOCK_MONOTONIC in nanoseconds.
func Now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		// CLOCK_MONOTONIC cannot fail on Linux; a failure here is a broken kernel.
		panic("clock_gettime(CLOCK_MONOTONIC): " + err.Error())
	}
	return ts.Nano()
}
