// Package archivetest makes result records for the archive's tests and
// benchmarks: internally consistent (what llem's result/fill.go writes,
// numbers derived the same way) unless a test breaks them on purpose.
package archivetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Spec varies a generated record.
type Spec struct {
	Study     string
	Model     string
	Backend   string
	Precision string
	BatchSize int
	Cycle     int
	GPU       string // GPU name; "" for "NVIDIA H100 80GB HBM3"
	// EnergyJ is the window's raw energy; the rest follows from it.
	EnergyJ float64
	// Salt makes otherwise equal specs give different records.
	Salt int
}

func f(v float64) *float64 { return &v }

// Record builds a consistent result record from s.
func Record(s Spec) *result.Record {
	if s.Study == "" {
		s.Study = "archive-test"
	}
	if s.Model == "" {
		s.Model = "meta-llama/Llama-3.1-8B"
	}
	if s.Backend == "" {
		s.Backend = "vllm"
	}
	if s.Precision == "" {
		s.Precision = "bf16"
	}
	if s.BatchSize == 0 {
		s.BatchSize = 8
	}
	if s.Cycle == 0 {
		s.Cycle = 1
	}
	if s.GPU == "" {
		s.GPU = "NVIDIA H100 80GB HBM3"
	}
	if s.EnergyJ == 0 {
		s.EnergyJ = 1200 + float64(s.Cycle)*3 + float64(s.Salt%97)
	}
	cfg := map[string]any{"model": s.Model, "backend": s.Backend, "precision": s.Precision, "batch_size": s.BatchSize, "max_output_tokens": 64}
	cfgJSON, _ := json.Marshal(cfg)
	hash, err := study.ConfigHash(cfgJSON)
	if err != nil {
		panic(err)
	}
	limit := 700.0
	snap := envinfo.Snapshot{
		CollectedAt: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		Llem:        envinfo.Llem{Version: "0.9.0", Commit: "abc1234", Go: "go1.26.8"},
		GPU: envinfo.GPU{NVMLInfo: energy.NVMLInfo{DriverVersion: "550.54.15", CUDADriverVersion: "12.4", GPUs: []energy.GPUInfo{{
			Index: 0, UUID: "GPU-0b5e7c1e-2f3a-4c5d-8e9f-000000000001", Name: s.GPU, Architecture: "hopper",
			PowerLimitW: &limit, MaxPowerLimitW: &limit, Selected: true, HasEnergyCounter: true,
		}}}},
		CPU:         envinfo.CPU{CPUFacts: energy.CPUFacts{Model: "AMD EPYC 9454", Sockets: 1, Cores: 48, Threads: 96}},
		MemoryBytes: 512 << 30,
		OS:          envinfo.OS{Name: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0", Arch: "amd64"},
	}
	snap.Fingerprint = envinfo.Fingerprint(snap)
	envJSON, _ := json.Marshal(snap)

	started := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s.Salt)*time.Minute + time.Duration(s.Cycle)*time.Second)
	const windowNs = 20_000_000_000
	T := float64(windowNs) / 1e9
	reqs := s.BatchSize * 4
	in, out := 128, 64
	r := &result.Record{
		SchemaVersion: result.SchemaVersion, Study: s.Study, StudyHash: fmt.Sprintf("%016x", s.Salt+1), RunID: hash[:12],
		Experiment: "grid", Cycle: s.Cycle, Attempt: 1, Position: s.Cycle - 1,
		Model: s.Model, Backend: s.Backend, Precision: s.Precision,
		Config: cfgJSON, ConfigHash: hash, Environment: envJSON,
		Llem:   result.LlemInfo{Version: "0.9.0", Commit: "abc1234"},
		Status: result.StatusOK,
		Timing: result.Timing{StartedAt: started, EndedAt: started.Add(40 * time.Second), WallS: 40, LoadS: 10, WarmupS: 5,
			WindowS: T, WindowStartNs: 1_000_000_000, WindowEndNs: 1_000_000_000 + windowNs},
		Flags: []string{}, Warnings: []string{},
	}
	E := s.EnergyJ
	pre, dec := 0.2*E, 0.75*E
	r.Energy = result.Energy{Sensor: "nvml", Method: "counter", SampleIntervalMs: 100, Samples: 200, RawJ: f(E), MeanPowerW: f(E / T),
		PerDevice:  []result.DeviceEnergy{{Index: 0, Name: "gpu0", Kind: "gpu", EnergyJ: E, MeanPowerW: E / T, Method: "counter", Domain: "accelerator"}},
		PerDomainJ: map[string]float64{"accelerator": E}, EfficiencyDomains: []string{"accelerator"},
		Phases: []result.PhaseShare{
			{Name: "prefill", DurationS: 4, EnergyJ: pre, Share: pre / E},
			{Name: "decode", DurationS: 15, EnergyJ: dec, Share: dec / E},
			{Name: "host", DurationS: 1, EnergyJ: E - pre - dec, Share: (E - pre - dec) / E},
		}}
	r.Throughput = result.Throughput{Requests: reqs, InputTokens: reqs * in, OutputTokens: reqs * out,
		InputTokensPerSec: float64(reqs*in) / T, OutputTokensPerSec: float64(reqs*out) / T, RequestsPerSec: float64(reqs) / T}
	r.Efficiency = result.Efficiency{Basis: "raw", EnergyPerOutputTokenJ: f(E / float64(reqs*out)), EnergyPerTokenJ: f(E / float64(reqs*(in+out))),
		EnergyPerRequestJ: f(E / float64(reqs)), OutputTokensPerJ: f(float64(reqs*out) / E)}
	r.Prefill = &result.PhaseMetrics{Tokens: reqs * in, TimeS: 4, EnergyJ: f(pre), TokensPerSec: float64(reqs*in) / 4, EnergyPerTokenJ: f(pre / float64(reqs*in))}
	r.Decode = &result.PhaseMetrics{Tokens: reqs * (out - 1), TimeS: 15, EnergyJ: f(dec), TokensPerSec: float64(reqs*(out-1)) / 15, EnergyPerTokenJ: f(dec / float64(reqs*(out-1)))}
	for i := range reqs {
		tp := 20.0
		r.Latency.PerRequest = append(r.Latency.PerRequest, result.RequestLatency{Index: i, Batch: i / s.BatchSize, InputTokens: in, OutputTokens: out,
			TTFTMs: 50 + float64(i%7), E2EMs: 50 + float64(i%7) + 63*tp, TPOTMs: &tp, FinishReason: "length"})
	}
	r.Latency.TTFT = result.Dist{N: reqs, MeanMs: 53, P50Ms: 53, P90Ms: 56, P95Ms: 56, P99Ms: 56, MinMs: 50, MaxMs: 56}
	r.Latency.E2E = result.Dist{N: reqs, MeanMs: 1313, P50Ms: 1313, P90Ms: 1316, P95Ms: 1316, P99Ms: 1316, MinMs: 1310, MaxMs: 1316}
	r.Latency.TPOT = result.Dist{N: reqs, MeanMs: 20, P50Ms: 20, P90Ms: 20, P95Ms: 20, P99Ms: 20, MinMs: 20, MaxMs: 20}
	return r
}

// Push encodes r as a pushed record with its hash.
func Push(r *result.Record) wire.PushedRecord {
	raw, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	return Raw(raw)
}

// Raw hashes an already-encoded record.
func Raw(raw []byte) wire.PushedRecord {
	h, err := wire.RecordHash(raw)
	if err != nil {
		panic(err)
	}
	return wire.PushedRecord{SHA256: h, Record: raw}
}

// Request wraps records in a push request.
func Request(pushID string, recs ...wire.PushedRecord) wire.PushRequest {
	return wire.PushRequest{SchemaVersion: wire.Version, PushID: pushID, Client: wire.Client{Version: "0.9.0", Commit: "abc1234"}, Records: recs}
}

// RawUnchecked pairs raw with the hash of its bytes when they are not JSON
// (so a test reaches the server's own checks), else with RecordHash.
func RawUnchecked(raw []byte) wire.PushedRecord {
	if h, err := wire.RecordHash(raw); err == nil {
		return wire.PushedRecord{SHA256: h, Record: raw}
	}
	sum := sha256.Sum256(raw)
	return wire.PushedRecord{SHA256: hex.EncodeToString(sum[:]), Record: raw}
}
