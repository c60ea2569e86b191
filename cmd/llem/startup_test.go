package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartup times the built binaries end to end (fork, exec,
// package init, the command), the wall time a user waits for: the target
// is ≤ 20 ms for --version, params and a completion query. It builds what
// make build installs — the start-up front as llem and the full program as
// llem-core beside it — once per run (`make bench` runs it), and times
// both: front/* is what a user of `make build` waits for, core/* what the
// single full binary (go install ./cmd/llem) costs. LLEM_BENCH_BINARY
// names a binary to time instead, to compare two builds on one loaded
// machine. Besides ns/op it reports the median (p50-ms) and fastest
// (min-ms) wall times, less sensitive than the mean to other processes.
func BenchmarkStartup(b *testing.B) {
	if testing.Short() {
		b.Skip("builds llem")
	}
	bins := map[string]string{"custom": os.Getenv("LLEM_BENCH_BINARY")}
	if bins["custom"] == "" {
		dir := b.TempDir()
		bins = map[string]string{"front": filepath.Join(dir, "llem"), "core": filepath.Join(dir, "llem-core")}
		for out, pkg := range map[string]string{bins["core"]: ".", bins["front"]: "../llem-front"} {
			build := exec.Command("go", "build", "-o", out, pkg)
			if pkg != "." {
				build.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build
			}
			build.Stderr = os.Stderr
			if err := build.Run(); err != nil {
				b.Fatalf("build %s: %v", pkg, err)
			}
		}
	}
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"version", []string{"--version"}, nil},
		{"params", []string{"params", "native"}, nil},
		{"params-all", []string{"params"}, nil},
		{"completion", nil, []string{"COMP_LINE=llem params n", "COMP_POINT=15"}},
		{"completion-command", nil, []string{"COMP_LINE=llem ev", "COMP_POINT=7"}},
	}
	for _, which := range []string{"front", "core", "custom"} {
		bin, ok := bins[which]
		if !ok {
			continue
		}
		for _, c := range cases {
			b.Run(which+"/"+c.name, func(b *testing.B) {
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
}
