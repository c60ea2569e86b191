package study

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/pkg/carbon"
)

// TestPlanWriteJSONMatchesMarshal: the streamed encoding is byte for byte
// json.Marshal's, with and without the optional fields, for a real plan.
func TestPlanWriteJSONMatchesMarshal(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "s.cue")
	os.WriteFile(path, []byte(`name: "s"
base: {model: "random:llama-15m", backend: "native", precision: "fp32", n: 2}
grid: {native: batch_size: [1, 2, 3], max_output_tokens: [4, 8]}
execution: {cycles: 3, order: "shuffled"}
`), 0o644)
	p, err := Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	empty := &Plan{}
	withOptional := *p
	withOptional.Carbon = &carbon.Config{Region: "FR"}
	withOptional.Warnings = []string{"w <1>"}
	for _, plan := range []*Plan{p, empty, &withOptional} {
		want, err := json.Marshal(plan)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := plan.WriteJSON(&got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("WriteJSON differs from json.Marshal:\n%s\n%s", got.Bytes(), want)
		}
	}
}
