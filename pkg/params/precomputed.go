package params

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/llenergymeasure/llem/schema"
)

// precomputed.json holds what `llem params` and completion queries ask for
// (the backends, their coverage targets and their reports), computed from
// the schema files whose hash it records. Parsing and compiling the schema
// costs 25–40 ms of CPU; reading this costs well under one, which is what
// keeps `llem params` and a completion query near the binary's bare
// start-up. It is used only while the schema files (embedded and
// registered) hash to the recorded value, so a stale file is never read,
// and TestPrecomputedIsCurrent fails until it is regenerated:
//
//	go generate ./pkg/params
//
//go:generate go test -run TestPrecomputedIsCurrent -update .
//go:embed precomputed.json
var precomputedJSON []byte

// precomputedFile is precomputed.json's shape. Param values typed any
// (defaults and enum options) are stored with their Go type, so a
// decoded report equals the compiled one exactly.
type precomputedFile struct {
	SchemaSHA256 string             `json:"schema_sha256"`
	Backends     []string           `json:"backends"`
	Targets      map[string]float64 `json:"targets"`
	Reports      []storedReport     `json:"reports"`
}

type storedReport struct {
	Report
	Types map[string]storedTypes `json:"value_types,omitempty"` // by param path
}

type storedTypes struct {
	Default string   `json:"default,omitempty"`
	Options []string `json:"options,omitempty"`
}

// schemaHash is the SHA-256 of the schema files, names and contents in
// name order.
func schemaHash(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

type fastData struct {
	names   []string
	targets map[string]float64
	raw     map[string]json.RawMessage // by backend, decoded on first use
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
	raw, ok := d.raw[backend]
	if !ok {
		return nil, unknownBackend(backend)
	}
	r, err := decodeReport(raw)
	if err != nil {
		return nil, fmt.Errorf("precomputed.json: %s: %w", backend, err)
	}
	d.reports[backend] = r
	return r, nil
}

// fast is precomputed.json when it matches this binary's schema files,
// else nil (the callers then compile the schema).
var fast = sync.OnceValue(func() *fastData {
	d, err := decodePrecomputed(precomputedJSON, schemaHash(schema.Files()))
	if err != nil {
		return nil
	}
	return d
})

func decodePrecomputed(b []byte, wantHash string) (*fastData, error) {
	var f struct {
		SchemaSHA256 string             `json:"schema_sha256"`
		Backends     []string           `json:"backends"`
		Targets      map[string]float64 `json:"targets"`
		Reports      []json.RawMessage  `json:"reports"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if f.SchemaSHA256 != wantHash {
		return nil, fmt.Errorf("precomputed.json is for schema %s, this binary's is %s", f.SchemaSHA256, wantHash)
	}
	d := &fastData{names: f.Backends, targets: f.Targets, raw: map[string]json.RawMessage{}, reports: map[string]*Report{}}
	for _, raw := range f.Reports {
		var head struct {
			Backend string `json:"backend"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, err
		}
		d.raw[head.Backend] = raw
	}
	return d, nil
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

// encodePrecomputed renders the compiled schema's data as precomputed.json.
func encodePrecomputed(hash string, names []string, targets map[string]float64, reports []*Report) ([]byte, error) {
	f := precomputedFile{SchemaSHA256: hash, Backends: names, Targets: targets}
	for _, r := range reports {
		sr := storedReport{Report: *r, Types: map[string]storedTypes{}}
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
		f.Reports = append(f.Reports, sr)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // bounds read ">=1 & <=4096" in the file
	enc.SetIndent("", " ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
