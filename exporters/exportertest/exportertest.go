// Package exportertest makes synthetic llem study directories for the tests
// of stats, exporters and the results commands. The records are made up (a
// fixed, seeded pattern), shaped exactly like pkg/result writes them.
package exportertest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/llenergymeasure/llem/pkg/result"
)

// Spec shapes a synthetic study.
type Spec struct {
	Study  string
	Runs   int
	Cycles int
	Seed   uint64
	// Configs, if set, gives each run's config (len must equal Runs);
	// otherwise configs differ by batch_size.
	Configs []map[string]any
	// Failed marks (run, cycle) pairs (0-based run, 1-based cycle) as failed.
	Failed map[[2]int]bool
	// EnergyScale multiplies every energy (to make one study "worse").
	EnergyScale float64
}

func f(v float64) *float64 { return &v }

// ConfigHash is the stand-in hash of a config used by the fake records: the
// canonical JSON (encoding/json sorts map keys) hashed with FNV-64.
func ConfigHash(cfg map[string]any) string {
	b, _ := json.Marshal(cfg)
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return fmt.Sprintf("%016x", h)
}

// Records returns Runs × Cycles records in executed (cycle-major) order.
func Records(s Spec) []result.Record {
	if s.EnergyScale == 0 {
		s.EnergyScale = 1
	}
	if s.Study == "" {
		s.Study = "synthetic"
	}
	rng := rand.New(rand.NewPCG(s.Seed, 17))
	start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var out []result.Record
	pos := 0
	for c := 1; c <= s.Cycles; c++ {
		for r := range s.Runs {
			cfg := map[string]any{
				"model": "random:llama-15m", "backend": "native", "precision": "fp32", "n": 100,
				"native": map[string]any{"batch_size": 1 << (r % 6), "threads": 2},
			}
			if s.Configs != nil {
				cfg = s.Configs[r]
			}
			hash := ConfigHash(cfg)
			cfgJSON, _ := json.Marshal(cfg)
			model, _ := cfg["model"].(string)
			backend, _ := cfg["backend"].(string)
			precision, _ := cfg["precision"].(string)
			base := (50 + 10*float64(r%7)) * s.EnergyScale
			raw := base * (1 + 0.03*rng.NormFloat64())
			window := 10 * (1 + 0.02*rng.NormFloat64())
			outTok := 12800
			inTok := 6400
			adj := raw - 2*window
			t0 := start.Add(time.Duration(pos) * 15 * time.Second)
			rec := result.Record{
				SchemaVersion: result.SchemaVersion, Study: s.Study, StudyHash: "deadbeefdeadbeef",
				RunID: "run-" + hash[:12], Experiment: fmt.Sprintf("exp%d", r), Cycle: c, Attempt: 1, Position: pos,
				Model: model, Backend: backend, Precision: precision,
				Config: cfgJSON, ConfigHash: hash,
				Environment: json.RawMessage(`{"gpu":"none","cpu":"synthetic"}`),
				Llem:        result.LlemInfo{Version: "0.1.0-test", Commit: "abc123"},
				Status:      result.StatusOK,
				Timing: result.Timing{StartedAt: t0, EndedAt: t0.Add(12 * time.Second), WallS: 12, LoadS: 0.5,
					WarmupS: 1, WindowS: window, WindowStartNs: int64(pos) * 1e10, WindowEndNs: int64(pos)*1e10 + int64(window*1e9)},
				Energy: result.Energy{Sensor: "rapl", Method: "counter", SampleIntervalMs: 100, Samples: 100,
					RawJ: f(raw), BaselineAdjustedJ: f(adj), MeanPowerW: f(raw / window),
					Baseline:  &result.Baseline{PowerW: 2, Method: "fresh", DurationS: 5, MeasuredAt: t0},
					PerDevice: []result.DeviceEnergy{{Index: 0, Name: "package-0", Kind: "cpu", EnergyJ: raw, MeanPowerW: raw / window, Method: "counter"}}},
				Throughput: result.Throughput{Requests: 100, InputTokens: inTok, OutputTokens: outTok,
					InputTokensPerSec: float64(inTok) / window, OutputTokensPerSec: float64(outTok) / window, RequestsPerSec: 100 / window},
				Efficiency: result.Efficiency{Basis: "baseline_adjusted", EnergyPerOutputTokenJ: f(adj / float64(outTok)),
					EnergyPerTokenJ: f(adj / float64(outTok+inTok)), EnergyPerRequestJ: f(adj / 100), OutputTokensPerJ: f(float64(outTok) / adj)},
				Prefill: &result.PhaseMetrics{Tokens: inTok, TimeS: 1, EnergyJ: f(adj * 0.1), TokensPerSec: float64(inTok), EnergyPerTokenJ: f(adj * 0.1 / float64(inTok))},
				Decode:  &result.PhaseMetrics{Tokens: outTok - 100, TimeS: window - 1, EnergyJ: f(adj * 0.9), TokensPerSec: float64(outTok-100) / (window - 1), EnergyPerTokenJ: f(adj * 0.9 / float64(outTok-100))},
				Latency: result.Latency{
					TTFT: result.Dist{N: 100, MeanMs: 20, P50Ms: 19, P90Ms: 25, P95Ms: 27, P99Ms: 30, MinMs: 15, MaxMs: 31},
					ITL:  result.Dist{N: 12700, MeanMs: 0.7, P50Ms: 0.65, P90Ms: 0.9, P95Ms: 1, P99Ms: 1.4, MinMs: 0.5, MaxMs: 3},
					TPOT: result.Dist{N: 100, MeanMs: 0.75, P50Ms: 0.7, P90Ms: 0.9, P95Ms: 1, P99Ms: 1.2, MinMs: 0.6, MaxMs: 1.5},
					E2E:  result.Dist{N: 100, MeanMs: 110, P50Ms: 105, P90Ms: 130, P95Ms: 140, P99Ms: 150, MinMs: 90, MaxMs: 160},
				},
				Thermal:  &result.Thermal{StartC: f(45), EndC: f(52), MaxC: f(53), GapS: 0, GapReason: "none"},
				Warmup:   &result.Warmup{Prompts: 5, TimeS: 1},
				Flags:    []string{},
				Warnings: []string{},
			}
			if s.Failed[[2]int{r, c}] {
				rec.Status = result.StatusFailed
				rec.Error = &result.RunError{Kind: "crash", Message: "worker exited with status 1", ExitCode: 1}
				rec.Energy.RawJ, rec.Energy.BaselineAdjustedJ, rec.Energy.MeanPowerW = nil, nil, nil
				rec.Efficiency = result.Efficiency{Basis: "raw"}
				rec.Prefill, rec.Decode = nil, nil
				rec.Latency = result.Latency{}
			}
			out = append(out, rec)
			pos++
		}
	}
	return out
}

// WriteStudy writes a study directory under dir (records/<run_id>/cycle-<n>.json,
// manifest.json, summary.json) and returns its path.
func WriteStudy(dir string, s Spec) (string, []result.Record, error) {
	recs := Records(s)
	m := result.Manifest{SchemaVersion: result.SchemaVersion, Study: recs[0].Study, StudyHash: recs[0].StudyHash,
		LlemVersion: "0.1.0-test", Status: result.StudyCompleted, Sessions: 1,
		StartedAt: recs[0].Timing.StartedAt, UpdatedAt: recs[len(recs)-1].Timing.EndedAt}
	end := recs[len(recs)-1].Timing.EndedAt
	m.EndedAt = &end
	for _, r := range recs {
		rel := result.RecordPath(r.RunID, r.Cycle)
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", nil, err
		}
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return "", nil, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", nil, err
		}
		st := result.EntryDone
		if r.Status != result.StatusOK {
			st = result.EntryFailed
		}
		m.Entries = append(m.Entries, result.Entry{RunID: r.RunID, Experiment: r.Experiment, Cycle: r.Cycle,
			Position: r.Position, Label: r.Backend + " / " + r.Model, Status: st, Attempts: 1, Record: rel})
	}
	m.Recount()
	if m.Counts.Failed > 0 {
		m.Status = result.StudyFailed
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, result.ManifestFile), b, 0o644); err != nil {
		return "", nil, err
	}
	sum := result.Summary{SchemaVersion: result.SchemaVersion, Study: m.Study, Status: m.Status,
		StartedAt: m.StartedAt, EndedAt: end, Counts: m.Counts, Runs: []result.RunSummary{}, Warnings: []string{}}
	b, err = json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, result.SummaryFile), b, 0o644); err != nil {
		return "", nil, err
	}
	return dir, recs, nil
}

// Environment is a realistic environment snapshot: the shape pkg/envinfo
// collects (here one H100 host), about 1 KB of compact JSON. Every record of
// a study carries the same one.
const Environment = `{"collected_at":"2026-11-26T11:59:58.123456789Z","llem":{"version":"0.1.0-test","commit":"abc123","go":"go1.26.8"},` +
	`"gpu":{"driver_version":"570.124.06","cuda_driver_version":"12.8","nvml_version":"12.570.124.06","gpus":[{"index":0,` +
	`"name":"NVIDIA H100 80GB HBM3","uuid":"GPU-5f1d2c3b-8a9e-4c7d-b6a5-0e1f2d3c4b5a","serial":"1652823054001",` +
	`"pci_bus_id":"00000000:18:00.0","memory_total_bytes":85520809984,"power_limit_w":700,"power_default_limit_w":700,` +
	`"sm_clock_max_mhz":1980,"mem_clock_max_mhz":2619,"compute_capability":"9.0","mig_mode":"disabled",` +
	`"persistence_mode":true,"energy_counter":true}]},"cpu":{"model":"Intel(R) Xeon(R) Platinum 8480+","sockets":2,` +
	`"cores":112,"threads":224,"hypervisor":false,"rapl":true,"governor":"performance"},"memory_bytes":2163983355904,` +
	`"os":{"name":"Ubuntu 22.04.5 LTS","kernel":"5.15.0-131-generic","arch":"amd64"},"container":{"detected":true,` +
	`"runtime":"docker","evidence":"/.dockerenv"},"runners":{"pytorch":{"kind":"docker","image":"llem/pytorch:0.1.0"}},` +
	`"fingerprint":"dbbe10970a6dc4a3"}`

// RealisticConfig is an effective config the size of a real one (the
// pytorch backend's, about 700 bytes of JSON), varied by i.
func RealisticConfig(i int) map[string]any {
	return map[string]any{
		"backend":          "pytorch",
		"baseline":         map[string]any{"cache_ttl_seconds": 3600, "duration_seconds": 5, "enabled": true},
		"dataset":          map[string]any{"distribution": "fixed", "input_len": 32 << (i % 4), "output_len": 16 << (i % 3), "source": "synthetic", "spread": 0.25},
		"dataset_order":    "interleaved",
		"decoder":          map[string]any{"do_sample": true, "repetition_penalty": 1, "temperature": 1, "top_k": 50, "top_p": 1},
		"energy":           map[string]any{"sensor": "auto"},
		"max_input_tokens": 32 << (i % 4), "max_output_tokens": 16 << (i % 3),
		"model": fmt.Sprintf("org/model-%d", i%5), "n": 100, "precision": []string{"bf16", "fp16", "fp32"}[i%3],
		"pytorch": map[string]any{"batch_size": 1 << (i % 6), "batching": "fixed", "device_map": "auto", "load_in_4bit": false,
			"load_in_8bit": false, "padding_side": "left", "return_dict_in_generate": false, "torch_compile": false,
			"trust_remote_code": false, "run": i},
		"random_seed": 42,
		"warmup":      map[string]any{"enabled": true, "n_warmup": 2, "thermal_floor_seconds": 1},
	}
}

// AsLoaded returns recs as result.LoadStudy would give them after pkg/result
// wrote them: each record read back from its indented JSON, so config and
// environment hold indented JSON and every record is its own allocation.
func AsLoaded(recs []result.Record) ([]*result.Record, error) {
	out := make([]*result.Record, len(recs))
	for i := range recs {
		b, err := json.MarshalIndent(&recs[i], "", "  ")
		if err != nil {
			return nil, err
		}
		out[i] = new(result.Record)
		if err := json.Unmarshal(b, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}
