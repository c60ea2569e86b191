//go:build cgo

package gpuctl

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/study"
)

func plan(t *testing.T, src string) *study.Plan {
	t.Helper()
	p, err := study.LoadSource(context.Background(), "/tmp/gpu.cue", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const capStudy = `
base: {model: "random:llama-15m", backend: "native"}
grid: gpu: {power_limit_w: [300, 450], sm_clock_mhz: [1410]}
experiments: [{model: "random:llama-15m", backend: "native", n: 2}]
execution: {cycles: 1, order: "sequential"}
`

func TestApplyReadBackRestore(t *testing.T) {
	lib, gs := newFakeH200s(2, "")
	dir := t.TempDir()
	p := plan(t, capStudy)
	c, err := Open(Options{Lib: lib, Dir: dir, Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(journalPath(dir, c.gpus[0].rng.UUID)); err == nil {
		t.Fatal("journal written before any change")
	}
	ctx := context.Background()
	var capped, free study.Run
	for _, r := range p.Runs {
		switch {
		case r.Config.GPU == nil:
			free = r
		case *r.Config.GPU.PowerLimitW == 300:
			capped = r
		}
	}
	settle, err := c.Apply(ctx, capped)
	if err != nil || settle != study.DefaultGPUSettle {
		t.Fatalf("apply: %v, settle %v", err, settle)
	}
	for i, g := range gs {
		if s := g.state(); s.LimitMW != 300000 || s.LockedSM != 1410 {
			t.Errorf("gpu %d after apply: %+v", i, s)
		}
		j, err := readJournal(dir, c.gpus[i].rng.UUID)
		if err != nil || j.PowerLimitMW != 700000 || !j.Limit || !j.LockSM || j.AppClocks {
			t.Errorf("gpu %d journal: %+v %v", i, j, err)
		}
	}
	st := c.InEffect()
	if len(st) != 2 || st[0].PowerLimitW != 300 || st[0].EnforcedPowerLimitW != 300 || st[0].LockedSMClockMHz == nil ||
		*st[0].LockedSMClockMHz != 1410 || st[0].SMClockMHz != 1410 || strings.Join(st[0].ThrottleReasons, ",") != "sw_power_cap" || st[0].Error != "" {
		t.Errorf("in effect: %+v", st[0])
	}
	sets := gs[0].state().Sets
	if d, err := c.Apply(ctx, capped); err != nil || d != 0 || gs[0].state().Sets != sets {
		t.Errorf("same settings again: settle %v err %v, sets %d → %d", d, err, sets, gs[0].state().Sets)
	}
	// A run without gpu settings gets the GPU as found.
	if _, err := c.Apply(ctx, free); err != nil {
		t.Fatal(err)
	}
	if s := gs[1].state(); s.LimitMW != 700000 || s.LockedSM != 0 {
		t.Errorf("run without settings: %+v", s)
	}
	if _, err := c.Apply(ctx, capped); err != nil {
		t.Fatal(err)
	}
	if err := c.Restore(); err != nil {
		t.Fatal(err)
	}
	for i, g := range gs {
		if s := g.state(); s.LimitMW != 700000 || s.LockedSM != 0 || s.AppSM != 1980 {
			t.Errorf("gpu %d after restore: %+v", i, s)
		}
	}
	if u := journalUUIDs(dir); len(u) != 0 {
		t.Errorf("journals left: %v", u)
	}
	if err := c.Restore(); err != nil {
		t.Errorf("second restore: %v", err)
	}
}

func TestNoPermission(t *testing.T) {
	lib, gs := newFakeH200s(1, "")
	gs[0].deny = true
	dir := t.TempDir()
	_, err := Open(Options{Lib: lib, Dir: dir, Plan: plan(t, capStudy)})
	if !errors.Is(err, ErrNoPermission) || !strings.Contains(err.Error(), "needs root or CAP_SYS_ADMIN") || !strings.Contains(err.Error(), "GPU 0") {
		t.Fatalf("err = %v", err)
	}
	if s := gs[0].state(); s != freshState() {
		t.Errorf("state changed: %+v", s)
	}
	if u := journalUUIDs(dir); len(u) != 0 {
		t.Errorf("journal written: %v", u)
	}
	// The lock was released: a permitted Open works.
	gs[0].deny = false
	c, err := Open(Options{Lib: lib, Dir: dir, Plan: plan(t, capStudy)})
	if err != nil {
		t.Fatal(err)
	}
	c.Restore()
}

func TestOneControllerPerGPU(t *testing.T) {
	lib, _ := newFakeH200s(1, "")
	dir := t.TempDir()
	c, err := Open(Options{Lib: lib, Dir: dir, Plan: plan(t, capStudy)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Restore()
	_, err = Open(Options{Lib: lib, Dir: dir, Plan: plan(t, capStudy)})
	if err == nil || !strings.Contains(err.Error(), "another llem process") {
		t.Fatalf("second open: %v", err)
	}
}

func TestCheckPlanPositions(t *testing.T) {
	lib, _ := newFakeH200s(1, "")
	p := plan(t, `base: {model: "random:llama-15m", backend: "native"}
grid: gpu: power_limit_w: [150, 450, 800]
experiments: [{model: "random:llama-15m", backend: "native",
	gpu: {sm_clock_mhz: 2500, app_mem_clock_mhz: 1000, app_sm_clock_mhz: 1410}}]
`)
	_, err := Open(Options{Lib: lib, Dir: t.TempDir(), Plan: p})
	var se *study.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *study.Error", err, err)
	}
	got := err.Error()
	for _, want := range []string{
		"/tmp/gpu.cue:2:28: grid.gpu.power_limit_w (run ",
		"power limit 150 W is outside the allowed 200–700 W (default 700 W)",
		"/tmp/gpu.cue:2:38: grid.gpu.power_limit_w",
		"/tmp/gpu.cue:4:8: gpu.sm_clock_mhz (run ",
		"2500 MHz is outside the SM clock range 345–1980 MHz",
		"/tmp/gpu.cue:4:28: gpu.app_mem_clock_mhz",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "450") {
		t.Errorf("valid value reported:\n%s", got)
	}
	rs, err := ReadRanges(lib, Options{}.Select)
	if err != nil || len(rs) != 1 || rs[0].MaxLimitW != 700 || rs[0].SMMaxMHz != 1980 {
		t.Fatalf("ranges %+v %v", rs, err)
	}
	var b strings.Builder
	Describe(&b, p, rs)
	if !strings.Contains(b.String(), "allowed 200–700 W") || !strings.Contains(b.String(), "problems:") {
		t.Errorf("describe:\n%s", b.String())
	}
	frac := plan(t, `model: "random:llama-15m", backend: "native", gpu: power_limit_fraction: 0.5`)
	if err := CheckPlan(frac, rs); err != nil {
		t.Errorf("half the default: %v", err)
	}
	if err := CheckPlan(frac, nil); err == nil || !strings.Contains(err.Error(), "no NVIDIA GPU") {
		t.Errorf("no GPU: %v", err)
	}
}

// TestKilledRestoresAtNextStart: a process applies a cap and is killed
// with SIGKILL (no deferred restore runs); the GPU stays capped, and the
// next start restores it from the journal. The fake GPU's state lives in a
// file so it outlives the process, as real settings do.
func TestKilledRestoresAtNextStart(t *testing.T) {
	if os.Getenv("GPUCTL_HELPER") == "1" {
		return
	}
	state, dir := t.TempDir(), t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperApplyAndWait$")
	cmd.Env = append(os.Environ(), "GPUCTL_HELPER=1", "GPUCTL_STATE="+state, "GPUCTL_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	applied := false
	for sc.Scan() {
		if sc.Text() == "applied" {
			applied = true
			break
		}
	}
	if !applied {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("helper did not apply")
	}
	lib, gs := newFakeH200s(2, state)
	// While it lives, its lock keeps another start from restoring.
	if notes, err := Recover(lib, dir); err != nil || len(notes) != 0 {
		t.Fatalf("recover while alive: %v %v", notes, err)
	}
	if s := gs[0].state(); s.LimitMW != 450000 {
		t.Fatalf("live helper's cap was undone: %+v", s)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for i, g := range gs {
		if s := g.state(); s.LimitMW != 450000 || s.LockedSM != 1410 {
			t.Fatalf("gpu %d after kill: %+v", i, s)
		}
	}
	if u := journalUUIDs(dir); len(u) != 2 {
		t.Fatalf("journals after kill: %v", u)
	}
	notes, err := Recover(lib, dir)
	if err != nil || len(notes) != 2 || !strings.Contains(notes[0], "was killed before restoring") {
		t.Fatalf("recover: %v %v", notes, err)
	}
	for i, g := range gs {
		if s := g.state(); s.LimitMW != 700000 || s.LockedSM != 0 {
			t.Errorf("gpu %d after recover: %+v", i, s)
		}
	}
	if u := journalUUIDs(dir); len(u) != 0 {
		t.Errorf("journals after recover: %v", u)
	}
	if notes, err := Recover(lib, dir); err != nil || notes != nil {
		t.Errorf("second recover: %v %v", notes, err)
	}
}

func TestHelperApplyAndWait(t *testing.T) {
	if os.Getenv("GPUCTL_HELPER") != "1" {
		t.Skip("helper process of TestKilledRestoresAtNextStart")
	}
	lib, _ := newFakeH200s(2, os.Getenv("GPUCTL_STATE"))
	p := plan(t, capStudy)
	c, err := Open(Options{Lib: lib, Dir: os.Getenv("GPUCTL_DIR"), Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Runs {
		if r.Config.GPU != nil && *r.Config.GPU.PowerLimitW == 450 {
			if _, err := c.Apply(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	os.Stdout.WriteString("applied\n")
	time.Sleep(time.Minute) // killed here
	t.Fatal("not killed")
}

func TestOpenRestoresStaleJournal(t *testing.T) {
	lib, gs := newFakeH200s(1, "")
	dir := t.TempDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	uuid, _ := lib.Devices[0].GetUUID()
	if err := writeJournal(dir, journal{UUID: uuid, PID: 1, PowerLimitMW: 650000, Limit: true}); err != nil {
		t.Fatal(err)
	}
	c, err := Open(Options{Lib: lib, Dir: dir, Plan: plan(t, capStudy)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Restore()
	if s := gs[0].state(); s.LimitMW != 650000 || len(c.Notes) != 1 {
		t.Errorf("state %+v notes %v", s, c.Notes)
	}
	if _, err := os.Stat(filepath.Join(dir, uuid+".json")); err == nil {
		t.Error("stale journal kept")
	}
}

func TestThrottleNames(t *testing.T) {
	if got := strings.Join(ThrottleNames(0x4|0x8|0x1000), ","); got != "sw_power_cap,hw_slowdown,0x1000" {
		t.Errorf("names = %s", got)
	}
}
