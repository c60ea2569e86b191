package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartup times the built llem binary end to end (fork, exec,
// package init, the command), the wall time a user waits for: the target
// is ≤ 20 ms for --version, params and a completion query. It builds llem
// once per benchmark run (`make bench` runs it); LLEM_BENCH_BINARY names a
// binary to time instead, to compare two builds on one loaded machine.
// Besides ns/op it reports the median (p50-ms) and fastest (min-ms) wall
// times, less sensitive than the mean to other processes on the machine.
func BenchmarkStartup(b *testing.B) {
	if testing.Short() {
		b.Skip("builds llem")
	}
	bin := os.Getenv("LLEM_BENCH_BINARY")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "llem")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			b.Fatalf("build llem: %v", err)
		}
	}
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"version", []string{"--version"}, nil},
		{"params", []string{"params", "native"}, nil},
		{"completion", nil, []string{"COMP_LINE=llem params n", "COMP_POINT=15"}},
		{"completion-command", nil, []string{"COMP_LINE=llem ev", "COMP_POINT=7"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var walls []time.Duration
			for b.Loop() {
				cmd := exec.Command(bin, c.args...)
				cmd.Env = append(os.Environ(), c.env...)
				start := time.Now()
				out, err := cmd.CombinedOutput()
				walls = append(walls, time.Since(start))
				if err != nil {
					b.Fatalf("llem %v: %v\n%s", c.args, err, out)
				}
			}
			slices.Sort(walls)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(walls[len(walls)/2]), "p50-ms")
			b.ReportMetric(ms(walls[0]), "min-ms")
		})
	}
}
