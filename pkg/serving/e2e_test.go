package serving_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/dockertest"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/serving"
)

// llemBin is the real llem, built once for the end-to-end tests: they
// drive `llem eval` exactly as a user does (the serving worker and
// `llem serve` are that binary's subcommands).
var llemBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "llem-serving-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer dockertest.Stop() // a daemon the Docker-placement tests started
	llemBin = filepath.Join(dir, "llem")
	cmd := exec.Command("go", "build", "-o", llemBin, "github.com/llenergymeasure/llem/cmd/llem")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build llem:", err)
		return 1
	}
	return m.Run()
}

// study writes a serving study: the native server over random:llama-15m
// on one thread, constant arrivals, short loads.
func study(t *testing.T, name, serving, grid string, cycles int) string {
	t.Helper()
	src := fmt.Sprintf(`name: %q
base: {
	model:   "random:llama-15m"
	backend: "native"
	n:       8
	dataset: {source: "synthetic", input_len: 16, output_len: 24}
	max_output_tokens: 24
	baseline: enabled: false
	energy: sensor: "estimate"
	native: {batch_size: 4, threads: 1}
	serving: %s
}
%s
execution: {cycles: %d, order: "sequential"}
`, name, serving, grid, cycles)
	p := filepath.Join(t.TempDir(), name+".cue")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// eval runs llem eval on a study; while it runs, during (if set) gets the
// study's output root.
func eval(t *testing.T, studyPath string, during func(out string)) (string, []*result.Record) {
	t.Helper()
	return evalEnv(t, studyPath, nil, during)
}

// evalEnv is eval with variables added to llem's environment.
func evalEnv(t *testing.T, studyPath string, env []string, during func(out string)) (string, []*result.Record) {
	t.Helper()
	if llemBin == "" {
		t.Skip("-short: no llem build")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, llemBin, "eval", studyPath, "--out", out)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during(out)
	}
	err := cmd.Wait()
	t.Logf("llem eval: %v\n%s\n%s", err, stdout.String(), stderr.String())
	dirs, _ := filepath.Glob(filepath.Join(out, "*"))
	if len(dirs) != 1 {
		t.Fatalf("want one study directory in %s, got %v", out, dirs)
	}
	recs, err := result.ReadRecords(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	return dirs[0], recs
}

func rateOf(r *result.Record) float64 { return r.Serving.Load.RateRps }

// The check: a sweep of three arrival rates with three cycles on
// llem serve, the highest saturating the server; every record shows its
// steady-state window (or why none), latency percentiles and energy per
// request.
func TestServingSweepEndToEnd(t *testing.T) {
	p := study(t, "sweep", `{
		load: {duration_seconds: 2.5, arrivals: "constant", warmup_requests: 2}
		slo: {ttft_ms: 200, tpot_ms: 50}
		steady_state: {bin_seconds: 0.25, tolerance: 0.5, min_span_seconds: 0.75}
	}`, `grid: serving: load: rate: [4, 10, 40]`, 3)
	_, recs := eval(t, p, nil)
	if len(recs) != 9 {
		t.Fatalf("%d records, want 9 (3 rates × 3 cycles)", len(recs))
	}
	byRate := map[float64][]*result.Record{}
	for _, r := range recs {
		if r.Status != result.StatusOK || r.Serving == nil {
			t.Fatalf("run %s cycle %d: status %s, error %+v", r.RunID, r.Cycle, r.Status, r.Error)
		}
		byRate[rateOf(r)] = append(byRate[rateOf(r)], r)
		s := r.Serving
		t.Logf("rate %g cycle %d: window %.2fs steady=%v (%s) reqs %d/%d, %.1f out-tok/s, TTFT p50 %.1f ms p99 %.1f ms, TPOT p50 %.1f ms, J/request %s, per-request p50 %v, goodput %v",
			rateOf(r), r.Cycle, r.Timing.WindowS, s.SteadyState != nil, s.NoSteadyState, s.WindowRequests, s.Requests, r.Throughput.OutputTokensPerSec,
			r.Latency.TTFT.P50Ms, r.Latency.TTFT.P99Ms, r.Latency.TPOT.P50Ms, fmtPtr(r.Efficiency.EnergyPerRequestJ), s.EnergyPerRequestJ, fmtPtr(s.GoodputRps))
		if s.SteadyState == nil && s.NoSteadyState == "" {
			t.Errorf("rate %g cycle %d: neither a steady state nor a reason", rateOf(r), r.Cycle)
		}
		if r.Latency.TTFT.N == 0 || r.Latency.E2E.N == 0 || r.Latency.TPOT.N == 0 || r.Latency.ITL.N == 0 {
			t.Errorf("rate %g cycle %d: latency percentiles missing: %+v", rateOf(r), r.Cycle, r.Latency)
		}
		if r.Efficiency.EnergyPerRequestJ == nil || *r.Efficiency.EnergyPerRequestJ <= 0 || s.EnergyPerRequestJ == nil || s.EnergyPerRequestJ.N != s.WindowRequests {
			t.Errorf("rate %g cycle %d: energy per request missing: %v %+v", rateOf(r), r.Cycle, r.Efficiency.EnergyPerRequestJ, s.EnergyPerRequestJ)
		}
		if s.GoodputRps == nil {
			t.Errorf("rate %g cycle %d: no goodput under the SLO", rateOf(r), r.Cycle)
		}
		// Attributed per-request energy never exceeds the window's.
		var sum float64
		for _, e := range s.PerRequestEnergyJ {
			sum += e
		}
		if r.Energy.RawJ != nil && sum > *r.Energy.RawJ*1.0001 {
			t.Errorf("rate %g cycle %d: per-request energies sum to %g J, more than the window's %g J", rateOf(r), r.Cycle, sum, *r.Energy.RawJ)
		}
	}
	if len(byRate) != 3 {
		t.Fatalf("rates %v, want 3", byRate)
	}
	// The highest rate saturates the server: it completes requests slower
	// than they arrive (about 25/s with a batch of 4 on one thread), a
	// steady state is found in every cycle (the batch stays full), it runs
	// more requests at once than the lowest, and requests queue (TTFT).
	hi, lo := byRate[40], byRate[4]
	for _, r := range hi {
		if got := r.Throughput.RequestsPerSec; got > 0.9*40 {
			t.Errorf("rate 40 cycle %d: %.1f requests/s completed, want the server saturated below 36", r.Cycle, got)
		}
		if r.Serving.SteadyState == nil {
			t.Errorf("rate 40 cycle %d: no steady state at saturation: %s", r.Cycle, r.Serving.NoSteadyState)
		} else if l := lo[0].Serving; l.SteadyState != nil && r.Serving.SteadyState.TargetRunning <= l.SteadyState.TargetRunning {
			t.Errorf("saturated running level %.2f not above the light load's %.2f", r.Serving.SteadyState.TargetRunning, l.SteadyState.TargetRunning)
		}
		if r.Latency.TTFT.P50Ms < 3*lo[0].Latency.TTFT.P50Ms {
			t.Errorf("rate 40 cycle %d: TTFT p50 %.1f ms, not queueing behind a full batch (rate 4: %.1f ms)", r.Cycle, r.Latency.TTFT.P50Ms, lo[0].Latency.TTFT.P50Ms)
		}
	}
	steady := 0
	for _, r := range recs {
		if r.Serving.SteadyState != nil {
			steady++
		}
		if r.Prefill != nil || r.Decode != nil {
			t.Errorf("rate %g cycle %d: a serving record has prefill %+v / decode %+v sections; its window has no phase split", rateOf(r), r.Cycle, r.Prefill, r.Decode)
		}
	}
	if steady < 6 {
		t.Errorf("only %d of 9 runs found a steady state", steady)
	}
}

// crashedThenNext checks a 2-cycle study whose server crashed in cycle 1:
// two records (the study went on), cycle 1 failed with kind server. It
// returns cycle 1's and cycle 2's records.
func crashedThenNext(t *testing.T, recs []*result.Record) (c1, c2 *result.Record) {
	t.Helper()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2 (the study went on after the crash)", len(recs))
	}
	for _, r := range recs {
		if r.Cycle == 1 {
			c1 = r
		} else {
			c2 = r
		}
	}
	if c1 == nil || c2 == nil {
		t.Fatalf("records of cycles %d and %d, want 1 and 2", recs[0].Cycle, recs[1].Cycle)
	}
	if c1.Status != result.StatusFailed || c1.Error == nil || c1.Error.Kind != "server" {
		t.Fatalf("cycle 1: status %s error %+v, want failed with kind server", c1.Status, c1.Error)
	}
	return c1, c2
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatFloat(*p, 'g', 4, 64)
}

// A server killed mid-load fails that run × cycle with the reason and the
// server's last output; the study goes on to the next cycle.
func TestServingServerCrash(t *testing.T) {
	p := study(t, "crash", `{
		load: {requests: 40, rate: 20, arrivals: "constant", warmup_requests: 1}
		steady_state: {bin_seconds: 0.25, min_span_seconds: 0.5}
	}`, "", 2)
	// Only cycle 1's server dies (killed once its load has started).
	killed := false
	_, recs := eval(t, p, func(out string) {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			started, _ := filepath.Glob(filepath.Join(out, "*", "work", "*", "cycle-1", serving.LoadStartedFile))
			if len(started) == 1 {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(started[0]), serving.ServerFile))
				if err != nil {
					t.Error(err)
					return
				}
				var info serving.ServerInfo
				if err := json.Unmarshal(b, &info); err != nil || info.PID == 0 {
					t.Errorf("server.json: %s (%v)", b, err)
					return
				}
				if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
					t.Error(err)
				}
				killed = true
				return
			}
			time.Sleep(20 * time.Millisecond) // poll for the load to start
		}
	})
	if !killed {
		t.Fatal("the load never started")
	}
	c1, c2 := crashedThenNext(t, recs)
	if !bytes.Contains([]byte(c1.Error.Message), []byte("exited mid-run")) || !bytes.Contains([]byte(c1.Error.StderrTail), []byte("llem serve")) {
		t.Errorf("cycle 1: message %q, stderr tail %q: want the crash and the server's output", c1.Error.Message, c1.Error.StderrTail)
	}
	if c2.Status != result.StatusFailed && c2.Serving == nil {
		t.Errorf("cycle 2: %s without a serving section", c2.Status)
	}
}

// Client timeouts are counted in the record (and flagged); the run and
// the study go on.
func TestServingClientTimeouts(t *testing.T) {
	p := study(t, "timeouts", `{
		load: {requests: 40, rate: 40, arrivals: "constant", warmup_requests: 1, timeout_seconds: 0.1}
		steady_state: {bin_seconds: 0.25, min_span_seconds: 0.5}
	}`, "", 2)
	_, recs := eval(t, p, nil)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Status != result.StatusOK || r.Serving == nil {
			t.Fatalf("cycle %d: status %s error %+v", r.Cycle, r.Status, r.Error)
		}
		s := r.Serving
		t.Logf("cycle %d: %d sent, %d completed, %d failed, %d timed out; flags %v", r.Cycle, s.Requests, s.Completed, s.Failed, s.TimedOut, r.Flags)
		if s.TimedOut == 0 || s.Failed < s.TimedOut || s.Requests != 40 {
			t.Errorf("cycle %d: timed out %d, failed %d, sent %d: want timeouts counted among 40 requests", r.Cycle, s.TimedOut, s.Failed, s.Requests)
		}
		if !contains(r.Flags, serving.FlagClientTimeouts) {
			t.Errorf("cycle %d: flags %v lack %s", r.Cycle, r.Flags, serving.FlagClientTimeouts)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
