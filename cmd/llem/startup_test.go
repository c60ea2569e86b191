package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkStartup times the built llem binary end to end (fork, exec,
// package init, the command), the wall time a user waits for: the target
// is ≤ 20 ms for --version, params and a completion query. It builds llem
// once per benchmark run; `make bench` runs it.
func BenchmarkStartup(b *testing.B) {
	if testing.Short() {
		b.Skip("builds llem")
	}
	bin := filepath.Join(b.TempDir(), "llem")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build llem: %v", err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
	}{
		{"version", []string{"--version"}, nil},
		{"params", []string{"params", "native"}, nil},
		{"completion", nil, []string{"COMP_LINE=llem params n", "COMP_POINT=15"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				cmd := exec.Command(bin, c.args...)
				cmd.Env = append(os.Environ(), c.env...)
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("llem %v: %v\n%s", c.args, err, out)
				}
			}
		})
	}
}
