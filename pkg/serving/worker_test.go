package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/serve"
	"github.com/llenergymeasure/llem/pkg/study"
)

// The worker against an existing server (server.url): the real llem
// serve handler in this process, so -race sees the worker's goroutines.
// Its event stream passes the protocol checker, its measured window is
// the steady state, and Fill turns its report into a serving record.
func TestWorkerAgainstURL(t *testing.T) {
	m, tok, err := serve.Load("random:llama-15m", serve.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	s := serve.New(serve.Options{Name: "llama15m", Model: m, Tokenizer: tok, MaxBatch: 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	cfg := study.Config{Model: "random:llama-15m", Backend: "native", Precision: "fp32", N: 4, MaxInputTokens: 64, MaxOutputTokens: 8, RandomSeed: 1,
		Dataset: study.Dataset{Source: "synthetic", InputLen: 8, OutputLen: 8},
		Serving: &study.Serving{Server: study.ServingServer{URL: ts.URL, StartTimeoutSeconds: 10},
			Load:        study.ServingLoad{Rate: 50, Arrivals: "constant", Requests: 40, TimeoutSeconds: 30, WarmupRequests: 1},
			SLO:         &study.SLO{TTFTMs: 10000},
			SteadyState: study.SteadyStateRule{BinSeconds: 0.1, Tolerance: 0.9, MinSpanSeconds: 0.05}}}
	raw, _ := json.Marshal(cfg)
	spec, _ := json.Marshal(protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: "r", Cycle: 1, Config: raw})
	dir := t.TempDir()
	var events bytes.Buffer
	if err := RunWorker(ctx, bytes.NewReader(spec), &events, WorkerOptions{Dir: dir}); err != nil {
		t.Fatalf("%v\n%s", err, events.String())
	}
	check := protocol.NewChecker()
	dec := protocol.NewDecoder(&events)
	for {
		ev, err := dec.Next()
		if err != nil {
			break
		}
		if err := check.Add(ev); err != nil {
			t.Fatalf("event %s: %v", ev.Kind, err)
		}
	}
	sum, err := check.Finish()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Server.Kind != "url" || len(rep.Traces) != 40 {
		t.Fatalf("server %+v, %d traces", rep.Server, len(rep.Traces))
	}
	w0, w1 := sum.WarmupDoneNs, sum.DoneNs
	if rep.Window != nil && (w0 != rep.Window.StartNs || w1 != rep.Window.EndNs) {
		t.Errorf("measured window %d..%d is not the steady state %+v", w0, w1, rep.Window)
	}
	rec := &result.Record{}
	rec.Timing.WindowStartNs, rec.Timing.WindowEndNs, rec.Timing.WindowS = w0, w1, float64(w1-w0)/1e9
	raw0 := 10.0
	rec.Energy.RawJ = &raw0
	Fill(rec, &rep, nil)
	sv := rec.Serving
	if sv == nil || sv.Requests != 40 || sv.Completed != 40 || sv.Server.Kind != "url" || sv.GoodputRps == nil {
		t.Fatalf("serving section %+v", sv)
	}
	var sumE float64
	for _, e := range sv.PerRequestEnergyJ {
		sumE += e
	}
	// J/request needs a request that completed inside the window; on a
	// loaded CI machine (-race, parallel packages) the steady window can
	// hold none, and then there is no J/request to report.
	if sumE > raw0*1.0001 || (sv.WindowRequests > 0) != (rec.Efficiency.EnergyPerRequestJ != nil) {
		t.Errorf("per-request energies sum to %g of %g J; %d window requests, J/request %v", sumE, raw0, sv.WindowRequests, rec.Efficiency.EnergyPerRequestJ)
	}
	t.Logf("steady %+v, no_steady_state %q, window requests %d, J/request %v", rep.Window, rep.NoSteadyState, sv.WindowRequests, rec.Efficiency.EnergyPerRequestJ)
}

// A url that never answers health is a server error, not a hang.
func TestWorkerServerNotHealthy(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer ts.Close()
	cfg := study.Config{Model: "random:llama-15m", Backend: "native", N: 2, MaxInputTokens: 8, MaxOutputTokens: 2,
		Dataset: study.Dataset{Source: "synthetic", InputLen: 4, OutputLen: 2},
		Serving: &study.Serving{Server: study.ServingServer{URL: ts.URL, StartTimeoutSeconds: 0.2}, Load: study.ServingLoad{Rate: 1, Arrivals: "poisson", TimeoutSeconds: 1},
			SteadyState: study.SteadyStateRule{BinSeconds: 1, Tolerance: 0.25, MinSpanSeconds: 1}}}
	raw, _ := json.Marshal(cfg)
	spec, _ := json.Marshal(protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: "r", Cycle: 1, Config: raw})
	var events bytes.Buffer
	err := RunWorker(context.Background(), bytes.NewReader(spec), &events, WorkerOptions{Dir: t.TempDir()})
	if err == nil || !bytes.Contains(events.Bytes(), []byte(`"kind":"server"`)) || !bytes.Contains(events.Bytes(), []byte("503")) {
		t.Fatalf("err %v, events %s", err, events.String())
	}
}
