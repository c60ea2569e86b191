package upstream

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfilesInstallTargets: each backend's Dockerfile builds on the
// pinned base image and pip-installs exactly the pinned versions.
func TestDockerfilesInstallTargets(t *testing.T) {
	ts, err := Targets()
	if err != nil {
		t.Fatal(err)
	}
	for b, tg := range ts {
		raw, err := os.ReadFile(filepath.Join("..", "..", "docker", b+".Dockerfile"))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		df := string(raw)
		if !strings.Contains(df, "ARG BASE_IMAGE="+tg.BaseImage+"\n") {
			t.Errorf("docker/%s.Dockerfile: BASE_IMAGE is not the pinned %s", b, tg.BaseImage)
		}
		for pkg, v := range tg.Pip {
			if !strings.Contains(df, `"`+pkg+"=="+v+`"`) {
				t.Errorf("docker/%s.Dockerfile does not install the pinned %s==%s", b, pkg, v)
			}
		}
	}
}

// TestSnapshotsHaveVerdicts: every knob of every pinned snapshot has a
// reviewed relevance verdict, and irrelevant ones give a reason.
func TestSnapshotsHaveVerdicts(t *testing.T) {
	ts, _ := Targets()
	for b := range ts {
		s, err := Load(b)
		if err != nil {
			t.Fatal(err)
		}
		if s == nil {
			continue
		}
		rel, err := Relevance(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range s.Knobs() {
			v, ok := rel[k]
			if !ok {
				t.Errorf("%s: %s has no verdict in relevance/%s.json", b, k, b)
			} else if !v.Relevant && v.Reason == "" {
				t.Errorf("%s: %s is irrelevant without a reason", b, k)
			}
		}
	}
}

// TestTensorRTInstallHintsPinTarget: the install hints (llem env, the
// harness's missing_package error) install the pinned TensorRT-LLM.
func TestTensorRTInstallHintsPinTarget(t *testing.T) {
	ts, err := Targets()
	if err != nil {
		t.Fatal(err)
	}
	want := "tensorrt-llm==" + ts["tensorrt"].Version + " "
	for _, f := range []string{"pkg/pyenv/pyenv.go", "pkg/backend/pyharness/llem_common.py"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), want) {
			t.Errorf("%s: the tensorrt install hint does not pin %q", f, strings.TrimSpace(want))
		}
	}
}

// TestExtractPydanticShapes runs extract.py on a synthetic module with the
// shapes of TensorRT-LLM's llm_args.py: a subclass's surface includes its
// bases' fields with its own overriding them (with_bases), Literal values
// are recorded, private attributes and ClassVars are not fields, a required
// Field() is required, enum members and dispatch-table keys are value sets.
func TestExtractPydanticShapes(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	out := filepath.Join(t.TempDir(), "snap.json")
	cmd := exec.Command(py, "extract.py", "testdata/extract/spec.json", "testdata/extract", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extract.py: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var s Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	child := s.Surfaces["child"]
	var names []string
	for _, f := range child.Fields {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "model,mode,backend,load_format,strategy,sub" {
		t.Errorf("child fields = %s", got)
	}
	if f, _ := child.Field("model"); !f.Required {
		t.Error("model (Field() without default) is not required")
	}
	if f, _ := child.Field("mode"); strings.Join(f.Values, ",") != "auto,slow" || *f.Default != "'auto'" {
		t.Errorf("mode = %+v", f)
	}
	if f, _ := child.Field("load_format"); f.Values != nil || *f.Default != "LoadFormat.AUTO" {
		t.Errorf("load_format must be Child's (no Literal), got %+v", f)
	}
	if f, _ := child.Field("strategy"); strings.Join(f.Values, ",") != "AUTO,NCCL" {
		t.Errorf("strategy = %+v", f)
	}
	if f, _ := child.Field("sub"); *f.Default != "SubConfig()" {
		t.Errorf("sub = %+v", f)
	}
	if got := strings.Join(s.Surfaces["policies"].Values, ","); got != "FIRST,SECOND" {
		t.Errorf("enum values = %s", got)
	}
	if got := strings.Join(s.Surfaces["types"].Values, ","); got != "A,B" {
		t.Errorf("dispatch keys = %s", got)
	}
}
