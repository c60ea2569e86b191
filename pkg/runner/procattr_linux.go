package runner

import "syscall"

// workerProcAttr: Setpgid, so a stop reaches the worker's children too;
// Pdeathsig, so that if llem itself is killed (kill -9) the worker dies
// with it instead of running on, unmeasured, beside the next session.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
