//go:build !linux

package runner

import "syscall"

// workerProcAttr: Setpgid, so a stop reaches the worker's children too.
// Outside Linux there is no parent-death signal: the worker of an llem
// killed with kill -9 runs on until its next write to the event pipe,
// which then has no reader and fails (EPIPE).
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
