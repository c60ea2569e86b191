package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/pipeline"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// execute runs the prepared study (or resumes --resume DIR), shows
// progress on stderr, and prints the per-run summary table (stderr) or,
// with --json, summary.json (stdout). Exit status: 0 all done, 1 some run
// failed, 130 interrupted.
func (c *evalCmd) execute(ctx context.Context, stdio *IO, p *pipeline.Prepared) error {
	if !c.Quiet {
		for _, w := range p.Resolution.Warnings {
			fmt.Fprintln(stdio.Stderr, "llem: warning:", w)
		}
		for _, b := range p.Resolution.Docker() {
			id := b.ImageDigest
			if id == "" {
				id = b.ImageID
			}
			fmt.Fprintf(stdio.Stderr, "llem: %s runs in Docker: %s (%s)\n", b.Backend, b.Image, id)
		}
	}
	opt := pipeline.RunOptions{Out: c.Out, Resume: c.Resume}
	tty := isTerminal(stdio.Stderr)
	if tty && isTerminal(stdio.Stdin) {
		opt.Skip = skipKeys(stdio.Stdin)
	}
	var disp display = nopDisplay{}
	if !c.Quiet {
		if tty {
			disp = newBarDisplay(ctx, stdio.Stderr)
		} else {
			disp = &lineDisplay{w: stdio.Stderr}
		}
	}
	opt.OnEvent = disp.event
	rep, err := p.Execute(ctx, opt)
	disp.close()
	if err != nil {
		return err
	}

	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep.Summary); err != nil {
			return fmt.Errorf("write summary: %w", err)
		}
	} else {
		printSummary(stdio.Stderr, rep, c.Study)
	}
	switch {
	case rep.Interrupted:
		return &printedError{errs.WithExitCode(errors.New("interrupted"), errs.ExitInterrupted)}
	case rep.Failed > 0:
		return &printedError{errs.WithExitCode(fmt.Errorf("%d run(s) failed", rep.Failed), errs.ExitFailure)}
	case rep.QualityFailed > 0:
		return &printedError{errs.WithExitCode(fmt.Errorf("%d quality scoring(s) failed; llem eval --resume scores them again", rep.QualityFailed), errs.ExitFailure)}
	}
	return nil
}

// skipKeys turns each line typed on a terminal into a "skip the gap" signal.
func skipKeys(r io.Reader) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printSummary writes where the results are and one line per run: energy
// per output token with its CI (cycles ≥ 2), output tokens/s, TTFT p50, the
// prefill/decode split of the energy, and the flags.
func printSummary(w io.Writer, rep *execute.Report, studyPath string) {
	m := rep.Manifest
	fmt.Fprintf(w, "\n%s: %d/%d done", m.Study, m.Counts.Done, m.Counts.Total)
	if m.Counts.Failed > 0 {
		fmt.Fprintf(w, ", %d failed", m.Counts.Failed)
	}
	if m.Counts.Skipped > 0 {
		fmt.Fprintf(w, ", %d skipped (steady state)", m.Counts.Skipped)
	}
	if rep.Interrupted {
		fmt.Fprintf(w, ", interrupted (resume: llem eval %s --resume %s)", studyPath, rep.Dir)
	}
	dir := rep.Dir
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			dir = rel
		}
	}
	fmt.Fprintf(w, "\nresults: %s\n\n", dir)
	if rep.Stats == nil || len(rep.Stats.Runs) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tCONFIG\tN\tJ/OUT-TOKEN\tOUT-TOKENS/S\tTTFT P50 MS\tPREFILL/DECODE J\tFLAGS")
	var shown []*stats.MetricStats
	for i := range rep.Stats.Runs {
		r := &rep.Stats.Runs[i]
		label := r.Label()
		for _, s := range rep.Summary.Runs {
			if s.RunID == r.RunID {
				label = s.Label
			}
		}
		split := "-"
		pre, dec := r.Metric("prefill_energy_j"), r.Metric("decode_energy_j")
		if pre != nil && dec != nil && pre.N > 0 && dec.N > 0 && pre.Mean+dec.Mean > 0 {
			split = fmt.Sprintf("%.0f%% / %.0f%%", 100*pre.Mean/(pre.Mean+dec.Mean), 100*dec.Mean/(pre.Mean+dec.Mean))
		}
		flags := strings.Join(r.Flags, ",")
		if flags == "" {
			flags = "-"
		}
		id := r.RunID
		if len(id) > 8 {
			id = id[:8]
		}
		e, tps, ttft := r.Metric("energy_per_output_token_j"), r.Metric("output_tokens_per_sec"), r.Metric("ttft_p50_ms")
		shown = append(shown, e, tps, ttft)
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\n", id, label, r.ValidCount, r.Cycles,
			stats.FormatWithCI(e), stats.FormatWithCI(tps), stats.FormatWithCI(ttft), split, flags)
	}
	tw.Flush()
	printQuality(w, rep)
	fmt.Fprintln(w, "\n"+ciFooter(rep.Stats, shown))
	for _, warn := range rep.Stats.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
}

// display renders executor events.
type display interface {
	event(execute.Event)
	close()
}

type nopDisplay struct{}

func (nopDisplay) event(execute.Event) {}
func (nopDisplay) close()              {}

// lineDisplay prints one plain line per transition, for logs and pipes.
type lineDisplay struct {
	mu sync.Mutex
	w  io.Writer
}

func (d *lineDisplay) event(ev execute.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pos := fmt.Sprintf("[%d/%d]", ev.Done+1, ev.Total)
	switch ev.Kind {
	case execute.EventStart:
		fmt.Fprintf(d.w, "llem: %d runs×cycles, %d already finished\n", ev.Total, ev.Done)
	case execute.EventGap:
		fmt.Fprintf(d.w, "%s %s: waiting %s\n", pos, ev.Message, ev.Gap.Round(100*time.Millisecond))
	case execute.EventBaseline:
		fmt.Fprintf(d.w, "%s idle baseline %.1f W (%s)\n", pos, ev.PowerW, ev.Message)
	case execute.EventRun:
		fmt.Fprintf(d.w, "%s %s cycle %d: %s\n", pos, short(ev.Entry.RunID), ev.Entry.Cycle, ev.Entry.Label)
	case execute.EventSkipped:
		fmt.Fprintf(d.w, "%s %s cycle %d: skipped, steady state reached\n", fmt.Sprintf("[%d/%d]", ev.Done, ev.Total), short(ev.Entry.RunID), ev.Entry.Cycle)
	case execute.EventRunEnd:
		fmt.Fprintf(d.w, "[%d/%d] %s cycle %d: %s\n", ev.Done, ev.Total, short(ev.Entry.RunID), ev.Entry.Cycle, outcome(ev))
	case execute.EventQuality:
		fmt.Fprintf(d.w, "[quality] %s: scoring %s with lm-eval\n", short(ev.Entry.RunID), ev.Entry.Label)
	case execute.EventQualityLog:
		fmt.Fprintf(d.w, "[quality] %s: %s\n", short(ev.Entry.RunID), ev.Message)
	case execute.EventQualityEnd:
		fmt.Fprintf(d.w, "[quality] %s: %s\n", short(ev.Entry.RunID), ev.Message)
	}
}

func (d *lineDisplay) close() {}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// outcome is the one-line result of a finished slot.
func outcome(ev execute.Event) string {
	r := ev.Record
	if r == nil {
		return string(ev.Entry.Status)
	}
	if r.Error != nil {
		return "FAILED " + r.Error.Kind + ": " + firstLineOf(r.Error.Message)
	}
	s := fmt.Sprintf("%.0f out-tokens/s", r.Throughput.OutputTokensPerSec)
	if e := r.Efficiency.EnergyPerOutputTokenJ; e != nil {
		s = fmt.Sprintf("%.4g J/out-token (%s, %s), ", *e, r.Energy.Sensor, r.Efficiency.Basis) + s
	}
	return s
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// barDisplay is the live terminal view: a progress bar over all slots with
// ETA, and a status line with the current run, phase and power.
type barDisplay struct {
	p      *mpb.Progress
	bar    *mpb.Bar
	mu     sync.Mutex
	status string
	power  string
	color  bool
}

func newBarDisplay(ctx context.Context, w io.Writer) *barDisplay {
	d := &barDisplay{color: os.Getenv("NO_COLOR") == ""}
	d.p = mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond))
	return d
}

func (d *barDisplay) text(decor.Statistics) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.status
	if d.power != "" {
		s += "  " + d.power
	}
	return s
}

func (d *barDisplay) event(ev execute.Event) {
	d.mu.Lock()
	switch ev.Kind {
	case execute.EventStart:
		d.mu.Unlock()
		d.bar = d.p.AddBar(int64(ev.Total),
			mpb.PrependDecorators(decor.Name("llem "), decor.CountersNoUnit("%d/%d", decor.WCSyncSpace)),
			mpb.AppendDecorators(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), decor.Any(d.text, decor.WCSyncSpace)))
		d.bar.SetCurrent(int64(ev.Done))
		return
	case execute.EventGap:
		d.status = fmt.Sprintf("%s %s (Enter skips)", ev.Message, ev.Gap.Round(time.Second))
	case execute.EventBaseline:
		d.status = fmt.Sprintf("idle baseline %.1f W (%s)", ev.PowerW, ev.Message)
	case execute.EventRun:
		d.status = fmt.Sprintf("%s c%d %s", short(ev.Entry.RunID), ev.Entry.Cycle, ev.Entry.Label)
		d.power = ""
	case execute.EventPhase:
		d.status = fmt.Sprintf("%s c%d %s", short(ev.Entry.RunID), ev.Entry.Cycle, ev.Phase)
	case execute.EventPower:
		d.power = fmt.Sprintf("%.1f W", ev.PowerW)
	case execute.EventQuality:
		d.status, d.power = fmt.Sprintf("%s quality: lm-eval", short(ev.Entry.RunID)), ""
	case execute.EventQualityLog:
		d.status = fmt.Sprintf("%s %s", short(ev.Entry.RunID), ev.Message)
	case execute.EventQualityEnd:
		d.power = ""
		d.mu.Unlock()
		d.p.Write([]byte(fmt.Sprintf("%s %s\n", short(ev.Entry.RunID), ev.Message)))
		return
	case execute.EventRunEnd, execute.EventSkipped:
		line := fmt.Sprintf("%s c%d: %s", short(ev.Entry.RunID), ev.Entry.Cycle, outcome(ev))
		if d.color && ev.Record != nil && ev.Record.Error != nil {
			line = "\x1b[31m" + line + "\x1b[0m"
		}
		d.power = ""
		d.mu.Unlock()
		if d.bar != nil {
			d.bar.SetCurrent(int64(ev.Done))
		}
		d.p.Write([]byte(line + "\n"))
		return
	}
	d.mu.Unlock()
}

func (d *barDisplay) close() {
	if d.bar != nil && !d.bar.Completed() {
		d.bar.Abort(false)
	}
	d.p.Wait()
}

// ciFooter says how the intervals in the table were computed: the
// configured method (BCa) only where every shown interval used it, else
// which ones fell back to percentile and why that happens.
func ciFooter(s *stats.StudySummary, shown []*stats.MetricStats) string {
	level := s.Methodology.ConfidenceLevel * 100
	n, fell := 0, 0
	for _, m := range shown {
		if m == nil || m.CI == nil || m.CI.Method == stats.MethodNone {
			continue
		}
		n++
		if m.CI.Method != s.Methodology.CIMethod {
			fell++
		}
	}
	switch {
	case n == 0:
		return "mean over cycles; no confidence intervals (a run needs 2+ valid cycles)."
	case fell == 0:
		return fmt.Sprintf("mean over cycles; [%.0f%% %s CI] where a run has 2+ valid cycles.", level, s.Methodology.CIMethod)
	case fell == n:
		return fmt.Sprintf("mean over cycles; [%.0f%% percentile CI]: %s needs 3+ varying cycles, so every interval shown fell back (llem results show --json gives each reason).", level, s.Methodology.CIMethod)
	default:
		return fmt.Sprintf("mean over cycles; [%.0f%% %s CI], %d of %d shown fell back to percentile (fewer than 3 varying cycles; llem results show --json gives each reason).", level, s.Methodology.CIMethod, fell, n)
	}
}

// printQuality lists the scored runs' quality beside their energy: the
// weighted lm-eval score and the score per joule of one request
// (docs/quality.md), then any scoring that failed.
func printQuality(w io.Writer, rep *execute.Report) {
	var lines []string
	for i := range rep.Stats.Runs {
		r := &rep.Stats.Runs[i]
		q := r.Metric(stats.MetricQuality)
		if q == nil {
			continue
		}
		line := fmt.Sprintf("  %s  quality %s  quality/J %s", short(r.RunID), stats.FormatWithCI(q), stats.FormatWithCI(r.Metric(stats.MetricQualityPerJoule)))
		if e := r.Metric(stats.MetricQualityScoringJ); e != nil {
			line += fmt.Sprintf("  (scoring: %s J)", stats.Num(e.Mean))
		}
		lines = append(lines, line)
	}
	for _, e := range rep.Manifest.Quality {
		if e.Status == result.EntryFailed {
			what := "quality scoring"
			if e.Cycle > 0 {
				what = fmt.Sprintf("cycle %d quality scoring", e.Cycle)
			}
			lines = append(lines, fmt.Sprintf("  %s  %s FAILED: %s (see %s)", short(e.RunID), what, e.Error, e.Record))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nquality (lm-eval; score per J of one request; docs/quality.md):")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}
