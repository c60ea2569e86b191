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
)

var update = flag.Bool("update", false, "rewrite precomputed/ from the compiled schema")

// TestPrecomputedIsCurrent: precomputed/ is what compiling this schema
// gives, value for value (go generate ./pkg/params rewrites it), and the
// fast path serves it.
func TestPrecomputedIsCurrent(t *testing.T) {
	sum := schemaChecksum(sourceFiles())
	live, err := compiledReports()
	if err != nil {
		t.Fatal(err)
	}
	want, err := encodePrecomputed(sum, scanned().names, scanned().targets, live)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.RemoveAll("precomputed"); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("precomputed", 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join("precomputed", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	const stale = "pkg/params/precomputed/ is stale (the schema changed): run go generate ./pkg/params"
	entries, err := fs.ReadDir(precomputedFS, "precomputed")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, _ := fs.ReadFile(precomputedFS, "precomputed/"+e.Name())
		if !bytes.Equal(b, want[e.Name()]) {
			t.Fatalf("%s: %s differs", stale, e.Name())
		}
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
	sub, err := fs.Sub(precomputedFS, "precomputed")
	if err != nil {
		t.Fatal(err)
	}
	files := sourceFiles()
	for name, src := range map[string][]byte{"extra_backend.cue": []byte("package schema\n"), "experiment.cue": append(slices.Clone(files["experiment.cue"]), ' '),
		"upstream/relevance/vllm.json": append(slices.Clone(files["upstream/relevance/vllm.json"]), ' ')} {
		changed := sourceFiles()
		changed[name] = src
		if _, err := openPrecomputed(sub, schemaChecksum(changed)); err == nil || !strings.Contains(err.Error(), "is for schema") {
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
