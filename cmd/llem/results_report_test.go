package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/report/reporttest"
)

const reportStudy = `name: "reporttest"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 4}
	max_output_tokens: 4
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: native: batch_size: [1, 2]
execution: {cycles: 3, order: "interleaved"}
`

// TestResultsReport runs a tiny native study through the real pipeline and
// reports it: an HTML page whose figures render in Chromium, and the
// figures as SVG and PNG files.
func TestResultsReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the native engine")
	}
	dir := t.TempDir()
	studyPath := filepath.Join(dir, "study.cue")
	if err := os.WriteFile(studyPath, []byte(reportStudy), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")
	var o, e bytes.Buffer
	if code := Main(context.Background(), []string{"eval", studyPath, "--out", out}, IO{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e}); code != 0 {
		t.Fatalf("eval exit %d: %s", code, e.String())
	}
	studies, _ := filepath.Glob(filepath.Join(out, "reporttest-*"))
	if len(studies) != 1 {
		t.Fatalf("study dirs: %v", studies)
	}
	html, figs := filepath.Join(dir, "report.html"), filepath.Join(dir, "figs")
	code, _, errOut := runLlem(t, "results", "report", studies[0], "--out", html, "--figures", figs, "--resamples", "200")
	if code != 0 || strings.Contains(errOut, "warning: figure") {
		t.Fatalf("report exit %d: %s", code, errOut)
	}
	for _, f := range []string{"energy-per-token.svg", "energy-per-token.png", "tradeoff.png", "latency.svg", "cycles.png", "phase-split.svg"} {
		if st, err := os.Stat(filepath.Join(figs, f)); err != nil || st.Size() < 1000 {
			t.Errorf("figure file %s: %v", f, err)
		}
	}
	if code, _, _ := runLlem(t, "results", "report", t.TempDir(), "--out", html); code != 2 {
		t.Errorf("report of a non-study: exit %d, want 2", code)
	}
	p := reporttest.Open(t, html)
	if dir := os.Getenv("LLEM_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "report-cpu-study.png"), p.Screenshot, 0o644)
	}
	if len(p.ConsoleErrors) > 0 || len(p.Requests) > 0 {
		t.Errorf("console errors %v, requests %v", p.ConsoleErrors, p.Requests)
	}
	if len(p.Figures) != 5+6 { // 5 comparison figures, 2 runs × 3 cycles of timelines
		t.Errorf("%d figures, want 11", len(p.Figures))
	}
	for _, f := range p.Figures {
		if f.Paths < 10 || f.Width < 300 {
			t.Errorf("figure %s looks empty: %+v", f.Name, f)
		}
	}
	if !strings.Contains(p.BodyText, "estimate_used") || !strings.Contains(p.BodyText, "not a measurement") {
		t.Error("the estimate flag is not explained")
	}
}
