package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func runParams(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"params"}, args...), IO{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestParamsCommand(t *testing.T) {
	code, out, errOut := runParams(t)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, b := range []string{"pytorch:", "vllm:", "tensorrt:", "native:"} {
		if !strings.Contains(out, "\n"+b) && !strings.HasPrefix(out, b) {
			t.Errorf("all-backends text lacks %q", b)
		}
	}

	code, out, errOut = runParams(t, "VLLM", "--json")
	if code != 0 {
		t.Fatalf("--json exit %d: %s", code, errOut)
	}
	var doc struct {
		Backends []struct {
			Backend  string `json:"backend"`
			Coverage struct {
				Ratio  float64 `json:"ratio"`
				Target float64 `json:"target"`
			} `json:"coverage"`
			Params []struct {
				Path    string `json:"path"`
				Mapping struct{ Target, Arg string }
			} `json:"params"`
		} `json:"backends"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(doc.Backends) != 1 || doc.Backends[0].Backend != "vllm" || doc.Backends[0].Coverage.Ratio < doc.Backends[0].Coverage.Target {
		t.Fatalf("json = %+v", doc.Backends)
	}

	// --markdown over all backends is exactly the committed docs/params.md.
	code, out, _ = runParams(t, "--markdown")
	want, err := os.ReadFile("../../docs/params.md")
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != string(want) {
		t.Errorf("llem params --markdown differs from docs/params.md (exit %d); run make docs", code)
	}
}

func TestParamsBadInput(t *testing.T) {
	code, _, errOut := runParams(t, "onnx")
	if code != 2 || !strings.Contains(errOut, `unknown backend "onnx"`) || !strings.Contains(errOut, "hint: choose one of pytorch, vllm, tensorrt, native") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runParams(t, "--json", "--markdown"); code != 2 {
		t.Errorf("--json --markdown: exit %d, want 2", code)
	}
}
