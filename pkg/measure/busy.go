package measure

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Busy host during a measured window.
//
// The idle baseline checks that the machine was idle (NotIdleReasons); a
// window can be disturbed too: another job's processes on the host's CPUs
// or on the measured GPUs draw power the sensors attribute to the run
// (whole-GPU counters, RAPL packages). HostSnapshot, taken at the window's
// edges, tells how much of the host's CPU time went to processes outside
// llem's own process tree (llem and the worker it started); the GPU check
// compares NVML's running-process lists at the slot's start and the
// window's end.

// FlagBusyHost and FlagOtherGPUProcesses are the record flags of a
// disturbed window.
const (
	FlagBusyHost          = "busy_host"
	FlagOtherGPUProcesses = "other_gpu_processes"
)

// MaxOtherHostBusy is the share of the host's CPU time that processes
// outside llem's tree may use during a window before it is flagged: the
// baseline's idle threshold (IdleCheck.MaxHostBusy).
const MaxOtherHostBusy = 0.25

// HostSnapshot is the host's CPU jiffies (/proc/stat's cpu line) and those
// of one process tree (utime+stime+cutime+cstime of each process, so a
// child reaped in between still counts) at one instant.
type HostSnapshot struct {
	Busy, Total uint64 // all CPUs: busy (not idle or iowait), all
	Tree        uint64 // the tree rooted at the given pid
	OK          bool
}

// ReadHost takes a snapshot under procRoot ("/proc") of the host and of the
// process tree rooted at root (llem's pid).
func ReadHost(procRoot string, root int) HostSnapshot {
	busy, total, ok := hostJiffies(procRoot)
	if !ok {
		return HostSnapshot{}
	}
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return HostSnapshot{}
	}
	type proc struct {
		ppid int
		cpu  uint64
	}
	procs := map[int]proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, cpu, ok := procStat(filepath.Join(procRoot, e.Name(), "stat"))
		if ok {
			procs[pid] = proc{ppid, cpu}
		}
	}
	var tree uint64
	for pid, p := range procs {
		// In the tree when root is pid or an ancestor of it.
		for cur, depth := pid, 0; depth < 64; depth++ {
			if cur == root {
				tree += p.cpu
				break
			}
			q, ok := procs[cur]
			if !ok || q.ppid == cur {
				break
			}
			cur = q.ppid
		}
	}
	return HostSnapshot{Busy: busy, Total: total, Tree: tree, OK: true}
}

// procStat parses /proc/<pid>/stat: the parent pid and the CPU jiffies of
// the process and its reaped children (fields 4, 14-17; comm, field 2, may
// hold spaces and parentheses, so fields are counted after its last ')').
func procStat(name string) (ppid int, cpu uint64, ok bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, 0, false
	}
	for _, x := range f[11:15] {
		v, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		cpu += v
	}
	return ppid, cpu, true
}

// OtherBusy is the share of the host's CPU time between a and b spent by
// processes outside the tree; ok is false when either snapshot failed or
// no time passed.
func OtherBusy(a, b HostSnapshot) (share float64, ok bool) {
	if !a.OK || !b.OK || b.Total <= a.Total || b.Busy < a.Busy {
		return 0, false
	}
	busy := float64(b.Busy - a.Busy)
	if b.Tree > a.Tree {
		busy -= float64(b.Tree - a.Tree)
	}
	return max(busy, 0) / float64(b.Total-a.Total), true
}

// BusyHostWarning is the record warning of a window whose host was busy
// with other processes, or "" when it was not.
func BusyHostWarning(a, b HostSnapshot) string {
	share, ok := OtherBusy(a, b)
	if !ok || share <= MaxOtherHostBusy {
		return ""
	}
	return fmt.Sprintf("%s: processes other than llem and its worker used %.0f%% of the host's CPU time during the window (> %.0f%%); CPU energy and timings may include their load",
		FlagBusyHost, share*100, MaxOtherHostBusy*100)
}

// OtherGPUProcessesWarning is the record warning of GPU processes other
// than llem's that ran on the measured GPUs through the window: those
// listed both before the worker started (before) and at the window's end
// (after), so the worker's own (which did not exist before, whatever pid
// namespace it lives in) are never counted. "" when there were none.
func OtherGPUProcessesWarning(before, after []string) string {
	was := map[string]bool{}
	for _, p := range before {
		was[p] = true
	}
	var both []string
	for _, p := range after {
		if was[p] {
			both = append(both, p)
		}
	}
	if len(both) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %d other process(es) ran on the measured GPUs through the window (%s); whole-GPU energy includes theirs",
		FlagOtherGPUProcesses, len(both), strings.Join(both, ", "))
}
