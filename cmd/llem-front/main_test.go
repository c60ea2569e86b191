package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoHeavyPackage: the front's start-up is only as short as its
// import graph is small; a package whose init the full program pays for
// must not creep in (through internal/completion or pkg/params/precomputed).
func TestLinksNoHeavyPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, heavy := range []string{"cuelang.org/", "github.com/apache/arrow-go/", "github.com/moby/", "gonum.org/",
			"modernc.org/", "google.golang.org/", "github.com/alecthomas/kong", "github.com/llenergymeasure/llem/pkg/params\n"} {
			if strings.HasPrefix(dep+"\n", heavy) {
				t.Errorf("the front links %s", dep)
			}
		}
	}
}

// TestAnswerLeavesTheRestToCore: the front answers only the forms whose
// output it holds, and hands every other form to llem-core.
func TestAnswerLeavesTheRestToCore(t *testing.T) {
	for _, args := range [][]string{
		{"--version"}, {"version"}, {"params"}, {"params", "native"}, {"params", "VLLM", "--json"}, {"params", "--json", "pytorch"},
	} {
		if out, ok := answer(args); !ok || len(out) == 0 {
			t.Errorf("%q: not answered", args)
		}
	}
	for _, args := range [][]string{
		nil, {"--help"}, {"-v", "--version"}, {"version", "x"}, {"params", "nativ"}, {"params", "--markdown"},
		{"params", "native", "vllm"}, {"params", "--json", "--json"}, {"params", "-v"}, {"params", ""}, {"eval", "study.cue"},
		{"params", "--json=true"},
	} {
		if _, ok := answer(args); ok {
			t.Errorf("%q: answered by the front", args)
		}
	}
}

// TestBuildsForMacOS: both binaries cross-compile for macOS (the
// powermetrics sensor is Apple Silicon's), without cgo — this machine has
// no macOS C toolchain, so the cgo build (NVML, AMD SMI) is not checked
// here. Linux-only calls (Pdeathsig, timer slack, clock_nanosleep) sit in
// _linux.go files with a portable counterpart.
func TestBuildsForMacOS(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles llem")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir, "../llem", ".")
	cmd.Env = append(cmd.Environ(), "GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=darwin go build: %v\n%s", err, out)
	}
}
