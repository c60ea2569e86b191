package execute

import (
	"context"
	"testing"

	"github.com/llenergymeasure/llem/pkg/result"
)

// BenchmarkRunOverhead measures what llem adds per run beyond the model's
// work: each slot's wall time (manifest transitions, worker process start
// and exit, spec and event handling, sampler start/stop, window
// computation, record and timeseries writes) minus its measured window. The
// worker is a fake that does no model work, so nearly all of the slot is
// overhead; baseline and gaps are off. Goal: ≤ 50 ms per run.
func BenchmarkRunOverhead(b *testing.B) {
	_, plan := writeStudy(b, fakeBase+`grid: n: [1]
execution: {cycles: 5, order: "sequential"}
`)
	var overhead, slots float64
	for b.Loop() {
		rep, err := Run(context.Background(), Options{Plan: plan, OutRoot: b.TempDir(),
			Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)})})
		if err != nil || rep.Failed > 0 {
			b.Fatal(err, rep.Manifest.Entries)
		}
		for _, e := range rep.Manifest.Entries {
			r, err := result.ReadRecordFile(rep.Dir + "/" + e.Record)
			if err != nil {
				b.Fatal(err)
			}
			overhead += e.EndedAt.Sub(*e.StartedAt).Seconds() - r.Timing.WindowS
			slots++
		}
	}
	b.ReportMetric(overhead/slots*1e3, "overhead-ms/run")
}
