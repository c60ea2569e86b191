package execute

import (
	"bufio"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/result"
)

// killStudy has 2 runs × 3 cycles of a fake worker that takes ~0.25 s.
const killStudy = fakeBase + `grid: max_output_tokens: [3, 4]
execution: {cycles: 3, order: "interleaved"}
`

// child is an llem eval subprocess (this test binary in the eval role).
type child struct {
	cmd   *exec.Cmd
	lines chan string
}

func startChild(t *testing.T, studyPath, out string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append([]string{"LLEM_EXEC_TEST_ROLE=eval", "LLEM_EVAL_STUDY=" + studyPath,
		"LLEM_EVAL_OUT=" + out, "LLEM_FAKE_SLEEP_MS=80"}, env...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- strings.TrimSpace(sc.Text())
		}
		close(c.lines)
	}()
	return c
}

// waitFor reads the child's event lines until one equals line; false when
// the child ended first.
func (c *child) waitFor(line string) bool {
	for l := range c.lines {
		if l == line {
			return true
		}
	}
	return false
}

// wait drains the output and returns the exit code (128+signal when a
// signal killed the process, e.g. SIGKILL, or a SIGINT that landed before
// the child installed its handler).
func (c *child) wait() int {
	code, _ := c.waitSignaled()
	return code
}

// waitSignaled is wait, also saying whether a signal ended the process
// (as opposed to llem handling it and exiting 130 itself).
func (c *child) waitSignaled() (int, bool) {
	for range c.lines {
	}
	c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), true
	}
	return c.cmd.ProcessState.ExitCode(), false
}

func studyDir(t *testing.T, out string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(out, "*", result.ManifestFile))
	if len(dirs) != 1 {
		t.Fatalf("%d study directories under %s, want 1", len(dirs), out)
	}
	return filepath.Dir(dirs[0])
}

// checkConsistent checks what must hold after any interruption: the
// manifest parses, nothing is left running after a clean stop, every done
// entry's record exists and is that run×cycle.
func checkConsistent(t *testing.T, dir string, cleanStop bool) result.Manifest {
	t.Helper()
	m, err := result.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		if cleanStop && e.Status == result.EntryRunning {
			t.Fatalf("entry %s cycle %d still running after a clean stop", e.RunID, e.Cycle)
		}
		if e.Status == result.EntryDone {
			r, err := result.ReadRecordFile(filepath.Join(dir, e.Record))
			if err != nil {
				t.Fatalf("done entry without its record: %v", err)
			}
			if r.RunID != e.RunID || r.Cycle != e.Cycle || r.Status != result.StatusOK {
				t.Fatalf("record %s is %s cycle %d (%s)", e.Record, r.RunID, r.Cycle, r.Status)
			}
		}
	}
	return m
}

// checkComplete checks a finished study: every slot done exactly once, one
// record and one timeseries per run×cycle, no temp files.
func checkComplete(t *testing.T, dir string) {
	t.Helper()
	m := checkConsistent(t, dir, true)
	if m.Status != result.StudyCompleted || m.Counts.Done != 6 || m.Counts.Total != 6 {
		t.Fatalf("manifest %s %+v", m.Status, m.Counts)
	}
	if sum, err := result.ReadSummary(dir); err != nil || sum.Status != result.StudyCompleted || sum.Counts.Done != 6 {
		t.Fatalf("a completed manifest without its summary: %+v, %v", sum, err)
	}
	var recs, series, temps []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
		case strings.Contains(d.Name(), ".tmp-"):
			temps = append(temps, p)
		case strings.HasPrefix(p, filepath.Join(dir, result.RecordsDir)):
			recs = append(recs, p)
		case strings.HasPrefix(p, filepath.Join(dir, result.SeriesDir)):
			series = append(series, p)
		}
		return nil
	})
	if len(recs) != 6 || len(series) != 6 || len(temps) != 0 {
		t.Fatalf("%d records, %d timeseries, temp files %v; want 6, 6, none", len(recs), len(series), temps)
	}
	seen := map[string]bool{}
	all, err := result.ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		k := r.RunID + "/" + string(rune('0'+r.Cycle))
		if seen[k] {
			t.Fatalf("duplicate record for %s", k)
		}
		seen[k] = true
	}
	if _, err := result.ReadSummary(dir); err != nil {
		t.Fatal(err)
	}
}

// resumeToEnd reruns the child without interference until it finishes.
func resumeToEnd(t *testing.T, studyPath, out string) {
	t.Helper()
	if code := startChild(t, studyPath, out).wait(); code != 0 {
		t.Fatalf("resume exited %d", code)
	}
	checkComplete(t, studyDir(t, out))
}

func TestKillPoints(t *testing.T) {
	t.Parallel()
	studyPath, _ := writeStudy(t, killStudy)
	tests := []struct {
		name     string
		waitLine string // kill when the child prints this event line
		sig      syscall.Signal
		env      []string
		wantCode int
	}{
		{"SIGINT mid-run", "phase decode", syscall.SIGINT, nil, 130},
		{"SIGINT between runs", "run_end", syscall.SIGINT, nil, 130},
		{"SIGKILL mid-run", "phase prefill", syscall.SIGKILL, nil, 137},
		{"SIGKILL between runs", "run_end", syscall.SIGKILL, nil, 137},
		// Writes of study state: 1 the first manifest (inside Create, before
		// the directory is renamed into place), 2 slot 1 running, 3 slot 1
		// done, 4 slot 2 running (journal lines), …; the last two are
		// summary.json and the final manifest.
		{"SIGKILL while creating the directory", "", 0, []string{"LLEM_KILL_AT_WRITE=1", "LLEM_KILL_EXPECT=nodir"}, 137},
		{"SIGKILL during a journal append (slot starting)", "", 0, []string{"LLEM_KILL_AT_WRITE=2"}, 137},
		{"SIGKILL during a journal append (record written, done not)", "", 0, []string{"LLEM_KILL_AT_WRITE=3"}, 137},
		{"SIGKILL during a journal append (second slot starting)", "", 0, []string{"LLEM_KILL_AT_WRITE=4"}, 137},
		// 6 slots × 2 transitions after the first write: 14 is summary.json, 15 the final manifest.
		{"SIGKILL while writing the summary", "", 0, []string{"LLEM_KILL_AT_WRITE=14", "LLEM_KILL_EXPECT=alldone"}, 137},
		{"SIGKILL while writing the final status", "", 0, []string{"LLEM_KILL_AT_WRITE=15", "LLEM_KILL_EXPECT=alldone"}, 137},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			c := startChild(t, studyPath, out, tc.env...)
			if tc.waitLine != "" {
				if !c.waitFor(tc.waitLine) {
					t.Fatalf("child ended before %q", tc.waitLine)
				}
				c.cmd.Process.Signal(tc.sig)
			}
			if code := c.wait(); code != tc.wantCode {
				t.Fatalf("exit %d, want %d", code, tc.wantCode)
			}
			expect := ""
			for _, e := range tc.env {
				expect = strings.TrimPrefix(e, "LLEM_KILL_EXPECT=")
			}
			if expect == "nodir" {
				// Killed before the directory was renamed into place: no study
				// directory exists (only the hidden one Create was building),
				// and the next eval starts afresh and removes it.
				entries, _ := os.ReadDir(out)
				for _, e := range entries {
					if !strings.HasPrefix(e.Name(), ".") {
						t.Fatalf("a visible directory after a kill inside Create: %s", e.Name())
					}
				}
				resumeToEnd(t, studyPath, out)
				if left, _ := filepath.Glob(filepath.Join(out, ".llem-creating-*")); len(left) != 0 {
					t.Fatalf("the abandoned creating directory was not removed: %v", left)
				}
				return
			}
			dir := studyDir(t, out)
			m := checkConsistent(t, dir, tc.sig == syscall.SIGINT)
			if tc.sig == syscall.SIGINT && m.Status != result.StudyInterrupted {
				t.Fatalf("status after Ctrl-C = %s", m.Status)
			}
			switch {
			case expect == "alldone":
				// Every slot ran; the kill hit the summary or the final status,
				// so the manifest must not claim completion yet.
				if m.Counts.Done != 6 || m.Status == result.StudyCompleted {
					t.Fatalf("after a kill in the final writes: %s %+v", m.Status, m.Counts)
				}
			case m.Counts.Done == 6:
				t.Fatalf("the kill came too late to test anything")
			}
			resumeToEnd(t, studyPath, out)
		})
	}
}

// TestRandomKills interrupts one study execution at ≥ 30 random moments
// (with TestKillPoints' 10 aimed ones: ≥ 40 kill points)
// (SIGINT or SIGKILL), resuming after each, then lets it finish: no record
// may be lost or duplicated. Long: skipped under -short.
func TestRandomKills(t *testing.T) {
	if testing.Short() {
		t.Skip("long: 20+ interrupted executions")
	}
	t.Parallel()
	studyPath, _ := writeStudy(t, killStudy)
	out := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for i := 0; kills < 30 && i < 90; i++ {
		c := startChild(t, studyPath, out)
		delay := time.Duration(rng.IntN(2500)) * time.Millisecond
		sig := syscall.SIGKILL
		if rng.IntN(2) == 0 {
			sig = syscall.SIGINT
		}
		timer := time.AfterFunc(delay, func() { c.cmd.Process.Signal(sig) })
		code, signaled := c.waitSignaled()
		killed := timer.Stop() == false && code != 0
		if killed {
			kills++
		}
		if code != 0 && code != 130 && code != 137 {
			t.Fatalf("iteration %d: exit %d", i, code)
		}
		dirs, _ := filepath.Glob(filepath.Join(out, "*", result.ManifestFile))
		if len(dirs) == 0 {
			continue // killed before the directory existed
		}
		// Only an exit llem chose (130 from its handler) promises no slot
		// left running; a signal that killed it is like kill -9.
		m := checkConsistent(t, studyDir(t, out), code == 130 && !signaled)
		if m.Status == result.StudyCompleted {
			// Finished: start a fresh execution directory to keep killing.
			checkComplete(t, studyDir(t, out))
			out = t.TempDir()
		}
	}
	if kills < 30 {
		t.Fatalf("only %d kills landed", kills)
	}
	if dirs, _ := filepath.Glob(filepath.Join(out, "*", result.ManifestFile)); len(dirs) > 0 {
		resumeToEnd(t, studyPath, out)
	}
}
