package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/llenergymeasure/llem/pkg/result"
)

const diskFullStudy = `name: "full"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: native: batch_size: [1, 2]
execution: {cycles: 2, order: "sequential"}
`

// TestDiskFull runs a study, and exports it, on a real tmpfs that is full
// at 20 levels of free space, from none to more than the study needs. At
// every level llem must either finish or stop with a message naming the
// full disk, leave the directory consistent (manifest readable, every
// finished slot's record verified) and — once space is freed — resume to
// a complete study with every slot done exactly once; an export that runs
// out of space must leave the previous export at its path intact.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestDiskFull needs root to mount a tmpfs, and CI runs as root")
		}
		t.Skip("needs root (mounts a tmpfs)")
	}
	work := t.TempDir() // not parallel: t.Setenv
	study := filepath.Join(work, "full.cue")
	if err := os.WriteFile(study, []byte(diskFullStudy), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLEM_CACHE_DIR", filepath.Join(work, "cache"))
	t.Setenv("LLEM_CONFIG", filepath.Join(work, "none.yaml"))
	mnt := filepath.Join(work, "disk")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	const step = 8 << 10
	for level := range 20 {
		free := int64(level) * step
		t.Run(fmt.Sprintf("free=%dKiB", free>>10), func(t *testing.T) {
			root := filepath.Join(mnt, "results")
			defer os.RemoveAll(root)
			fill(t, mnt, free)
			code, _, stderr := runEval(t, study, "--out", root, "--quiet")
			if code != 0 && !strings.Contains(stderr, "no space left on device") {
				t.Fatalf("exit %d without naming the full disk:\n%s", code, stderr)
			}
			dirs, _ := filepath.Glob(filepath.Join(root, "full-*"))
			t.Logf("eval exit %d, %d study directories; %s", code, len(dirs), firstLineOf(stderr))
			if left, _ := filepath.Glob(filepath.Join(root, ".llem-creating-*")); len(left) > 0 && code == 0 {
				t.Fatalf("a finished eval left %v", left)
			}
			for _, d := range dirs {
				checkVerified(t, d)
			}
			unfill(t, mnt)
			if len(dirs) == 0 {
				return // stopped before the study directory existed: nothing to resume
			}
			if len(dirs) > 1 {
				t.Fatalf("one eval made %d study directories", len(dirs))
			}
			if code != 0 {
				if c, _, e := runEval(t, study, "--resume", dirs[0], "--quiet"); c != 0 {
					t.Fatalf("resume after freeing space: exit %d\n%s", c, e)
				}
			}
			m := checkVerified(t, dirs[0])
			if m.Status != result.StudyCompleted || m.Counts.Done != 4 {
				t.Fatalf("after resume: %s %+v", m.Status, m.Counts)
			}
			// An export that runs out of space keeps the previous one whole.
			exp := filepath.Join(mnt, "export.json")
			defer os.Remove(exp)
			if c := Main(t.Context(), []string{"results", "export", dirs[0], "--out", exp}, IO{Stdout: os.Stdout, Stderr: os.Stderr}); c != 0 {
				t.Fatalf("export with space: exit %d", c)
			}
			before, _ := os.ReadFile(exp)
			fill(t, mnt, free/4)
			var errb strings.Builder
			c := Main(t.Context(), []string{"results", "export", dirs[0], "--out", exp, "--force"}, IO{Stdout: os.Stdout, Stderr: &errb})
			unfill(t, mnt)
			after, _ := os.ReadFile(exp)
			if string(after) != string(before) {
				t.Fatalf("export over a full disk (exit %d) changed the previous export: %d -> %d bytes\n%s", c, len(before), len(after), errb.String())
			}
			if tmp, _ := filepath.Glob(filepath.Join(mnt, ".export.json.tmp-*")); len(tmp) > 0 {
				t.Fatalf("a failed export left %v", tmp)
			}
		})
	}
}

// checkVerified fails unless dir's manifest reads and every finished
// entry's record is its own.
func checkVerified(t *testing.T, dir string) result.Manifest {
	t.Helper()
	m, err := result.ReadManifest(dir)
	if err != nil {
		t.Fatalf("manifest after a full disk: %v", err)
	}
	if _, probs, err := result.StudyRecords(dir, m); err != nil || len(probs) > 0 {
		t.Fatalf("records after a full disk: %v %v", probs, err)
	}
	return m
}

// fill leaves about free bytes available on the file system at mnt.
func fill(t *testing.T, mnt string, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	if avail <= free {
		return
	}
	f, err := os.OpenFile(filepath.Join(mnt, "filler"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, avail-free)); err != nil && free > 0 {
		t.Fatalf("fill: %v", err)
	}
}

func unfill(t *testing.T, mnt string) {
	t.Helper()
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
