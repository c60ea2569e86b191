package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/stats"
)

func TestBars(t *testing.T) {
	s := &stats.StudySummary{Runs: []stats.RunStats{
		{RunID: "aaaaaaaaaaaa", Metrics: []stats.MetricStats{{Name: "energy_per_output_token_j", Description: stats.Description{N: 3, Mean: 2, CI: &stats.CI{Lower: 1.5, Upper: 2.5, Method: stats.MethodBCa}}}}},
		{RunID: "bbbbbbbbbbbb", Metrics: []stats.MetricStats{{Name: "energy_per_output_token_j", Description: stats.Description{N: 3, Mean: 1, CI: &stats.CI{Lower: 0.5, Upper: 1.5, Method: stats.MethodBCa}}}}},
		{RunID: "cccccccccccc"}, // no energy: no bar
	}}
	var buf bytes.Buffer
	writeBars(&buf, s, 20)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a heading and 2 bars:\n%s", buf.String())
	}
	// 2 [1.5, 2.5] on a 20-cell scale to 2.5: 12 █, 4 ▒, then ───┤ to 20.
	if want := "#2  aaaaaaaa ████████████▒▒▒▒───┤ 2 [1.5, 2.5]"; lines[1] != want {
		t.Errorf("bar 1:\n got %q\nwant %q", lines[1], want)
	}
	if !strings.HasPrefix(lines[2], "#1  bbbbbbbb ████▒▒▒▒───┤") {
		t.Errorf("bar 2: %q", lines[2])
	}
	buf.Reset()
	TerminalBars(&buf, s) // not a terminal: nothing
	if buf.Len() != 0 {
		t.Errorf("bars on a non-terminal: %q", buf.String())
	}
}
