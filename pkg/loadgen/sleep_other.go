//go:build !linux

package loadgen

import (
	"context"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// tightenTimerSlack: timer slack is a Linux setting.
func tightenTimerSlack() {}

// sleepUntil waits until offset due from startNs (pkg/clock's monotonic
// time), or returns false when ctx ends first (checked at least every
// 20 ms). Without clock_nanosleep's absolute deadline it sleeps the time
// left, measured again after every wake-up, so a late wake-up still does
// not push the next one later; the send error (Sent − Scheduled, in every
// result) shows what the platform's timers give.
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
		time.Sleep(time.Duration(min(target-now, slice)))
	}
}
