package result

import (
	"math"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

// TestFillWorkAndPrefillPass: throughput over the window, latency
// percentiles, phase tokens and times, then a prefill pass moving time and
// energy from decode to prefill with the phases still summing to the total.
func TestFillWorkAndPrefillPass(t *testing.T) {
	sum := protocol.Summary{
		Done: &protocol.Done{Requests: 2, InputTokens: 8, OutputTokens: 6},
		Requests: []protocol.Request{
			{StartNs: 0, TTFTNs: 10e6, EndNs: 40e6, OutputTokens: 4, ITLNs: []int64{10e6, 10e6, 10e6}},
			{StartNs: 0, TTFTNs: 20e6, EndNs: 30e6, OutputTokens: 2, ITLNs: []int64{10e6}},
		},
		Batches: []protocol.Batch{{Index: 0, PrefillStartNs: 0, PrefillEndNs: 1e9, DecodeStartNs: 1e9, DecodeEndNs: 3e9, InputTokens: 8}},
	}
	var r Record
	r.FillTiming(sum, 0, 4e9, 0, 0)
	r.FillWork(sum)
	if r.Timing.WindowS != 4 || r.Throughput.OutputTokensPerSec != 1.5 || r.Throughput.RequestsPerSec != 0.5 {
		t.Fatalf("timing %+v throughput %+v", r.Timing, r.Throughput)
	}
	if d := r.Latency.TTFT; d.N != 2 || d.MeanMs != 15 || d.P50Ms != 15 || d.MinMs != 10 || d.MaxMs != 20 {
		t.Errorf("ttft %+v", d)
	}
	if d := r.Latency.TPOT; d.N != 2 || d.MinMs != 10 || d.MaxMs != 10 {
		t.Errorf("tpot %+v", d)
	}
	// Every request's latencies are kept beside the distributions.
	if p := r.Latency.PerRequest; len(p) != 2 || p[0].TTFTMs != 10 || p[0].E2EMs != 40 || p[0].TPOTMs == nil || *p[0].TPOTMs != 10 ||
		p[1].TTFTMs != 20 || p[1].E2EMs != 30 || p[1].OutputTokens != 2 || *p[1].TPOTMs != 10 {
		t.Errorf("per request %+v", p)
	}
	if r.Prefill.Tokens != 8 || r.Prefill.TimeS != 1 || r.Decode.Tokens != 4 || r.Decode.TimeS != 2 || r.Decode.TokensPerSec != 2 {
		t.Errorf("phases %+v %+v", r.Prefill, r.Decode)
	}

	r.SplitPrefillPassTimes(protocol.Interval{StartNs: 0, EndNs: 5e8})
	if r.Prefill.TimeS != 0.5 || r.Decode.TimeS != 1.5 {
		t.Errorf("prefill pass times %+v %+v", r.Prefill, r.Decode)
	}
	if err := r.SplitPrefillPassEnergy(1); err == nil {
		t.Error("split without decode energy: no error")
	}
	r.Decode.EnergyJ = float64Ptr(10)
	if err := r.SplitPrefillPassEnergy(4); err != nil || *r.Prefill.EnergyJ != 4 || *r.Decode.EnergyJ != 6 || *r.Decode.EnergyPerTokenJ != 1.5 {
		t.Errorf("split: %v %+v %+v", err, r.Prefill, r.Decode)
	}
	r.Decode.EnergyJ = float64Ptr(10)
	if err := r.SplitPrefillPassEnergy(12); err != nil || *r.Prefill.EnergyJ != 10 || *r.Decode.EnergyJ != 0 ||
		len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "decode energy set to 0") {
		t.Errorf("pass above the total: %v %+v %+v %q", err, r.Prefill, r.Decode, r.Warnings)
	}
}

func TestLatencyDistPercentiles(t *testing.T) {
	d := latencyDist([]float64{4, 1, 3, 2})
	if d.N != 4 || d.MeanMs != 2.5 || d.P50Ms != 2.5 || math.Abs(d.P90Ms-3.7) > 1e-12 || d.MinMs != 1 || d.MaxMs != 4 {
		t.Errorf("%+v", d)
	}
	if (latencyDist(nil) != Dist{}) {
		t.Error("empty: not zero")
	}
}

func TestFailAndEnergyUnavailable(t *testing.T) {
	var r Record
	r.Fail(RunError{Kind: "crash", Message: "exit 3", ExitCode: 3})
	if r.Status != StatusFailed || r.Error == nil || r.Error.Kind != "crash" || r.Error.ExitCode != 3 {
		t.Errorf("fail: %s %+v", r.Status, r.Error)
	}
	r.MarkEnergyUnavailable("off")
	if r.Energy.Method != "unavailable" || r.Energy.Unavailable != "off" || r.Efficiency.Basis != "none" || len(r.Flags) != 1 || r.Flags[0] != "energy_unavailable" {
		t.Errorf("unavailable: %+v %+v %v", r.Energy, r.Efficiency, r.Flags)
	}
}

// TestFillEnergyDomains: a composite window gives the record its
// all-domains total, the domains the ratios cover, per-domain energy keyed
// by domain, each device's domain (an excluded one marked), and phase
// shares that sum to 1.
func TestFillEnergyDomains(t *testing.T) {
	t.Parallel()
	w := &measure.Window{EnergyJ: 110, AllDomainsJ: 120, EfficiencyDomains: []string{"accelerator", "cpu"},
		Domains: []measure.DomainEnergy{
			{Domain: "accelerator", EnergyJ: 100, InTotal: true},
			{Domain: "cpu", EnergyJ: 10, InTotal: true},
			{Domain: "dram", EnergyJ: 10},
		},
		Devices: []measure.Device{
			{ID: "gpu:a", Kind: "gpu", Domain: "accelerator", Counted: true, InTotal: true, EnergyJ: 100},
			{ID: "rapl:package-0", Kind: "package", Domain: "cpu", Counted: true, InTotal: true, EnergyJ: 10},
			{ID: "rapl:dram-0", Kind: "dram", Domain: "dram", Counted: true, EnergyJ: 10},
		},
		Phases: []measure.PhaseEnergy{
			{Name: "prefill", DurationS: 1, EnergyJ: 20, Share: 20.0 / 110},
			{Name: "decode", DurationS: 3, EnergyJ: 80, Share: 80.0 / 110},
			{Name: "host", DurationS: 0.5, EnergyJ: 10, Share: 10.0 / 110},
		},
	}
	var r Record
	r.FillEnergy(w, nil, &energy.Timeline{})
	en := r.Energy
	if en.AllDomainsJ == nil || *en.AllDomainsJ != 120 || len(en.EfficiencyDomains) != 2 {
		t.Fatalf("totals: %+v", en)
	}
	if en.PerDomainJ["accelerator"] != 100 || en.PerDomainJ["dram"] != 10 || len(en.PerDomainJ) != 3 {
		t.Errorf("per-domain = %v", en.PerDomainJ)
	}
	if len(en.PerDevice) != 3 || en.PerDevice[0].Domain != "accelerator" || en.PerDevice[0].Excluded || !en.PerDevice[2].Excluded {
		t.Errorf("per-device = %+v", en.PerDevice)
	}
	var shares float64
	for _, p := range en.Phases {
		shares += p.Share
	}
	if len(en.Phases) != 3 || math.Abs(shares-1) > 1e-9 {
		t.Errorf("phases = %+v (shares sum %v)", en.Phases, shares)
	}
}

// TestWindowMemory: the record's device memory is each GPU channel's
// highest used memory inside the window (samples outside it ignored), and
// absent when no channel reads memory.
func TestWindowMemory(t *testing.T) {
	t.Parallel()
	ch := func(id string, used ...int64) energy.ChannelTimeline {
		c := energy.ChannelTimeline{Channel: energy.Channel{ID: id, Kind: "gpu"}}
		for i, u := range used {
			c.Samples = append(c.Samples, energy.Sample{TNs: int64(i) * 1e9, MemUsedBytes: u, PowerW: 100})
		}
		return c
	}
	tl := &energy.Timeline{Channels: []energy.ChannelTimeline{
		ch("gpu:a", 1, 5<<30, 7<<30, 6<<30, 99<<30), // the last sample is after the window
		ch("gpu:b", -1, 2<<30, 3<<30, 1<<30, -1),
		ch("estimate:cpu", -1, -1, -1, -1, -1),
	}}
	w := &measure.Window{StartNs: 1e9, EndNs: 3e9}
	m := windowMemory(tl, w)
	if m == nil || m.PerDevice["gpu:a"] != 7<<30 || m.PerDevice["gpu:b"] != 3<<30 || m.PeakUsedBytes != 10<<30 || len(m.PerDevice) != 2 {
		t.Fatalf("memory = %+v", m)
	}
	if m := windowMemory(&energy.Timeline{Channels: tl.Channels[2:]}, w); m != nil {
		t.Fatalf("no GPU channel: %+v", m)
	}
}

// The worker's memory report lands in backend_memory with source backend;
// zero (unknown) fields stay absent, and no report means no section.
func TestFillBackendMemory(t *testing.T) {
	var r Record
	r.FillWork(protocol.Summary{Done: &protocol.Done{Requests: 1, Memory: &protocol.Memory{PeakAllocatedBytes: 10, PeakReservedBytes: 20, Reporter: "torch.cuda"}}})
	m := r.BackendMemory
	if m == nil || m.Source != "backend" || m.Reporter != "torch.cuda" || *m.PeakAllocatedBytes != 10 || *m.PeakReservedBytes != 20 || m.KVCacheBytes != nil || m.WeightsBytes != nil {
		t.Fatalf("backend memory = %+v", m)
	}
	var q Record
	q.FillWork(protocol.Summary{Done: &protocol.Done{Requests: 1}})
	if q.BackendMemory != nil {
		t.Errorf("no report gave %+v", q.BackendMemory)
	}
}
