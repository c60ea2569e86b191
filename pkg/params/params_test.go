package params

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/schema"
)

func mustSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	return s
}

// realArgs reads testdata/backend_args.txt: backend → set of TARGET.ARG.
func realArgs(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open("testdata/backend_args.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, arg, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		if out[b] == nil {
			out[b] = map[string]bool{}
		}
		out[b][strings.TrimSpace(arg)] = true
	}
	return out
}

var argSyntax = regexp.MustCompile(`^[a-z_]+\.([a-z_][a-z0-9_]*|[A-Z][A-Z0-9_]*)(\.[a-z_][a-z0-9_]*)*$`)

// TestMappingsAreRealArguments is issue 7's check: every first-class param
// of every backend maps to a real backend argument name, none is empty and
// no two params map to the same argument.
func TestMappingsAreRealArguments(t *testing.T) {
	real := realArgs(t)
	for _, b := range BackendNames() {
		ps, err := List(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 {
			t.Fatalf("%s: no params", b)
		}
		seenArg := map[string]string{}
		seenPath := map[string]bool{}
		for _, p := range ps {
			m := p.Mapping.String()
			if p.Mapping.Backend != b || p.Mapping.Target == "" || p.Mapping.Arg == "" {
				t.Errorf("%s: bad mapping %+v", p.Path, p.Mapping)
			}
			if !argSyntax.MatchString(m) {
				t.Errorf("%s: mapping %q is not TARGET.ARG syntax", p.Path, m)
			}
			if !real[b][m] {
				t.Errorf("%s: maps to %s, which is not a known %s argument (testdata/backend_args.txt)", p.Path, m, b)
			}
			if other, dup := seenArg[m]; dup {
				t.Errorf("%s and %s both map to %s", other, p.Path, m)
			}
			seenArg[m] = p.Path
			if seenPath[p.Path] {
				t.Errorf("duplicate path %s", p.Path)
			}
			seenPath[p.Path] = true
			if p.Doc == "" {
				t.Errorf("%s: no doc comment", p.Path)
			}
			if p.Type == "" || p.Schema == "" {
				t.Errorf("%s: no type", p.Path)
			}
			// An optional param must say what the backend does without it.
			if p.Optional && p.Default == nil && p.BackendDefault == "" {
				t.Errorf("%s: optional without default=\"…\" in its attribute", p.Path)
			}
			if p.Optional && p.Default != nil {
				t.Errorf("%s: optional field with a concrete default %v", p.Path, p.Default)
			}
		}
	}
}

// Arguments filled from shared experiment fields are real arguments too,
// and name a shared field of the experiment.
func TestSharedArgs(t *testing.T) {
	real := realArgs(t)
	shared := regexp.MustCompile(`^(model|precision|random_seed|max_output_tokens|decoder\.[a-z_]+)$`)
	for _, b := range BackendNames() {
		r, err := mustSchema(t).Report(b)
		if err != nil {
			t.Fatal(err)
		}
		if b != "native" && len(r.SharedArgs) == 0 {
			t.Errorf("%s: no shared args", b)
		}
		for _, sh := range r.SharedArgs {
			if !real[b][sh.Arg] {
				t.Errorf("%s: shared arg %s is not a known argument", b, sh.Arg)
			}
			if !shared.MatchString(sh.From) {
				t.Errorf("%s: shared arg %s comes from %q, not a shared experiment field", b, sh.Arg, sh.From)
			}
		}
	}
}

func TestCoverageMeetsTargets(t *testing.T) {
	for _, b := range BackendNames() {
		c, err := CoverageOf(b)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{"pytorch": 0.95, "vllm": 0.90, "tensorrt": 0.95}[b]
		if c.Target != want {
			t.Errorf("%s: target %v, want %v", b, c.Target, want)
		}
		if !c.Met() || c.Ratio < want {
			t.Errorf("%s: coverage %.3f below target %.2f (%d first-class, %d missing)", b, c.Ratio, want, c.FirstClass, c.Missing)
		}
		ps, _ := List(b)
		km, _ := KnownMissing(b)
		if c.FirstClass != len(ps) || c.Missing != len(km) {
			t.Errorf("%s: coverage counts %+v disagree with %d params, %d missing", b, c, len(ps), len(km))
		}
		if b != "native" && len(km) == 0 {
			t.Errorf("%s: an empty known-missing list is not credible for a Python backend", b)
		}
	}
}

// Known-missing arguments must really be missing: not mapped by any param.
func TestKnownMissingAreNotFirstClass(t *testing.T) {
	real := realArgs(t)
	for _, b := range BackendNames() {
		ps, _ := List(b)
		mapped := map[string]bool{}
		for _, p := range ps {
			mapped[p.Mapping.String()] = true
		}
		km, _ := KnownMissing(b)
		for _, m := range km {
			if mapped[m.Arg] {
				t.Errorf("%s: %q is listed as missing but %s is first-class", b, m.Name, m.Arg)
			}
			if !real[b][m.Arg] {
				t.Errorf("%s: known-missing arg %s is not a known argument", b, m.Arg)
			}
			if m.Why == "" || m.Name == "" {
				t.Errorf("%s: known-missing entry %+v incomplete", b, m)
			}
		}
	}
}

func TestParamDetails(t *testing.T) {
	s := mustSchema(t)
	find := func(path string) Param {
		b, _, _ := strings.Cut(path, ".")
		r, err := s.Report(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Params {
			if p.Path == path {
				return p
			}
		}
		t.Fatalf("no param %s", path)
		return Param{}
	}
	tests := []struct {
		path     string
		typ      string
		options  []any
		def      any
		bounds   string
		optional bool
		backDef  string
		mapping  string
	}{
		{"pytorch.batch_size", "int", nil, int64(1), ">=1 & <=4096", false, "", "llem.batch_size"},
		{"pytorch.batching", "enum", []any{"fixed", "sorted"}, "fixed", "", false, "", "llem.batching"},
		{"pytorch.bnb_4bit_quant_type", "enum", []any{"nf4", "fp4"}, nil, "", true, "fp4", "from_pretrained.quantization_config.bnb_4bit_quant_type"},
		{"pytorch.stop_strings", "list", nil, nil, `each string & !=""`, true, "none", "generate.stop_strings"},
		{"vllm.engine.block_size", "enum", []any{int64(1), int64(8), int64(16), int64(32), int64(64), int64(128)}, nil, "", true, "16 on CUDA", "engine.block_size"},
		{"vllm.engine.gpu_memory_utilization", "number", nil, nil, ">0 & <=1", true, "0.9", "engine.gpu_memory_utilization"},
		{"vllm.engine.speculative_model", "string", nil, nil, `!=""`, true, "off", "engine.speculative_config.model"},
		{"vllm.sampling.presence_penalty", "number", nil, nil, ">=-2 & <=2", true, "0.0", "sampling.presence_penalty"},
		{"vllm.beam_search.beam_width", "int", nil, nil, ">=1", false, "", "beam_search.beam_width"},
		{"vllm.engine.attention_backend", "string", nil, nil, `=~"^[A-Z][A-Z0-9_]*$"`, true, "none: chosen per GPU and model", "engine.attention_config.backend"},
		{"tensorrt.runtime", "enum", []any{"pytorch", "tensorrt"}, "pytorch", "", false, "", "llem.runtime"},
		{"tensorrt.free_gpu_memory_fraction", "number", nil, nil, ">0 & <=1", true, "0.9", "llm.kv_cache_config.free_gpu_memory_fraction"},
		{"tensorrt.sampling.max_tokens", "int", nil, nil, ">=1", true, "max_output_tokens (upstream 32)", "sampling.max_tokens"},
		{"native.threads", "int", nil, int64(0), ">=0 & <=1024", false, "", "engine.threads"},
		{"native.storage", "enum", []any{"fp32", "bf16"}, nil, "", true, "precision", "engine.storage"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := find(tt.path)
			if p.Type != tt.typ {
				t.Errorf("type %q, want %q", p.Type, tt.typ)
			}
			if !reflect.DeepEqual(p.Options, tt.options) {
				t.Errorf("options %#v, want %#v", p.Options, tt.options)
			}
			if !reflect.DeepEqual(p.Default, tt.def) {
				t.Errorf("default %#v, want %#v", p.Default, tt.def)
			}
			if p.Bounds != tt.bounds {
				t.Errorf("bounds %q, want %q", p.Bounds, tt.bounds)
			}
			if p.Optional != tt.optional {
				t.Errorf("optional %v, want %v", p.Optional, tt.optional)
			}
			if p.BackendDefault != tt.backDef {
				t.Errorf("backend default %q, want %q", p.BackendDefault, tt.backDef)
			}
			if p.Mapping.String() != tt.mapping {
				t.Errorf("mapping %q, want %q", p.Mapping, tt.mapping)
			}
		})
	}
}

func TestExtraTargets(t *testing.T) {
	want := map[string][]string{
		"pytorch":  {"from_pretrained", "generate", "compile", "tokenizer"},
		"vllm":     {"engine", "sampling", "beam_search", "env"},
		"tensorrt": {"llm", "sampling"},
		"native":   {"engine", "worker"},
	}
	s := mustSchema(t)
	for b, w := range want {
		r, _ := s.Report(b)
		if !reflect.DeepEqual(r.ExtraTargets, w) {
			t.Errorf("%s: extra targets %v, want %v", b, r.ExtraTargets, w)
		}
		// Every extra target must be a real mapping target of that backend.
		targets := map[string]bool{}
		for _, p := range r.Params {
			targets[p.Mapping.Target] = true
		}
		for _, x := range r.ExtraTargets {
			if b == "vllm" && x == "env" {
				continue // environment variables: no first-class param sets one any more (attention_backend is an engine argument)
			}
			if !targets[x] {
				t.Errorf("%s: extra target %q is no param's target", b, x)
			}
		}
	}
}

func TestUnknownBackend(t *testing.T) {
	if _, err := List("onnx"); err == nil || !strings.Contains(err.Error(), "pytorch, vllm, tensorrt, native") {
		t.Errorf("List(onnx) = %v, want error listing the backends", err)
	}
	if _, err := Reports("pytorch", "nope"); err == nil {
		t.Error("Reports(nope) succeeded")
	}
}

// A param without a mapping attribute is a schema bug that Compile rejects.
func TestCompileRejectsUnmappedField(t *testing.T) {
	src := map[string][]byte{}
	_, _, files, _, err := scanBackends(schema.Files())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range files {
		b, err := os.ReadFile("../../schema/" + n)
		if err != nil {
			t.Fatal(err)
		}
		src[n] = b
	}
	src["native.cue"] = []byte(strings.Replace(string(src["native.cue"]),
		"threads: *0 | int & >=0 & <=1024 @native(engine.threads)", "threads: *0 | int", 1))
	_, err = Compile(src)
	if err == nil || !strings.Contains(err.Error(), "native.threads: field has no @native(target.arg) mapping attribute") {
		t.Fatalf("Compile = %v, want unmapped-field error", err)
	}
	src["native.cue"] = []byte(strings.Replace(string(src["native.cue"]), "threads: *0 | int", "threads: *0 | int @native(threads)", 1))
	if _, err := Compile(src); err == nil || !strings.Contains(err.Error(), "is not target.arg") {
		t.Fatalf("Compile = %v, want not-target.arg error", err)
	}
}

// The embedded schema and the files on disk are the same bytes, so tests
// that read ../../schema exercise what ships.
func TestEmbeddedMatchesDisk(t *testing.T) {
	src := map[string][]byte{}
	_, _, files, _, err := scanBackends(schema.Files())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range files {
		b, err := os.ReadFile("../../schema/" + n)
		if err != nil {
			t.Fatal(err)
		}
		src[n] = b
	}
	s, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	d := mustSchema(t)
	for _, b := range BackendNames() {
		r1, _ := s.Report(b)
		r2, _ := d.Report(b)
		if !reflect.DeepEqual(r1, r2) {
			t.Errorf("%s: disk and embedded schema differ", b)
		}
	}
}
