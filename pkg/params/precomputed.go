package params

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"github.com/llenergymeasure/llem/pkg/params/precomputed"
)

// precomputed/ (package precomputed) holds what `llem params` and
// completion queries ask for (the backends, their coverage targets and
// their reports) and `llem params`' rendered output, computed from the
// schema files whose checksum its index.json records. Parsing and
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
	d, err := openPrecomputed(precomputed.FS(), precomputed.Checksum(precomputed.SourceFiles()))
	if err != nil {
		return nil
	}
	return d
})

// openPrecomputed reads the index of a precomputed directory written for
// the schema files with checksum want.
func openPrecomputed(dir fs.FS, want string) (*fastData, error) {
	idx, err := precomputed.Open(dir, want)
	if err != nil {
		return nil, err
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
	if out["index.json"], err = encodeJSON(precomputed.Index{SchemaChecksum: checksum, Backends: names, Targets: targets}); err != nil {
		return nil, err
	}
	// `llem params [backend] [--json]` as printed, for the start-up front.
	render := func(backend string, rs []*Report) error {
		var text, js bytes.Buffer
		if err := WriteText(&text, rs); err != nil {
			return err
		}
		if err := WriteJSON(&js, rs); err != nil {
			return err
		}
		out["rendered/"+precomputed.RenderedName(backend, false)] = text.Bytes()
		out["rendered/"+precomputed.RenderedName(backend, true)] = js.Bytes()
		return nil
	}
	if err := render("", reports); err != nil {
		return nil, err
	}
	for _, r := range reports {
		if err := render(r.Backend, []*Report{r}); err != nil {
			return nil, err
		}
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
