package measure

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeProc lays out a fake /proc: the cpu line of stat and, per pid, a
// stat line in the kernel's format (proc(5): pid (comm) state ppid ...
// utime stime cutime cstime ...).
func writeProc(t *testing.T, dir string, busy, idle uint64, procs map[int][2]uint64, parent map[int]int) {
	t.Helper()
	// user nice system idle iowait irq softirq steal
	stat := fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n", busy, idle)
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	for pid, cpu := range procs {
		d := filepath.Join(dir, fmt.Sprint(pid))
		os.MkdirAll(d, 0o755)
		// comm with a space and a ')' as a worker's name may have.
		line := fmt.Sprintf("%d (llem wor)ker) S %d 1 1 0 -1 4194560 100 0 0 0 %d %d %d %d 20 0 8 0 100 1000 200 18446744073709551615\n",
			pid, parent[pid], cpu[0], cpu[1], 0, 0)
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "self"), 0o755) // not a pid: skipped
}

func TestBusyHost(t *testing.T) {
	parent := map[int]int{100: 1, 200: 100, 201: 200, 300: 1}
	at := func(busy, idle uint64, llem, worker, grandchild, other uint64) HostSnapshot {
		dir := t.TempDir()
		writeProc(t, dir, busy, idle, map[int][2]uint64{100: {llem, 0}, 200: {worker / 2, worker - worker/2}, 201: {grandchild, 0}, 300: {other, 0}}, parent)
		return ReadHost(dir, 100)
	}
	a := at(1000, 1000, 10, 100, 0, 50)
	if !a.OK || a.Tree != 110 || a.Busy != 1000 || a.Total != 2000 {
		t.Fatalf("snapshot %+v", a)
	}
	// 1000 jiffies pass, 800 busy: 700 are llem's tree (worker and its
	// child), 100 another process's: 10% other, not busy.
	b := at(1800, 1200, 10, 650, 150, 150)
	if share, ok := OtherBusy(a, b); !ok || share < 0.099 || share > 0.101 {
		t.Errorf("other share = %v %v, want 0.10", share, ok)
	}
	if w := BusyHostWarning(a, b); w != "" {
		t.Errorf("not busy, warned %q", w)
	}
	// Another 1000: 900 busy, 200 of them llem's: 70% other.
	c := at(2700, 1300, 10, 750, 250, 850)
	if w := BusyHostWarning(b, c); !strings.HasPrefix(w, FlagBusyHost+": ") || !strings.Contains(w, "70%") {
		t.Errorf("busy host warning %q", w)
	}
	// No /proc: no judgement.
	if s := ReadHost(t.TempDir(), 100); s.OK {
		t.Errorf("empty proc root gave %+v", s)
	}
	if _, ok := OtherBusy(HostSnapshot{}, c); ok {
		t.Error("OtherBusy with a failed snapshot")
	}
}

func TestOtherGPUProcessesWarning(t *testing.T) {
	before := []string{"pid 4242 on GPU-a", "pid 5 on GPU-b"}
	// The worker (pid 777) appears after it started; pid 5 left mid-run.
	after := []string{"pid 777 on GPU-a", "pid 4242 on GPU-a"}
	w := OtherGPUProcessesWarning(before, after)
	if !strings.HasPrefix(w, FlagOtherGPUProcesses+": 1 other") || !strings.Contains(w, "pid 4242 on GPU-a") || strings.Contains(w, "777") || strings.Contains(w, "pid 5 ") {
		t.Errorf("warning %q", w)
	}
	if w := OtherGPUProcessesWarning(nil, after); w != "" {
		t.Errorf("nothing before: %q", w)
	}
}
