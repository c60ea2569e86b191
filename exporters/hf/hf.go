// Package hf exports a study as a Hugging Face dataset directory, ready for
// `huggingface-cli upload` or `datasets.load_dataset(path)`:
//
//	<out>/README.md                              dataset card: YAML header + prose
//	<out>/data/train-00000-of-00001.parquet      the parquet exporter's rows
//
// The Parquet footer carries the key "huggingface" with
// {"info": {"features": {...}}} exactly as the datasets library writes it
// (Features.arrow_schema): one entry per column, in column order, scalars as
// {"dtype": ..., "_type": "Value"} and lists as {"feature": ..., "_type":
// "List"} (datasets ≥ 4.0; older readers know "Sequence"). The card's
// dataset_info.features mirrors it in the YAML list form (name/dtype,
// name/list). See ../shared/reference/anchors.md §7.
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

	"github.com/llenergymeasure/llem/exporters"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// DataFile is the Parquet path inside the dataset directory, following
// push_to_hub's data/{split}-{index:05d}-of-{num_shards:05d}.parquet.
const DataFile = "data/train-00000-of-00001.parquet"

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

// Features returns the "huggingface" metadata value for the export's
// columns: {"info": {"features": {...}}}, keys in column order.
func Features() string {
	var b bytes.Buffer
	b.WriteString(`{"info": {"features": {`)
	for i, c := range pq.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		name, _ := json.Marshal(c.Name)
		b.Write(name)
		b.WriteString(": ")
		if c.Kind == pq.StringList {
			b.WriteString(`{"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"}`)
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
		return nil, errs.BadInput(fmt.Errorf("hf-datasets export needs an output directory"), "pass --out DIR (it will hold README.md and data/)")
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
	return fmt.Sprintf("Hugging Face dataset directory (README.md card + %s) at %s", DataFile, e.p.Dest)
}

// Export writes the dataset directory.
func (e *Exporter) Export(ctx context.Context, s *result.Study) error {
	data := filepath.Join(e.p.Dest, filepath.FromSlash(DataFile))
	if err := os.MkdirAll(filepath.Dir(data), 0o755); err != nil {
		return errs.BadInput(fmt.Errorf("create %s: %w", filepath.Dir(data), err), "check the --out path is writable")
	}
	var buf bytes.Buffer
	if err := pq.Write(ctx, &buf, s.Records, e.p.Carbon, map[string]string{"huggingface": Features()}); err != nil {
		return err
	}
	if err := result.WriteFileAtomic(data, buf.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", data, err)
	}
	card := Card(s, int64(buf.Len()), e.license)
	if err := result.WriteFileAtomic(filepath.Join(e.p.Dest, "README.md"), card); err != nil {
		return fmt.Errorf("write dataset card: %w", err)
	}
	return nil
}

// Card renders the dataset card: YAML header (configs, dataset_info,
// license, tags) and prose on methodology, hardware and licence.
func Card(s *result.Study, parquetBytes int64, license string) []byte {
	var b strings.Builder
	n := len(s.Records)
	b.WriteString("---\n")
	fmt.Fprintf(&b, "license: %s\n", license)
	fmt.Fprintf(&b, "pretty_name: %s\n", yamlString("llem energy measurements: "+s.Name()))
	b.WriteString("tags:\n- energy\n- llm-inference\n- benchmark\n- llem\n")
	fmt.Fprintf(&b, "size_categories:\n- %s\n", sizeCategory(n))
	b.WriteString("configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n")
	b.WriteString("dataset_info:\n  config_name: default\n  features:\n")
	for _, c := range pq.Columns {
		fmt.Fprintf(&b, "  - name: %s\n", c.Name)
		if c.Kind == pq.StringList {
			b.WriteString("    list: string\n")
		} else {
			fmt.Fprintf(&b, "    dtype: %s\n", yamlString(Dtype(c.Kind)))
		}
	}
	fmt.Fprintf(&b, "  splits:\n  - name: train\n    num_examples: %d\n", n)
	fmt.Fprintf(&b, "  download_size: %d\n", parquetBytes)
	b.WriteString("---\n\n")

	fmt.Fprintf(&b, "# llem energy measurements: %s\n\n", s.Name())
	fmt.Fprintf(&b, "Energy and efficiency of LLM inference measured with [llem](https://github.com/llenergymeasure/llem) %s. "+
		"One row per run per cycle (%d rows, %d runs); column meanings are in llem's docs/results.md.\n\n", llemVersion(s), n, countRuns(s))

	b.WriteString("## Methodology\n\n")
	sum := stats.Summarise(s.Records, stats.SummaryOptions{Mode: stats.StudyMode(s.Summary)})
	m := sum.Methodology
	fmt.Fprintf(&b, "- Each run (one effective configuration, `run_id`) was repeated in cycles; rows with `status = ok` are valid. "+
		"Per-run statistics: %s, %.0f%% %s bootstrap confidence intervals (%d resamples, seed %d).\n",
		m.Statistic, m.ConfidenceLevel*100, strings.ToUpper(m.CIMethod), m.Resamples, m.Seed)
	b.WriteString("- Energy is measured by the llem process, not the inference worker, over a measured window that excludes model load and warmup. " +
		"`energy_raw_j` is the window's energy over all measured devices; `energy_adjusted_j` subtracts the idle baseline power × window; " +
		"efficiency ratios name their basis in `efficiency_basis`.\n")
	b.WriteString("- `energy_method` says how energy was obtained (`counter`: hardware energy counter; `power-integration`; `estimate-tdp`: an estimate, not a measurement). " +
		"Rows whose `flags` are non-empty carry machine-readable reasons for caution.\n")
	b.WriteString("- `co2_g` is derived, not measured: energy × grid carbon intensity × PUE, with `carbon_method` and `carbon_source`; it is null when no intensity was configured.\n")
	if len(sum.Warnings) > 0 {
		for _, w := range sum.Warnings {
			fmt.Fprintf(&b, "- Warning: %s.\n", w)
		}
	}
	b.WriteString("\n### Per-run summary\n\n")
	b.WriteString("| run | label | valid cycles | J / output token (mean [95% CI]) | output tokens/s |\n|---|---|---|---|---|\n")
	for i := range sum.Runs {
		r := &sum.Runs[i]
		fmt.Fprintf(&b, "| `%s` | %s | %d/%d | %s | %s |\n", r.RunID, r.Label(), r.ValidCount, r.Cycles,
			stats.FormatWithCI(r.Metric("energy_per_output_token_j")), stats.FormatWithCI(r.Metric("output_tokens_per_sec")))
	}

	b.WriteString("\n## Hardware and software\n\n")
	for _, line := range hardware(s) {
		fmt.Fprintf(&b, "- %s\n", line)
	}
	b.WriteString("- The full environment snapshot of every row is in the `environment` column (JSON), and the effective configuration in `config` (JSON).\n")

	b.WriteString("\n## Licence\n\n")
	fmt.Fprintf(&b, "The measurements are released under `%s` (set with `llem results export --license`; edit the `license:` field above before uploading if your institution requires another). "+
		"Model weights and prompts used to produce them keep their own licences.\n", license)
	return []byte(b.String())
}

func hardware(s *result.Study) []string {
	devices := map[string]bool{}
	sensors := map[string]bool{}
	backends := map[string]bool{}
	for _, r := range s.Records {
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

func llemVersion(s *result.Study) string {
	if len(s.Records) > 0 && s.Records[0].Llem.Version != "" {
		return s.Records[0].Llem.Version
	}
	return s.Manifest.LlemVersion
}

func countRuns(s *result.Study) int {
	ids := map[string]bool{}
	for _, r := range s.Records {
		ids[r.RunID] = true
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
