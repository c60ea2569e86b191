//go:build !linux

package loadgen

import "time"

// tightenTimerSlack: timer slack is a Linux setting.
func tightenTimerSlack() {}

// sleepTo sleeps the time left until wake (no absolute-deadline timer
// here; sleepUntil measures again after every wake-up, so a late one
// still does not push the next one later, and the send error in every
// result shows what the platform's timers give).
func sleepTo(now, wake int64) { time.Sleep(time.Duration(wake - now)) }
