package loadgen

import (
	"context"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// tightenTimerSlack sets this OS thread's timer slack to 1 ns (the
// default 50 µs is added to every sleep's wake-up).
func tightenTimerSlack() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) }

// sleepUntil waits until offset due from startNs (CLOCK_MONOTONIC), or
// returns false when ctx ends first (checked at least every 20 ms). It
// sleeps to an absolute deadline (clock_nanosleep TIMER_ABSTIME), so a
// late wake-up does not push the next one later.
func sleepUntil(ctx context.Context, startNs int64, due time.Duration) bool {
	const slice = int64(20 * time.Millisecond)
	target := startNs + int64(due)
	for {
		if ctx.Err() != nil {
			return false
		}
		now := clock.Now()
		if now >= target {
			return true
		}
		wake := min(target, now+slice)
		ts := unix.NsecToTimespec(wake)
		if err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil); err != nil && err != unix.EINTR {
			time.Sleep(time.Duration(wake - now))
		}
	}
}
