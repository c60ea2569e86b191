package upstream

import (
	"os"
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
