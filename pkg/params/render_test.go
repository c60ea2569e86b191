package params

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/schema"
)

// TestDocsFresh fails when docs/params.md no longer matches the schema.
func TestDocsFresh(t *testing.T) {
	reports, err := Reports()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, reports); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile("../../docs/params.md")
	if err != nil {
		t.Fatalf("read docs/params.md: %v (run: go generate ./pkg/params)", err)
	}
	if !bytes.Equal(onDisk, buf.Bytes()) {
		t.Fatalf("docs/params.md is stale: run `go generate ./pkg/params` (or `make docs`) and commit it")
	}
}

func TestWriteMarkdown(t *testing.T) {
	reports, err := Reports("vllm", "native")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteMarkdown(&buf, reports); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		fmt.Sprintf("| [vllm](#vllm) | 95.7%% (88 of 92) | vllm 0.15.0 | %d | 6 | %.1f%% | ≥ 90%% |", reports[0].Coverage.FirstClass, 100*reports[0].Coverage.Ratio),
		"## vllm\n",
		"| `engine.block_size` | `1 \\| 8 \\| 16 \\| 32 \\| 64 \\| 128` | backend default (16 on CUDA) | `engine.block_size` |",
		"| `batch_size` | `int >=1 & <=1024` | 1 | `worker.batch_size` |",
		"### Known missing",
		"### Cross-field rules",
		"- vllm.engine.kv_cache_memory_bytes and vllm.engine.gpu_memory_utilization are mutually exclusive",
		"| `engine.seed` | `random_seed` |",
		"| LoRA adapters | `beam_search_call.lora_request` |",
		"None: every option the backend has is first-class.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// Every row of a table has as many unescaped cell separators as its
	// header: an unescaped | in a type or doc would shift the columns.
	want := -1
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = -1
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if want < 0 {
			want = n
			continue
		}
		if n != want {
			t.Errorf("row with %d separators (header has %d): %s", n, want, line)
		}
	}
}

func TestWriteTextAndJSON(t *testing.T) {
	reports, err := Reports("pytorch")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, reports); err != nil {
		t.Fatal(err)
	}
	txt := buf.String()
	for _, want := range []string{
		fmt.Sprintf("pytorch: %d params, %s", len(reports[0].Params), reports[0].CoverageText()),
		"measured coverage 95.4% = 62 of 65 energy-relevant upstream knobs of transformers 5.17.0 first-class; target ≥ 95% met",
		"  pytorch.num_beams  int >=1 & <=64\n      default: backend default (1)   maps to: @pytorch(generate.num_beams)\n",
		"  - tp_plan (from_pretrained.tp_plan):",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("text lacks %q\n%s", want, txt[:min(len(txt), 600)])
		}
	}
	buf.Reset()
	if err := WriteJSON(&buf, reports); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Backends []Report `json:"backends"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Backends) != 1 || len(doc.Backends[0].Params) != len(reports[0].Params) || doc.Backends[0].Coverage.Target != 0.95 {
		t.Errorf("json round trip: %+v", doc.Backends)
	}
	if strings.Contains(buf.String(), `\u003e`) {
		t.Error("json escapes >; bounds should read as written")
	}
}

func BenchmarkCompile(b *testing.B) {
	src := map[string][]byte{}
	_, _, files, _, err := scanBackends(schema.Files())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range files {
		data, err := os.ReadFile("../../schema/" + n)
		if err != nil {
			b.Fatal(err)
		}
		src[n] = data
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBackendArgs(b *testing.B) {
	s, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	var sec map[string]any
	_ = json.Unmarshal([]byte(`{"engine": {"max_num_seqs": 64, "gpu_memory_utilization": 0.85, "speculative_model": "x", "num_speculative_tokens": 4},
		"sampling": {"ignore_eos": true}, "extra": {"engine": {"disable_log_stats": true}}}`), &sec)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.BackendArgs("vllm", sec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGridCUEFresh: schema/grids_gen.cue is what GridCUE renders from the
// current sections (run `go generate ./pkg/params` after changing one).
func TestGridCUEFresh(t *testing.T) {
	s, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.GridCUE(BackendNames())
	if err != nil {
		t.Fatal(err)
	}
	got, err := schema.FS().(fs.ReadFileFS).ReadFile("grids_gen.cue")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("schema/grids_gen.cue is stale: run go generate ./pkg/params")
	}
}
