package server_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/pgtest"
	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/server"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/stats"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func p(xs []time.Duration, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds()) / 1000
}

// BenchmarkArchiveLoad: 50 concurrent pushers push N records (batches of
// 25) into a fresh archive, then readers query it. It fails if a record is
// lost or stored twice, and reports push and query latency percentiles.
// N is LLEM_ARCHIVE_BENCH_RECORDS (default 5000, so make bench stays
// short; the load is 100000); LLEM_ARCHIVE_BENCH_STORE=postgres
// runs it on a throwaway PostgreSQL instead of SQLite.
//
//	LLEM_ARCHIVE_BENCH_RECORDS=100000 go test -run '^$' -bench ArchiveLoad -benchtime 1x ./pkg/archive/server
func BenchmarkArchiveLoad(b *testing.B) {
	n := envInt("LLEM_ARCHIVE_BENCH_RECORDS", 5000)
	const pushers, size = 50, 25
	// 40 models × 5 batch sizes = 200 configurations, cycles above them.
	recs := make([]wire.PushedRecord, n)
	var wg sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := w; i < n; i += runtime.GOMAXPROCS(0) {
				recs[i] = archivetest.Push(archivetest.Record(archivetest.Spec{Model: fmt.Sprintf("org/model-%02d", i%40), BatchSize: 1 + (i/40)%5,
					Cycle: i/200 + 1, Salt: i, GPU: []string{"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"}[i%2]}))
			}
		})
	}
	wg.Wait()
	var pushLat, listLat, configLat, pageLat []time.Duration
	// llem results show's statistics (10000 resamples).
	opts := server.Options{Stats: stats.Options{Resamples: stats.DefaultResamples, Seed: stats.DefaultSeed, Level: stats.DefaultLevel}}
	for range b.N {
		var a *archive
		if os.Getenv("LLEM_ARCHIVE_BENCH_STORE") == "postgres" {
			a = newArchive(b, pgtest.Start(b).NewDatabase(b), opts)
		} else {
			a = newArchive(b, b.TempDir()+"/archive.db", opts)
		}
		var next atomic.Int64
		var mu sync.Mutex
		start := time.Now()
		b.ResetTimer()
		for w := range pushers {
			wg.Go(func() {
				for {
					i := int(next.Add(size)) - size
					if i >= n {
						return
					}
					body := mustJSON(b, archivetest.Request(fmt.Sprint("bench-", w), recs[i:min(n, i+size)]...))
					t0 := time.Now()
					r := a.do(b, "POST", wire.PushPath, a.Write, body)
					d := time.Since(t0)
					if r.Status != 200 {
						b.Errorf("push: %d %s", r.Status, r.Body)
						return
					}
					mu.Lock()
					pushLat = append(pushLat, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		if got := a.count(b); got != n {
			b.Fatalf("%d records stored, want %d: lost or duplicated", got, n)
		}
		var hashes []string
		for _, r := range recs {
			hashes = append(hashes, r.SHA256)
		}
		for i := 0; i < n; i += 5000 {
			known, err := a.Store.Known(context.Background(), hashes[i:min(n, i+5000)])
			if err != nil || len(known) != min(n, i+5000)-i {
				b.Fatalf("known: %d %v", len(known), err)
			}
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
		// Queries: a filtered page of records (what the browse page's first
		// screen costs) and one page of per-configuration statistics.
		for q := range 200 {
			v := url.Values{"model": {fmt.Sprintf("org/model-%02d", q%40)}, "limit": {"50"}}
			if q%2 == 1 {
				v.Set("gpu", "NVIDIA A100-SXM4-80GB")
			}
			t0 := time.Now()
			if r := a.do(b, "GET", "/api/v1/records?"+v.Encode(), a.Read, nil); r.Status != 200 {
				b.Fatalf("list: %d", r.Status)
			}
			listLat = append(listLat, time.Since(t0))
		}
		// The browse page's records screen (count, facets, one page).
		for q := range 50 {
			t0 := time.Now()
			if r := a.do(b, "GET", fmt.Sprintf("/?gpu=NVIDIA+H100+80GB+HBM3&model=org/model-%02d", q%40), "", nil, "Authorization", "Basic "+basic(a.Read)); r.Status != 200 {
				b.Fatalf("browse page: %d", r.Status)
			}
			pageLat = append(pageLat, time.Since(t0))
		}
		for q := range 10 {
			t0 := time.Now()
			if r := a.do(b, "GET", fmt.Sprintf("/api/v1/configs?model=org/model-%02d", q), a.Read, nil); r.Status != 200 {
				b.Fatalf("configs: %d", r.Status)
			}
			configLat = append(configLat, time.Since(t0))
		}
	}
	b.ReportMetric(p(pushLat, 0.5), "p50_push_ms")
	b.ReportMetric(p(pushLat, 0.99), "p99_push_ms")
	b.ReportMetric(p(listLat, 0.99), "p99_query_ms")
	b.ReportMetric(p(configLat, 0.99), "p99_configs_ms")
	b.ReportMetric(p(pageLat, 0.99), "p99_page_ms")
}
