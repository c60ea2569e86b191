// Package hf exports a study as a Hugging Face dataset directory, ready for
// `huggingface-cli upload` or `datasets.load_dataset(path)`:
//
//	<out>/README.md                              dataset card: YAML header + prose
//	<out>/data/train-00000-of-00001.parquet      config "default": the parquet exporter's rows
//	<out>/runs/train-00000-of-00001.parquet      config "runs": per-run statistics
//	<out>/timeseries/train-00000-of-00001.parquet config "timeseries": every window's samples
//
// Each Parquet footer carries the key "huggingface" with
// {"info": {"features": {...}}} as the datasets library writes it
// (Features.arrow_schema): one entry per column, in column order, scalars as
// {"dtype": ..., "_type": "Value"} and lists in the "Sequence" form both
// datasets 3.x and 4.x read (see Features). The card's dataset_info
// mirrors it in the YAML list form (name/dtype, name/sequence).
package hf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/llenergymeasure/llem/exporters"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// DataFile is the per-cycle Parquet path inside the dataset directory,
// following push_to_hub's data/{split}-{index:05d}-of-{num_shards:05d}.parquet.
const DataFile = "data/train-00000-of-00001.parquet"

// RunsFile is the per-run statistics table, published as the config "runs".
const RunsFile = "runs/train-00000-of-00001.parquet"

// DefaultLicense is written to the card unless Params.License says otherwise.
const DefaultLicense = "cc-by-4.0"

// Dtype is the datasets Value dtype of a column kind.
func Dtype(k pq.Kind) string {
	switch k {
	case pq.Int64:
		return "int64"
	case pq.Float64:
		return "float64"
	case pq.Bool:
		return "bool"
	case pq.Timestamp:
		return "timestamp[us, tz=UTC]"
	}
	return "string"
}

// Features returns the "huggingface" metadata value for cols:
// {"info": {"features": {...}}}, keys in column order. Lists are written
// as {"feature": ..., "length": -1, "_type": "Sequence"}: datasets 3.x
// looks "_type" up among its classes (it has no "List") and reads
// "length"; datasets 4.x still maps "Sequence" to its List ("backward
// compatibility" in features.generate_from_dict). "List" alone fails on 3.x.
func Features(cols []pq.Column) string {
	var b bytes.Buffer
	b.WriteString(`{"info": {"features": {`)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		name, _ := json.Marshal(c.Name)
		b.Write(name)
		b.WriteString(": ")
		if c.Kind == pq.StringList {
			b.WriteString(`{"feature": {"dtype": "string", "_type": "Value"}, "length": -1, "_type": "Sequence"}`)
			continue
		}
		fmt.Fprintf(&b, `{"dtype": %q, "_type": "Value"}`, Dtype(c.Kind))
	}
	b.WriteString("}}}")
	return b.String()
}

// Exporter is the hf-datasets exporter.
type Exporter struct {
	p       exporters.Params
	license string
}

// New returns an hf exporter; Params.Dest is the output directory and
// Params.License the card's licence (DefaultLicense when empty).
func New(p exporters.Params) (exporters.Exporter, error) {
	if p.Dest == "" || p.Dest == "-" {
		return nil, errs.BadInput(fmt.Errorf("hf-datasets export needs an output directory"), "pass --out DIR (it will hold README.md, data/ and runs/)")
	}
	license := p.License
	if license == "" {
		license = DefaultLicense
	}
	return &Exporter{p: p, license: license}, nil
}

var _ exporters.Exporter = (*Exporter)(nil)

func init() {
	exporters.Register(exporters.Format{Name: "hf-datasets", New: New, DefaultDest: func(slug string) string { return slug + "-hf" }})
}

// Description says what will be written.
func (e *Exporter) Description() string {
	return fmt.Sprintf("Hugging Face dataset directory (README.md card + %s, per-run statistics %s) at %s", DataFile, RunsFile, e.p.Dest)
}

// table is one config's Parquet file and the sizes the card states.
type table struct {
	name, path string
	cols       []pq.Column
	data       []byte
	rows       int
	// numBytes is the decoded size: the sum of the row groups' uncompressed
	// column data (the Parquet footer's total_byte_size).
	numBytes int64
}

// Export writes the dataset directory.
func (e *Exporter) Export(ctx context.Context, s *exporters.Set) error {
	recs := s.Records()
	runs, sums := s.Runs()
	cycle := table{name: "default", path: DataFile, cols: pq.ColumnsFor(recs), rows: len(recs)}
	var buf bytes.Buffer
	if err := pq.Write(ctx, &buf, recs, e.p.Carbon, map[string]string{"huggingface": Features(cycle.cols)}); err != nil {
		return err
	}
	cycle.data = buf.Bytes()
	perRun := table{name: "runs", path: RunsFile, cols: pq.RunColumnsFor(runs), rows: len(runs)}
	var rbuf bytes.Buffer
	if err := pq.WriteRuns(ctx, &rbuf, runs, map[string]string{"huggingface": Features(perRun.cols)}); err != nil {
		return err
	}
	perRun.data = rbuf.Bytes()
	tables := []*table{&cycle, &perRun}
	var tbuf bytes.Buffer
	n, err := writeTimeseries(ctx, s, &tbuf)
	if err != nil {
		return err
	}
	if n > 0 {
		tables = append(tables, &table{name: "timeseries", path: TimeseriesFile, cols: TimeseriesColumns, rows: n, data: tbuf.Bytes()})
	}
	for _, t := range tables {
		n, err := decodedBytes(t.data)
		if err != nil {
			return err
		}
		t.numBytes = n
	}
	for _, t := range tables {
		path := filepath.Join(e.p.Dest, filepath.FromSlash(t.path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return errs.BadInput(fmt.Errorf("create %s: %w", filepath.Dir(path), err), "check the --out path is writable")
		}
		if err := result.WriteFileAtomic(path, t.data); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	var all []table
	for _, t := range tables {
		all = append(all, *t)
	}
	card := Card(s, runs, sums, all, e.license)
	if err := result.WriteFileAtomic(filepath.Join(e.p.Dest, "README.md"), card); err != nil {
		return fmt.Errorf("write dataset card: %w", err)
	}
	return nil
}

// decodedBytes reads a Parquet file's footer for its uncompressed size.
func decodedBytes(data []byte) (int64, error) {
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("read back parquet footer: %w", err)
	}
	defer r.Close()
	var n int64
	for i := range r.NumRowGroups() {
		n += r.MetaData().RowGroup(i).TotalByteSize()
	}
	return n, nil
}

// intervalMethod says truthfully which interval method the CIs used: BCa,
// percentile (when every interval fell back), or BCa with a count of
// percentile fallbacks.
func intervalMethod(sums []*stats.StudySummary) string {
	var total, fallbacks int
	level := stats.DefaultLevel
	resamples := stats.DefaultResamples
	var seed uint64
	for _, sum := range sums {
		level, resamples, seed = sum.Methodology.ConfidenceLevel, sum.Methodology.Resamples, sum.Methodology.Seed
		for _, r := range sum.Runs {
			for _, m := range r.Metrics {
				if m.CI != nil {
					total++
					if m.CI.Method != stats.MethodBCa {
						fallbacks++
					}
				}
			}
		}
	}
	var method string
	switch {
	case total == 0:
		method = "no"
	case fallbacks == 0:
		method = "BCa"
	case fallbacks == total:
		method = "percentile (BCa was not possible for any interval: too few cycles or no variation; see each `*_ci_method`)"
	default:
		method = fmt.Sprintf("BCa, %d of %d intervals percentile where BCa was not possible (see each `*_ci_method`)", fallbacks, total)
	}
	return fmt.Sprintf("%.0f%% bootstrap confidence intervals of the mean, %d resamples, seed %d; method: %s", level*100, resamples, seed, method)
}

// runLabel names a run by its grid coordinates (sorted by dimension),
// else by backend / model / precision.
func runLabel(r *exporters.RunRow) string {
	var m map[string]json.RawMessage
	if len(r.Coordinates) > 0 && json.Unmarshal(r.Coordinates, &m) == nil && len(m) > 0 {
		parts := make([]string, 0, len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			var v bytes.Buffer
			if json.Compact(&v, m[k]) != nil {
				v.Reset()
				v.Write(m[k])
			}
			parts = append(parts, k+"="+strings.Trim(v.String(), `"`))
		}
		return strings.Join(parts, ", ")
	}
	return r.Label()
}

func writeFeatures(b *strings.Builder, cols []pq.Column) {
	for _, c := range cols {
		fmt.Fprintf(b, "  - name: %s\n", c.Name)
		if c.Kind == pq.StringList {
			b.WriteString("    sequence: string\n")
		} else {
			fmt.Fprintf(b, "    dtype: %s\n", yamlString(Dtype(c.Kind)))
		}
	}
}

// Card renders the dataset card: YAML header (configs, dataset_info with
// sizes, license, tags) and prose on methodology, hardware and licence.
// It depends only on the studies and the written tables, never on map
// order or the time of export: the same study gives the same bytes.
func Card(s *exporters.Set, runs []exporters.RunRow, sums []*stats.StudySummary, tables []table, license string) []byte {
	var b strings.Builder
	recs := s.Records()
	n := len(recs)
	b.WriteString("---\n")
	fmt.Fprintf(&b, "license: %s\n", license)
	fmt.Fprintf(&b, "pretty_name: %s\n", yamlString("llem energy measurements: "+s.Name()))
	b.WriteString("tags:\n- energy\n- llm-inference\n- benchmark\n- llem\n")
	fmt.Fprintf(&b, "size_categories:\n- %s\n", sizeCategory(n))
	b.WriteString("configs:\n")
	for i, t := range tables {
		fmt.Fprintf(&b, "- config_name: %s\n", t.name)
		if i == 0 {
			b.WriteString("  default: true\n")
		}
		fmt.Fprintf(&b, "  data_files:\n  - split: train\n    path: %s/train-*\n", strings.Split(t.path, "/")[0])
	}
	b.WriteString("dataset_info:\n")
	for _, t := range tables {
		fmt.Fprintf(&b, "- config_name: %s\n  features:\n", t.name)
		writeFeatures(&b, t.cols)
		fmt.Fprintf(&b, "  splits:\n  - name: train\n    num_bytes: %d\n    num_examples: %d\n", t.numBytes, t.rows)
		fmt.Fprintf(&b, "  download_size: %d\n  dataset_size: %d\n", len(t.data), t.numBytes)
	}
	b.WriteString("---\n\n")

	fmt.Fprintf(&b, "# llem energy measurements: %s\n\n", s.Name())
	fmt.Fprintf(&b, "Energy and efficiency of LLM inference measured with [llem](https://github.com/llenergymeasure/llem) %s. "+
		"Config `default`: one row per run per cycle (%d rows, %d runs); config `runs`: one row per run with means, confidence intervals and n "+
		"(`load_dataset(path, \"runs\")`); config `timeseries`, when the study sampled one: every sample of every measured window, "+
		"joined to the default rows on (`study`, `run_id`, `cycle`), with `t_utc` for aligning with other tools' logs "+
		"(the default config's `timeseries` column is the file's path inside the study directory, not in this dataset). Column meanings are in llem's docs/results.md; every grid dimension the study varied is a typed `coord_*` column.\n\n",
		llemVersion(s), n, countRuns(recs))

	b.WriteString("## Methodology\n\n")
	fmt.Fprintf(&b, "- Each run (one effective configuration, `run_id`) was repeated in cycles; rows with `status = ok` are valid. "+
		"Per-run statistics: mean across valid cycles, %s.\n", intervalMethod(sums))
	b.WriteString("- Energy is measured by the llem process, not the inference worker, over a measured window that excludes model load and warmup. " +
		"`energy_raw_j` is the window's energy over all measured devices; `energy_adjusted_j` subtracts the idle baseline power × window; " +
		"efficiency ratios name their basis in `efficiency_basis`.\n")
	b.WriteString("- `energy_method` says how energy was obtained (`counter`: hardware energy counter; `power-integration`; `estimate-tdp`: an estimate, not a measurement). " +
		"Rows whose `flags` are non-empty carry machine-readable reasons for caution. Values a failed run never measured are null, not 0.\n")
	b.WriteString("- `co2_g` is derived, not measured: energy × grid carbon intensity × PUE, with `carbon_method` and `carbon_source`; it is null when no intensity was configured.\n")
	for _, sum := range sums {
		for _, w := range sum.Warnings {
			fmt.Fprintf(&b, "- Warning: %s.\n", w)
		}
	}
	b.WriteString("\n### Per-run summary\n\n")
	b.WriteString("| study | run | coordinates | valid cycles | J / output token (mean [CI]) | output tokens/s |\n|---|---|---|---|---|---|\n")
	for i := range runs {
		r := &runs[i]
		fmt.Fprintf(&b, "| %s | `%s` | %s | %d/%d | %s | %s |\n", r.Study, r.RunID, runLabel(r), r.ValidCount, r.Cycles,
			stats.FormatWithCI(r.Metric("energy_per_output_token_j")), stats.FormatWithCI(r.Metric("output_tokens_per_sec")))
	}

	b.WriteString("\n## Hardware and software\n\n")
	for _, line := range hardware(recs) {
		fmt.Fprintf(&b, "- %s\n", line)
	}
	b.WriteString("- The full environment snapshot of every row is in the `environment` column (JSON), and the effective configuration in `config` (JSON).\n")

	b.WriteString("\n## Licence\n\n")
	fmt.Fprintf(&b, "The measurements are released under `%s` (set with `llem results export --license`; edit the `license:` field above before uploading if your institution requires another). "+
		"Model weights and prompts used to produce them keep their own licences.\n", license)
	return []byte(b.String())
}

func hardware(recs []*result.Record) []string {
	devices := map[string]bool{}
	sensors := map[string]bool{}
	backends := map[string]bool{}
	for _, r := range recs {
		for _, d := range r.Energy.PerDevice {
			devices[d.Kind+": "+d.Name] = true
		}
		if r.Energy.Sensor != "" {
			sensors[r.Energy.Sensor+" ("+r.Energy.Method+")"] = true
		}
		v := r.Backend
		if r.Worker != nil {
			// Sorted: map order would list one backend several times.
			for _, k := range slices.Sorted(maps.Keys(r.Worker.Versions)) {
				v += fmt.Sprintf(" %s=%s", k, r.Worker.Versions[k])
			}
		}
		backends[v] = true
	}
	return []string{
		"Measured devices: " + joinKeys(devices),
		"Energy sensors: " + joinKeys(sensors),
		"Backends: " + joinKeys(backends),
	}
}

func joinKeys(m map[string]bool) string {
	if len(m) == 0 {
		return "none recorded"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, "; ")
}

func llemVersion(s *exporters.Set) string {
	for _, st := range s.Studies {
		if len(st.Records) > 0 && st.Records[0].Llem.Version != "" {
			return st.Records[0].Llem.Version
		}
		if st.Manifest.LlemVersion != "" {
			return st.Manifest.LlemVersion
		}
	}
	return ""
}

func countRuns(recs []*result.Record) int {
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.Study+"\x00"+r.RunID] = true
	}
	return len(ids)
}

func sizeCategory(n int) string {
	switch {
	case n < 1000:
		return "n<1K"
	case n < 10000:
		return "1K<n<10K"
	case n < 100000:
		return "10K<n<100K"
	case n < 1000000:
		return "100K<n<1M"
	}
	return "1M<n<10M"
}

// yamlString quotes s for YAML only when needed (the timestamp dtype
// contains "[", ", "), like the cards push_to_hub writes.
func yamlString(s string) string {
	if s != "" && !strings.ContainsAny(s, ":[]{},#&*!|>'\"%@`") {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}
