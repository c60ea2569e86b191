package params

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/schema"
)

var update = flag.Bool("update", false, "rewrite precomputed.json from the compiled schema")

// TestPrecomputedIsCurrent: precomputed.json is what compiling this
// schema gives, value for value (go generate ./pkg/params rewrites it),
// and the fast path serves it.
func TestPrecomputedIsCurrent(t *testing.T) {
	hash := schemaHash(schema.Files())
	live, err := compiledReports()
	if err != nil {
		t.Fatal(err)
	}
	want, err := encodePrecomputed(hash, scanned().names, scanned().targets, live)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("precomputed.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(precomputedJSON, want) {
		t.Fatalf("pkg/params/precomputed.json is stale (the schema changed): run go generate ./pkg/params")
	}
	d, err := decodePrecomputed(precomputedJSON, hash)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.names, scanned().names) || !reflect.DeepEqual(d.targets, scanned().targets) {
		t.Errorf("backends %v targets %v, compiled %v %v", d.names, d.targets, scanned().names, scanned().targets)
	}
	for _, r := range live {
		got, err := d.report(r.Backend)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: the decoded report differs from the compiled one", r.Backend)
		}
	}
	if fast() == nil {
		t.Error("the fast path is off although precomputed.json is current")
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
	files := schema.Files()
	files["extra_backend.cue"] = []byte("package schema\n")
	if _, err := decodePrecomputed(precomputedJSON, schemaHash(files)); err == nil || !strings.Contains(err.Error(), "is for schema") {
		t.Errorf("precomputed data accepted for other schema files: %v", err)
	}
	bad := []byte(`{"schema_sha256":"h","reports":[{"backend":"x","params":[{"path":"x.a","default":3}]}]}`)
	d, err := decodePrecomputed(bad, "h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.report("x"); err == nil || !strings.Contains(err.Error(), "without its type") {
		t.Errorf("an untyped number was accepted: %v", err)
	}
}
