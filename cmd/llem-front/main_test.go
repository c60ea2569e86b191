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
