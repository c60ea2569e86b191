package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/llenergymeasure/llem/pkg/stats"
)

// TerminalBars prints, when w is a terminal, one bar per run of J per output
// token with its confidence interval, so the ranking shows at a glance; on
// anything else (a pipe, a file) it prints nothing, as the table above it
// already has the numbers.
func TerminalBars(w io.Writer, s *stats.StudySummary) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return
	}
	width := 40
	if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 100 {
		width = min(60, cols-60)
	}
	writeBars(w, s, width)
}

// writeBars draws the bars: █ up to the CI's lower end, ▒ from there to the
// mean, ─┤ from the mean to the upper end; rank 1 is the lowest J/token.
func writeBars(w io.Writer, s *stats.StudySummary, width int) {
	type bar struct {
		id, label    string
		mean, lo, hi float64
		rank         int
	}
	var bars []*bar
	top := 0.0
	for i := range s.Runs {
		r := &s.Runs[i]
		m := r.Metric("energy_per_output_token_j")
		if m == nil || m.N == 0 || math.IsNaN(m.Mean) {
			continue
		}
		b := &bar{id: shortID(r.RunID), label: r.Label(), mean: m.Mean, lo: m.Mean, hi: m.Mean}
		if m.CI != nil && m.CI.Method != stats.MethodNone && !math.IsNaN(m.CI.Lower) {
			b.lo, b.hi = min(m.CI.Lower, m.Mean), max(m.CI.Upper, m.Mean)
		}
		top = max(top, b.hi)
		bars = append(bars, b)
	}
	if len(bars) == 0 || top <= 0 {
		return
	}
	order := append([]*bar(nil), bars...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].mean < order[j].mean })
	for i, b := range order {
		b.rank = i + 1
	}
	cell := func(v float64) int { return int(math.Round(v / top * float64(width))) }
	fmt.Fprintf(w, "\nJ/output token, 95%% CI (█ to the lower bound, ▒ to the mean, ─┤ to the upper bound; #1 uses least energy):\n")
	for _, b := range bars {
		lo, mean, hi := cell(b.lo), cell(b.mean), cell(b.hi)
		var sb strings.Builder
		sb.WriteString(strings.Repeat("█", lo))
		sb.WriteString(strings.Repeat("▒", max(0, mean-lo)))
		if hi > mean {
			sb.WriteString(strings.Repeat("─", hi-mean-1) + "┤")
		}
		pad := width - max(hi, mean)
		fmt.Fprintf(w, "#%-2d %-8s %s%s %s [%s, %s]\n", b.rank, b.id, sb.String(), strings.Repeat(" ", max(0, pad)),
			stats.Num(b.mean), stats.Num(b.lo), stats.Num(b.hi))
	}
}
