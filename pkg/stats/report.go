package stats

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// Reporter renders a summary to w (vegeta's reporter shape).
type Reporter func(w io.Writer) error

// NewJSONReporter renders s as indented JSON.
func NewJSONReporter(s *StudySummary) Reporter {
	return func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("encode summary: %w", err)
		}
		return nil
	}
}

// TableColumns are the metrics the text table shows, with their headings.
var TableColumns = []struct{ Metric, Heading string }{
	{"energy_per_output_token_j", "J/OUT-TOKEN"},
	{"output_tokens_per_sec", "OUT-TOKENS/S"},
	{"energy_raw_j", "ENERGY J"},
	{"ttft_p50_ms", "TTFT P50 MS"},
	{"itl_p50_ms", "ITL P50 MS"},
}

// NewTextReporter renders s as a table: one line per run, each value as
// "mean [lower, upper]" with the CI, then the methodology and warnings.
func NewTextReporter(s *StudySummary) Reporter {
	return func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		head := []string{"RUN", "LABEL", "N"}
		cols := tableColumns(s)
		for _, c := range cols {
			head = append(head, c.Heading)
		}
		head = append(head, "FLAGS")
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		varied := VariedParams(s.Runs)
		for i := range s.Runs {
			r := &s.Runs[i]
			label := r.Label()
			if len(varied) > 0 && r.Name == "" { // a name already tells runs apart
				flat := Flatten(r.Config)
				for _, p := range varied {
					v, ok := flat[p]
					if !ok {
						v = "-"
					}
					label += " " + p[strings.LastIndex(p, ".")+1:] + "=" + strings.Trim(v, `"`)
				}
			}
			row := []string{shortID(r.RunID), label, fmt.Sprintf("%d/%d", r.ValidCount, r.Cycles)}
			for _, c := range cols {
				row = append(row, FormatWithCI(r.Metric(c.Metric)))
			}
			flags := strings.Join(r.Flags, ",")
			if flags == "" {
				flags = "-"
			}
			row = append(row, flags)
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
		m := s.Methodology
		fmt.Fprintf(w, "\n%s; %s; %.0f%% %s CI, %d resamples, seed %d", m.Mode, m.Statistic, m.ConfidenceLevel*100, m.CIMethod, m.Resamples, m.Seed)
		if m.CIFallbacks > 0 {
			fmt.Fprintf(w, " (%d CIs fell back to percentile/none: see --json)", m.CIFallbacks)
		}
		fmt.Fprintln(w)
		for _, warn := range s.Warnings {
			fmt.Fprintln(w, "warning:", warn)
		}
		for i := range s.Runs {
			for _, warn := range s.Runs[i].Warnings {
				fmt.Fprintf(w, "warning: %s: %s\n", shortID(s.Runs[i].RunID), warn)
			}
		}
		return nil
	}
}

// QualityColumns are shown after TableColumns when some run was scored.
var QualityColumns = []struct{ Metric, Heading string }{
	{MetricQuality, "QUALITY"},
	{MetricQualityPerJoule, "QUALITY/J"},
}

// tableColumns is TableColumns, plus QualityColumns when a run has a score.
func tableColumns(s *StudySummary) []struct{ Metric, Heading string } {
	cols := slices.Clone(TableColumns)
	for i := range s.Runs {
		if s.Runs[i].Metric(MetricQuality) != nil {
			return append(cols, QualityColumns...)
		}
	}
	return cols
}

// FormatWithCI renders "mean [lower, upper]", "mean" without a CI, or "-".
func FormatWithCI(m *MetricStats) string {
	if m == nil || m.N == 0 {
		return "-"
	}
	if m.CI == nil || m.CI.Method == MethodNone || math.IsNaN(m.CI.Lower) {
		return Num(m.Mean)
	}
	return fmt.Sprintf("%s [%s, %s]", Num(m.Mean), Num(m.CI.Lower), Num(m.CI.Upper))
}

// Num formats a measurement with 4 significant digits.
func Num(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return fmt.Sprintf("%.4g", v)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// VariedParams returns the config leaves (dotted paths) whose values differ
// between runs, excluding those already in the label (model, backend,
// precision), sorted: the "varied params" that tell runs apart.
func VariedParams(runs []RunStats) []string {
	if len(runs) < 2 {
		return nil
	}
	flats := make([]map[string]string, len(runs))
	keys := map[string]bool{}
	for i := range runs {
		flats[i] = Flatten(runs[i].Config)
		for k := range flats[i] {
			keys[k] = true
		}
	}
	var out []string
	for k := range keys {
		if k == "model" || k == "backend" || k == "precision" {
			continue
		}
		first, ok0 := flats[0][k]
		for _, f := range flats[1:] {
			if v, ok := f[k]; ok != ok0 || v != first {
				out = append(out, k)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
