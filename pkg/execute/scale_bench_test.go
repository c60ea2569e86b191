package execute

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/study"
)

// scaleStudy is 100,000 runs (1000 n × 100 max_output_tokens) × 3 cycles.
func scaleStudy() string {
	var ns, toks []string
	for i := 1; i <= 1000; i++ {
		ns = append(ns, fmt.Sprint(i))
	}
	for i := 1; i <= 100; i++ {
		toks = append(toks, fmt.Sprint(i))
	}
	return fakeBase + "grid: {n: [" + strings.Join(ns, ", ") + "], max_output_tokens: [" + strings.Join(toks, ", ") + "]}\n" +
		"execution: {cycles: 3, order: \"interleaved\"}\n"
}

// BenchmarkStudy100k measures a 100,000-run × 3-cycle study's fixed costs
// on the real study loop (fake worker, no baseline, no gaps): plan-s (load
// and expand the study), start-s (Run until the first slot starts:
// directory, manifest, plan.json) and stop-s (Ctrl-C after the third slot
// until Run returns: summary written, manifest final), with the heap in use
// at the end. Goal: each ≤ 2 s on a 2-core machine. The checkpoint's cost
// is pkg/result's BenchmarkCheckpoint.
func BenchmarkStudy100k(b *testing.B) {
	src := scaleStudy()
	var plan *study.Plan
	var planS, startS, stopS float64
	for b.Loop() {
		t0 := time.Now()
		_, plan = writeStudy(b, src)
		planS += time.Since(t0).Seconds()
		if len(plan.Runs) != 100_000 || len(plan.Schedule) != 300_000 {
			b.Fatalf("plan has %d runs, %d slots", len(plan.Runs), len(plan.Schedule))
		}
		ctx, cancel := context.WithCancel(context.Background())
		var started, stopAt time.Time
		runs := 0
		t1 := time.Now()
		rep, err := Run(ctx, Options{Plan: plan, OutRoot: b.TempDir(),
			Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
			OnEvent: func(ev Event) {
				switch ev.Kind {
				case EventRun:
					if started.IsZero() {
						started = time.Now()
					}
				case EventRunEnd:
					if runs++; runs == 3 {
						stopAt = time.Now()
						cancel()
					}
				}
			}})
		end := time.Now()
		cancel()
		if err != nil || !rep.Interrupted {
			b.Fatalf("Run: %v (interrupted %v)", err, rep != nil && rep.Interrupted)
		}
		startS += started.Sub(t1).Seconds()
		stopS += end.Sub(stopAt).Seconds()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := float64(b.N)
	b.ReportMetric(planS/n, "plan-s")
	b.ReportMetric(startS/n, "start-s")
	b.ReportMetric(stopS/n, "stop-s")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
}
