package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/report/reporttest"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// hostileName checks that values from the data are escaped everywhere.
const hostileName = `grid <script>alert("x")</script> & co`

// writeStudy writes a synthetic 2 × 2 grid study (precision × batch size,
// 5 cycles) whose records point at timeseries written by
// result.EncodeTimeseries: two GPUs, prefill/decode spans, temperature, a
// throttled stretch.
func writeStudy(t testing.TB, dir, name string, scale float64) string {
	t.Helper()
	var cfgs []map[string]any
	for _, p := range []string{"fp32", "bf16"} {
		for _, bs := range []int{1, 8} {
			cfgs = append(cfgs, map[string]any{"model": "random:llama-15m", "backend": "native", "precision": p, "n": 50,
				"native": map[string]any{"batch_size": bs, "threads": 2}})
		}
	}
	_, recs, err := exportertest.WriteStudy(dir, exportertest.Spec{Study: name, Runs: 4, Cycles: 5, Seed: 3, Configs: cfgs, EnergyScale: scale})
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		r := &recs[i]
		// Separate the configurations on both axes of the trade-off.
		bs := map[bool]float64{true: 8, false: 1}[strings.Contains(string(r.Config), `"batch_size":8`)]
		fp := map[bool]float64{true: 0.6, false: 1}[r.Precision == "bf16"]
		ept := *r.Efficiency.EnergyPerOutputTokenJ * fp / math.Sqrt(bs)
		r.Efficiency.EnergyPerOutputTokenJ = &ept
		r.Throughput.OutputTokensPerSec *= bs / fp
		r.Timeseries = result.TimeseriesPath(r.RunID, r.Cycle)
		start := r.Timing.WindowStartNs
		tl := &energy.Timeline{Sensor: "fake", IntervalNs: 1e8}
		for d := range 2 {
			ch := energy.ChannelTimeline{Channel: energy.Channel{ID: fmt.Sprintf("gpu:%d", d), Sensor: "fake", Kind: "gpu", Name: fmt.Sprintf("GPU %d (fake)", d), Index: d}}
			for k := -1; k <= 101; k++ {
				ts := float64(k) * 0.1
				s := energy.Sample{TNs: start + int64(k)*1e8, EnergyJ: math.NaN(), PowerW: 200 + 40*math.Sin(ts*2) + 10*float64(d),
					TempC: 50 + ts, SMClockMHz: math.NaN(), MemClockMHz: math.NaN(), UtilPct: math.NaN(), MemUsedBytes: -1, ThrottleReasons: 0}
				if ts > 6 && ts < 6.4 {
					s.ThrottleReasons = 0x20
				}
				ch.Samples = append(ch.Samples, s)
			}
			tl.Channels = append(tl.Channels, ch)
		}
		ph := []result.PhaseSpan{{Name: "prefill", StartNs: start, EndNs: start + 1e9}, {Name: "decode", StartNs: start + 1e9, EndNs: start + 48e8},
			{Name: "prefill", StartNs: start + 5e9, EndNs: start + 56e8}, {Name: "decode", StartNs: start + 56e8, EndNs: start + 99e8}}
		data, err := result.EncodeTimeseries(tl, result.TimeseriesMeta{Study: name, RunID: r.RunID, Cycle: r.Cycle, WindowStartNs: start, WindowEndNs: start + 1e10, Phases: ph})
		if err != nil {
			t.Fatal(err)
		}
		if err := result.WriteFileAtomic(filepath.Join(dir, r.Timeseries), data); err != nil {
			t.Fatal(err)
		}
		if err := result.WriteJSON(filepath.Join(dir, result.RecordPath(r.RunID, r.Cycle)), r); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func build(t testing.TB, dirs ...string) *Report {
	t.Helper()
	var ss []*Study
	for _, d := range dirs {
		s, err := Load(d, stats.Options{Resamples: 200})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	r, err := Build(ss, Options{MaxTimelines: 3})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// saveScreenshot keeps the screenshot in $LLEM_SCREENSHOT_DIR when set
// (to look at), else in the test's temp dir.
func saveScreenshot(t *testing.T, name string, png []byte) {
	dir := os.Getenv("LLEM_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

func TestReportModel(t *testing.T) {
	r := build(t, writeStudy(t, t.TempDir(), "model", 1))
	if r.Grouping.Category != "batch size" || r.Grouping.Series != "precision" {
		t.Errorf("grouping = %+v, want batch size on the axis, precision as colour", r.Grouping)
	}
	if len(r.Configs) != 4 || r.Configs[0].Category != "1" || r.Configs[3].Category != "8" {
		t.Errorf("configs not ordered by batch size: %v", r.Configs)
	}
	var names []string
	for _, f := range r.Figures {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "energy-per-token,phase-split,tradeoff,latency,cycles" {
		t.Errorf("figures = %s", got)
	}
	if len(r.Timelines) != 3 || r.TimelinesOmitted != 17 {
		t.Errorf("timelines = %d (omitted %d), want 3 (17)", len(r.Timelines), r.TimelinesOmitted)
	}
	if len(r.Problems) > 0 {
		t.Errorf("figure problems: %v", r.Problems)
	}
	dir := t.TempDir()
	paths, err := r.WriteFigures(dir)
	if err != nil || len(paths) != 2*(5+3) {
		t.Fatalf("WriteFigures: %d files, %v", len(paths), err)
	}
}

// TestReportInChromium renders a one-study and a two-study report in
// headless Chromium and checks what a reader would see.
func TestReportInChromium(t *testing.T) {
	reporttest.Chromium(t)
	root := t.TempDir()
	a := writeStudy(t, filepath.Join(root, "a"), hostileName, 1)
	b := writeStudy(t, filepath.Join(root, "b"), "second", 0.5)
	for _, tc := range []struct {
		name string
		dirs []string
		figs int
	}{{"one", []string{a}, 5 + 3}, {"two", []string{a, b}, 5 + 3}} {
		t.Run(tc.name, func(t *testing.T) {
			r := build(t, tc.dirs...)
			var buf bytes.Buffer
			if err := r.WriteHTML(&buf, "llem test"); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "report.html")
			if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			p := reporttest.Open(t, file)
			saveScreenshot(t, "report-"+tc.name+".png", p.Screenshot)
			if len(p.ConsoleErrors) > 0 {
				t.Errorf("console errors: %v", p.ConsoleErrors)
			}
			if len(p.Requests) > 0 {
				t.Errorf("network requests: %v", p.Requests)
			}
			if p.Scripts != 0 || !strings.Contains(p.BodyText, `<script>alert("x")</script>`) {
				t.Errorf("the study name was not escaped: %d scripts", p.Scripts)
			}
			if len(p.Figures) != tc.figs {
				t.Errorf("%d figures on the page, want %d", len(p.Figures), tc.figs)
			}
			want := map[string][]string{
				"energy-per-token": {"energy per output token (J)", "batch size", "precision fp32"},
				"phase-split":      {"energy per measured window (J)", "prefill", "decode"},
				"tradeoff":         {"output throughput (tokens/s)", "Pareto frontier", "C1"},
				"latency":          {"time to first token (ms)", "inter-token latency (ms)"},
				"cycles":           {"cycle", "steady state reached"},
			}
			for _, f := range p.Figures {
				if f.Width < 300 || f.Height < 150 || f.Paths < 10 || f.Texts < 5 {
					t.Errorf("figure %s looks empty: %+v", f.Name, f)
				}
				text := strings.Join(f.Text, "|")
				if strings.Contains(text, "NaN") {
					t.Errorf("figure %s shows NaN", f.Name)
				}
				w := want[f.Name]
				if strings.HasPrefix(f.Name, "timeline-") {
					w = []string{"power (W)", "time since window start (s)", "temp. (°C)", "prefill", "decode", "window mean", "throttling"}
				}
				for _, s := range w {
					if !strings.Contains(text, s) {
						t.Errorf("figure %s lacks %q: %s", f.Name, s, text)
					}
				}
			}
			if tc.name == "two" && !strings.Contains(p.BodyText, "second") {
				t.Error("comparison lacks the second study")
			}
		})
	}
}
