package params

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"
	"sort"
	"sync"

	"github.com/llenergymeasure/llem/schema"
	"github.com/llenergymeasure/llem/tools/upstream"
)

// precomputed/ holds what `llem params` and completion queries ask for
// (the backends, their coverage targets and their reports), computed from
// the schema files whose checksum index.json records. Parsing and
// compiling the schema costs 25–40 ms of CPU; reading index.json and one
// backend's report costs well under one, which is what keeps `llem params`
// and a completion query near the binary's bare start-up. It is used only
// while the schema files (embedded and registered) match the recorded
// checksum, so a stale copy is never read, and TestPrecomputedIsCurrent
// fails until it is regenerated:
//
//	go generate ./pkg/params
//
//go:generate go test -run TestPrecomputedIsCurrent -update .
//go:embed precomputed
var precomputedFS embed.FS

// precomputedIndex is precomputed/index.json; each backend's report is
// precomputed/<backend>.json (a storedReport).
type precomputedIndex struct {
	SchemaChecksum string             `json:"schema_checksum"`
	Backends       []string           `json:"backends"`
	Targets        map[string]float64 `json:"targets"`
}

// storedReport is a Report whose values typed any (defaults and enum
// options) are stored with their Go type, so a decoded report equals the
// compiled one exactly.
type storedReport struct {
	Report
	Types map[string]storedTypes `json:"value_types,omitempty"` // by param path
	// Measured is MeasuredCoverage's result (null: no upstream snapshot).
	Measured *Measured `json:"measured"`
}

type storedTypes struct {
	Default string   `json:"default,omitempty"`
	Options []string `json:"options,omitempty"`
}

// sourceFiles are the files precomputed/ is derived from: the schema's
// (embedded and registered) and, under upstream/, the upstream snapshots
// and relevance verdicts of the measured coverage.
func sourceFiles() map[string][]byte {
	files := schema.Files()
	for p, b := range upstream.Files() {
		files["upstream/"+p] = b
	}
	return files
}

// schemaChecksum identifies the schema files: CRC-32C (hardware
// accelerated: start-up pays microseconds) over names, lengths and
// contents in name order. It detects a stale copy, not tampering.
func schemaChecksum(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	total := 0
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
		total += len(files[n])
	}
	return fmt.Sprintf("crc32c:%08x:%d:%d", h.Sum32(), len(names), total)
}

// precomputedExtra is what a report read from precomputed/ carries beside
// its fields: the results the compiled path computes on demand.
type precomputedExtra struct {
	measured *Measured
}

type fastData struct {
	names   []string
	targets map[string]float64
	fs      fs.FS // precomputed/: <backend>.json decoded on first use
	mu      sync.Mutex
	reports map[string]*Report
}

// report decodes backend's report on first use (`llem params native`
// decodes one report, a completion of backend names none).
func (d *fastData) report(backend string) (*Report, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.reports[backend]; ok {
		return r, nil
	}
	if !slices.Contains(d.names, backend) {
		return nil, unknownBackend(backend)
	}
	raw, err := fs.ReadFile(d.fs, backend+".json")
	if err != nil {
		return nil, fmt.Errorf("precomputed: %w", err)
	}
	r, err := decodeReport(raw)
	if err != nil {
		return nil, fmt.Errorf("precomputed %s.json: %w", backend, err)
	}
	d.reports[backend] = r
	return r, nil
}

// fast is precomputed/ when it matches this binary's schema files, else
// nil (the callers then compile the schema).
var fast = sync.OnceValue(func() *fastData {
	sub, err := fs.Sub(precomputedFS, "precomputed")
	if err != nil {
		return nil
	}
	d, err := openPrecomputed(sub, schemaChecksum(sourceFiles()))
	if err != nil {
		return nil
	}
	return d
})

// openPrecomputed reads the index of a precomputed directory written for
// the schema files with checksum want.
func openPrecomputed(dir fs.FS, want string) (*fastData, error) {
	b, err := fs.ReadFile(dir, "index.json")
	if err != nil {
		return nil, err
	}
	var idx precomputedIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	if idx.SchemaChecksum != want {
		return nil, fmt.Errorf("precomputed/ is for schema %s, this binary's is %s", idx.SchemaChecksum, want)
	}
	return &fastData{names: idx.Backends, targets: idx.Targets, fs: dir, reports: map[string]*Report{}}, nil
}

// decodeReport decodes one stored report, numbers back to their Go types.
func decodeReport(raw []byte) (*Report, error) {
	var sr storedReport
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&sr); err != nil {
		return nil, err
	}
	r := &sr.Report
	r.pre = &precomputedExtra{measured: sr.Measured}
	for j := range r.Params {
		p := &r.Params[j]
		ty := sr.Types[p.Path]
		v, err := typed(p.Default, ty.Default)
		if err != nil {
			return nil, fmt.Errorf("%s default: %w", p.Path, err)
		}
		p.Default = v
		for k := range p.Options {
			var t string
			if k < len(ty.Options) {
				t = ty.Options[k]
			}
			if p.Options[k], err = typed(p.Options[k], t); err != nil {
				return nil, fmt.Errorf("%s option %d: %w", p.Path, k, err)
			}
		}
	}
	return r, nil
}

// typed converts a decoded JSON value back to the Go type it was stored
// from (numbers decode as json.Number).
func typed(v any, ty string) (any, error) {
	n, isNum := v.(json.Number)
	switch {
	case !isNum:
		return v, nil
	case ty == "int64":
		return n.Int64()
	case ty == "float64":
		return n.Float64()
	}
	return nil, fmt.Errorf("number %s stored without its type (%q)", n, ty)
}

// encodePrecomputed renders the compiled schema's data as the files of
// precomputed/ (name → content).
func encodePrecomputed(checksum string, names []string, targets map[string]float64, reports []*Report) (map[string][]byte, error) {
	out := map[string][]byte{}
	var err error
	if out["index.json"], err = encodeJSON(precomputedIndex{SchemaChecksum: checksum, Backends: names, Targets: targets}); err != nil {
		return nil, err
	}
	for _, r := range reports {
		sr := storedReport{Report: *r, Types: map[string]storedTypes{}}
		m, measured, err := MeasuredCoverage(r)
		if err != nil {
			return nil, err
		}
		if measured {
			sr.Measured = &m
		}
		for _, p := range r.Params {
			var t storedTypes
			if p.Default != nil {
				t.Default = fmt.Sprintf("%T", p.Default)
			}
			for _, o := range p.Options {
				t.Options = append(t.Options, fmt.Sprintf("%T", o))
			}
			if t.Default != "" || len(t.Options) > 0 {
				sr.Types[p.Path] = t
			}
		}
		if out[r.Backend+".json"], err = encodeJSON(sr); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // bounds read ">=1 & <=4096" in the files
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
