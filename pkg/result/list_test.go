package result_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/result"
)

func TestListStudies(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "b"} {
		if _, _, err := exportertest.WriteStudy(filepath.Join(root, name), exportertest.Spec{Study: name, Runs: 2, Cycles: 3,
			Failed: map[[2]int]bool{{0, 1}: name == "b"}}); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "broken"), 0o755)
	os.WriteFile(filepath.Join(root, "broken", "manifest.json"), []byte("{"), 0o644)
	os.MkdirAll(filepath.Join(root, "not-a-study"), 0o755)

	got, err := result.ListStudies(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d studies: %+v", len(got), got)
	}
	by := map[string]result.StudyInfo{}
	for _, in := range got {
		by[filepath.Base(in.Dir)] = in
	}
	if a := by["a"]; a.Study != "a" || a.Runs != 2 || a.Counts.Done != 6 || a.Status != "completed" {
		t.Errorf("a = %+v", a)
	}
	if b := by["b"]; b.Counts.Failed != 1 || b.Status != "failed" {
		t.Errorf("b = %+v", b)
	}
	if br := by["broken"]; br.Status != "unreadable" || br.Error == "" {
		t.Errorf("broken = %+v", br)
	}
	if _, err := result.ListStudies(filepath.Join(root, "missing")); err == nil {
		t.Error("missing root: want error")
	}
}
