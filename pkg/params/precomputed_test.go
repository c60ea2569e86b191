package params

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/llenergymeasure/llem/pkg/params/precomputed"
)

var update = flag.Bool("update", false, "rewrite precomputed/ from the compiled schema")

// TestPrecomputedIsCurrent: precomputed/ is what compiling this schema
// gives, value for value (go generate ./pkg/params rewrites it), and the
// fast path serves it.
func TestPrecomputedIsCurrent(t *testing.T) {
	sum := precomputed.Checksum(precomputed.SourceFiles())
	live, err := compiledReports()
	if err != nil {
		t.Fatal(err)
	}
	want, err := encodePrecomputed(sum, scanned().names, scanned().targets, live)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		// Only the generated files go: precomputed.go stays.
		old, _ := filepath.Glob("precomputed/*.json")
		for _, f := range append(old, "precomputed/rendered") {
			if err := os.RemoveAll(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll("precomputed/rendered", 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join("precomputed", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	const stale = "pkg/params/precomputed/ is stale (the schema changed): run go generate ./pkg/params ./cmd/llem"
	var names []string
	err = fs.WalkDir(precomputed.FS(), ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		names = append(names, name)
		b, _ := fs.ReadFile(precomputed.FS(), name)
		if !bytes.Equal(b, want[name]) {
			t.Fatalf("%s: %s differs", stale, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(want) {
		t.Fatalf("%s: files %v, want %d", stale, names, len(want))
	}
	d := fast()
	if d == nil {
		t.Fatal("the fast path is off although precomputed/ is current")
	}
	if !reflect.DeepEqual(d.names, scanned().names) || !reflect.DeepEqual(d.targets, scanned().targets) {
		t.Errorf("backends %v targets %v, compiled %v %v", d.names, d.targets, scanned().names, scanned().targets)
	}
	for _, r := range live {
		got, err := d.report(r.Backend)
		if err != nil {
			t.Fatal(err)
		}
		gm, gok, gerr := MeasuredCoverage(got)
		lm, lok, lerr := MeasuredCoverage(r)
		if gerr != nil || lerr != nil || gok != lok || !reflect.DeepEqual(gm, lm) {
			t.Errorf("%s: measured coverage %+v %v %v, compiled %+v %v %v", r.Backend, gm, gok, gerr, lm, lok, lerr)
		}
		plain := *got
		plain.pre = nil
		if !reflect.DeepEqual(&plain, r) {
			t.Errorf("%s: the decoded report differs from the compiled one", r.Backend)
		}
	}
	var a, b bytes.Buffer
	fastReports, _ := Reports()
	if err := WriteText(&a, fastReports); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&b, live); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("llem params' text differs between the precomputed and the compiled reports")
	}
}

// TestPrecomputedRefusedForOtherSchema: data for other schema files is
// never used (a registered backend, an edited file), and a number stored
// without its type is an error, not a silently different value.
func TestPrecomputedRefusedForOtherSchema(t *testing.T) {
	sub := precomputed.FS()
	files := precomputed.SourceFiles()
	for name, src := range map[string][]byte{"extra_backend.cue": []byte("package schema\n"), "experiment.cue": append(slices.Clone(files["experiment.cue"]), ' '),
		"upstream/relevance/vllm.json": append(slices.Clone(files["upstream/relevance/vllm.json"]), ' ')} {
		changed := precomputed.SourceFiles()
		changed[name] = src
		if _, err := openPrecomputed(sub, precomputed.Checksum(changed)); err == nil || !strings.Contains(err.Error(), "is for schema") {
			t.Errorf("%s changed: precomputed data accepted: %v", name, err)
		}
	}
	bad := fstest.MapFS{
		"index.json": {Data: []byte(`{"schema_checksum":"h","backends":["x"]}`)},
		"x.json":     {Data: []byte(`{"backend":"x","params":[{"path":"x.a","default":3}]}`)},
	}
	d, err := openPrecomputed(bad, "h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.report("x"); err == nil || !strings.Contains(err.Error(), "without its type") {
		t.Errorf("an untyped number was accepted: %v", err)
	}
	if _, err := d.report("y"); err == nil {
		t.Error("a backend not in the index was served")
	}
}
