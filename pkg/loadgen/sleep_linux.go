package loadgen

import (
	"time"

	"golang.org/x/sys/unix"
)

// tightenTimerSlack sets this OS thread's timer slack to 1 ns (the
// default 50 µs is added to every sleep's wake-up).
func tightenTimerSlack() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) }

// sleepTo sleeps until the absolute monotonic time wake (clock_nanosleep
// TIMER_ABSTIME: a late wake-up does not push the next one later); now is
// the time it was called.
func sleepTo(now, wake int64) {
	ts := unix.NsecToTimespec(wake)
	if err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil); err != nil && err != unix.EINTR {
		time.Sleep(time.Duration(wake - now))
	}
}
