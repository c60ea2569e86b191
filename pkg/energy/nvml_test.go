//go:build cgo

package energy

import (
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// fakeGPU is the hardware behind a go-nvml mock device (no GPU exists on the
// test machine): every batched read advances the energy counter by stepMJ.
type fakeGPU struct {
	mu        sync.Mutex
	reads     int
	energyMJ  uint64
	stepMJ    uint64
	powerMW   uint32
	noCounter bool        // field 83 NOT_SUPPORTED (pre-Volta)
	noInstant bool        // field 186 NOT_SUPPORTED
	failAfter int         // >0: GetFieldValues fails from this read on
	failRet   nvml.Return // the failure
}

func (g *fakeGPU) install(d *server.Device) {
	d.GetFieldValuesFunc = func(fv []nvml.FieldValue) nvml.Return {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.reads++
		if g.failAfter > 0 && g.reads >= g.failAfter {
			return g.failRet
		}
		g.energyMJ += g.stepMJ
		for i := range fv {
			switch fv[i].FieldId {
			case nvml.FI_DEV_TOTAL_ENERGY_CONSUMPTION:
				if g.noCounter {
					fv[i].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
					continue
				}
				fv[i].ValueType = uint32(nvml.VALUE_TYPE_UNSIGNED_LONG_LONG)
				binary.LittleEndian.PutUint64(fv[i].Value[:], g.energyMJ)
			case nvml.FI_DEV_POWER_INSTANT:
				if g.noInstant {
					fv[i].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
					continue
				}
				fv[i].ValueType = uint32(nvml.VALUE_TYPE_UNSIGNED_INT)
				binary.LittleEndian.PutUint32(fv[i].Value[:4], g.powerMW)
			default:
				fv[i].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
			}
		}
		return nvml.SUCCESS
	}
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
		if g.noCounter {
			return 0, nvml.ERROR_NOT_SUPPORTED
		}
		return g.energyMJ, nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return g.powerMW, nvml.SUCCESS }
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 700000, nvml.SUCCESS }
	d.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) { return 700000, nvml.SUCCESS }
	d.GetPowerManagementDefaultLimitFunc = func() (uint32, nvml.Return) { return 700000, nvml.SUCCESS }
	d.GetPowerManagementLimitConstraintsFunc = func() (uint32, uint32, nvml.Return) { return 200000, 700000, nvml.SUCCESS }
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) { return 55, nvml.SUCCESS }
	d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		if c == nvml.CLOCK_SM {
			return 1980, nvml.SUCCESS
		}
		return 2619, nvml.SUCCESS
	}
	d.GetMaxClockInfoFunc = d.GetClockInfoFunc
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 97}, nvml.SUCCESS }
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) { return ThrottleSwPowerCap, nvml.SUCCESS }
	d.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return nvml.FEATURE_ENABLED, nvml.SUCCESS }
	d.GetEccModeFunc = func() (nvml.EnableState, nvml.EnableState, nvml.Return) {
		return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, nvml.SUCCESS
	}
}

// newMockH100s returns a mock DGX H100 with every device backed by a fakeGPU.
func newMockH100s(t *testing.T) (*server.Server, []*fakeGPU) {
	t.Helper()
	s := dgxh100.New()
	var gs []*fakeGPU
	for _, d := range s.Devices {
		g := &fakeGPU{energyMJ: 5_000_000, stepMJ: 70, powerMW: 700_000}
		g.install(d.(*server.Device))
		gs = append(gs, g)
	}
	return s, gs
}

func uuidOf(t *testing.T, d nvml.Device) string {
	t.Helper()
	u, ret := d.GetUUID()
	if ret != nvml.SUCCESS {
		t.Fatal(ret)
	}
	return u
}

func TestNVMLAllGPUsCounter(t *testing.T) {
	lib, _ := newMockH100s(t)
	s, err := OpenNVML(NVMLOptions{Lib: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chs := s.Channels()
	if len(chs) != 8 {
		t.Fatalf("channels = %d, want 8", len(chs))
	}
	for i, c := range chs {
		if c.Method != MethodCounter || !c.HasCounter || c.CounterPeriodNs != nvmlCounterPeriodNs {
			t.Errorf("gpu %d: method %s counter %v period %d", i, c.Method, c.HasCounter, c.CounterPeriodNs)
		}
		if c.ID != "gpu:"+uuidOf(t, lib.Devices[i]) || c.MaxPowerW != 700 || c.Kind != "gpu" {
			t.Errorf("gpu %d: %+v", i, c)
		}
	}
	dst := make([]Sample, len(chs))
	for i := range dst {
		dst[i].Reset(0)
	}
	if err := s.Read(dst, ReadAux|ReadCounter); err != nil {
		t.Fatal(err)
	}
	if err := s.Read(dst, ReadAux|ReadCounter); err != nil {
		t.Fatal(err)
	}
	got := dst[0]
	// First read is the zero point; the second advanced by one 70 mJ step.
	if got.EnergyJ != 0.07 || got.PowerW != 700 || got.TempC != 55 || got.SMClockMHz != 1980 ||
		got.MemClockMHz != 2619 || got.UtilPct != 97 || got.ThrottleReasons != ThrottleSwPowerCap || got.MemUsedBytes != 0 {
		t.Errorf("sample = %+v", got)
	}
	if got.TNs == 0 {
		t.Error("sample has no timestamp")
	}
}

func TestNVMLReadWithoutAuxLeavesFieldsUnread(t *testing.T) {
	lib, _ := newMockH100s(t)
	s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: "0", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	dst := []Sample{{}}
	dst[0].Reset(0)
	if err := s.Read(dst, ReadCounter); err != nil {
		t.Fatal(err)
	}
	if dst[0].PowerW != 700 || dst[0].TempC == dst[0].TempC || dst[0].ThrottleReasons != -1 {
		t.Errorf("aux fields read without aux: %+v", dst[0])
	}
}

func TestNVMLVisibleDevices(t *testing.T) {
	lib, _ := newMockH100s(t)
	u3 := uuidOf(t, lib.Devices[3])
	u5 := uuidOf(t, lib.Devices[5])
	tests := []struct {
		name, env string
		want      []int
		wantErr   string
	}{
		{"uuid and prefix", u3 + "," + u5[:12], []int{3, 5}, ""},
		{"indices deduplicated", "1,1,2", []int{1, 2}, ""},
		{"index and same gpu by uuid", "3," + u3, []int{3}, ""},
		{"invalid entry ends the list", "2,foo,4", []int{2}, ""},
		{"index out of range", "9", nil, "NVML sees 8 GPUs"},
		{"unknown uuid", "GPU-00000000-dead", nil, "matches no GPU"},
		{"ambiguous prefix", "GPU-", nil, "more than one GPU"},
		{"empty selects none", "", nil, "no GPU selected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: tt.env, VisibleSet: true})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, c := range s.Channels() {
				got = append(got, c.Index)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got gpus %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got gpus %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestNVMLPreVoltaIntegratesPower(t *testing.T) {
	lib, gs := newMockH100s(t)
	d := lib.Devices[0].(*server.Device)
	d.GetArchitectureFunc = func() (nvml.DeviceArchitecture, nvml.Return) { return nvml.DEVICE_ARCH_PASCAL, nvml.SUCCESS }
	gs[0].noCounter = true
	s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: "0,1", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	chs := s.Channels()
	if chs[0].Method != MethodPowerIntegration || chs[0].HasCounter {
		t.Errorf("pre-Volta gpu: %+v", chs[0])
	}
	if chs[1].Method != MethodCounter {
		t.Errorf("hopper gpu: %+v", chs[1])
	}
	if !strings.Contains(strings.Join(chs[0].Notes, " "), "pre-Volta") {
		t.Errorf("notes = %v", chs[0].Notes)
	}
	dst := make([]Sample, 2)
	dst[0].Reset(0)
	dst[1].Reset(0)
	if err := s.Read(dst, ReadCounter); err != nil {
		t.Fatal(err)
	}
	if dst[0].EnergyJ == dst[0].EnergyJ || dst[0].PowerW != 700 {
		t.Errorf("pre-Volta sample = %+v (want NaN energy, 700 W)", dst[0])
	}
	// Auto selection reports integration when any selected GPU lacks a counter.
	_, sel, err := Open(Config{Sensor: "auto", NVML: NVMLOptions{Lib: lib, VisibleDevices: "0,1", VisibleSet: true}})
	if err != nil {
		t.Fatal(err)
	}
	if sel.Method != MethodPowerIntegration || !strings.Contains(sel.Reason, "pre-Volta") {
		t.Errorf("selection = %+v", sel)
	}
}

func TestNVMLNoInstantPowerFallsBackToAverageWithCaveat(t *testing.T) {
	lib, gs := newMockH100s(t)
	gs[0].noInstant = true
	s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: "0", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Channels()[0]
	if len(c.Warnings) != 1 || c.Warnings[0].Code != CaveatAveragePower {
		t.Errorf("warnings = %+v", c.Warnings)
	}
}

func TestNVMLMIG(t *testing.T) {
	lib, _ := newMockH100s(t)
	parent := lib.Devices[2].(*server.Device)
	migUUID := "MIG-11111111-2222-3333-4444-555555555555"
	mig := &mock.Device{
		GetDeviceHandleFromMigDeviceHandleFunc: func() (nvml.Device, nvml.Return) { return parent, nvml.SUCCESS },
	}
	byUUID := lib.DeviceGetHandleByUUIDFunc
	lib.DeviceGetHandleByUUIDFunc = func(u string) (nvml.Device, nvml.Return) {
		if u == migUUID {
			return mig, nvml.SUCCESS
		}
		return byUUID(u)
	}
	s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: migUUID, VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	chs := s.Channels()
	if len(chs) != 1 || chs[0].Index != 2 {
		t.Fatalf("channels = %+v, want the parent gpu 2", chs)
	}
	if len(chs[0].Warnings) != 1 || chs[0].Warnings[0].Code != CaveatMIGParent || !strings.Contains(chs[0].Warnings[0].Message, migUUID) {
		t.Errorf("warnings = %+v", chs[0].Warnings)
	}

	// A whole GPU in MIG mode gets the same caveat.
	parent.SetMigMode(nvml.DEVICE_MIG_ENABLE)
	s, err = OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: "2", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	if w := s.Channels()[0].Warnings; len(w) != 1 || w[0].Code != CaveatMIGParent {
		t.Errorf("MIG-mode gpu warnings = %+v", w)
	}
}

func TestNVMLDeviceErrorsMidRun(t *testing.T) {
	lib, gs := newMockH100s(t)
	gs[1].failAfter, gs[1].failRet = 4, nvml.ERROR_GPU_IS_LOST
	s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: "0,1", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	sm := NewSampler(s, SamplerOptions{Interval: 1e6, Capacity: 16})
	for i := 0; i < 6; i++ {
		sm.mu.Lock()
		sm.sampleLocked(ReadAux | ReadCounter)
		sm.mu.Unlock()
	}
	tl := sm.Snapshot()
	ok, bad := tl.Channels[0], tl.Channels[1]
	if ok.Errors != 0 || len(ok.Samples) != 6 || ok.Samples[5].EnergyJ != 5*0.07 {
		t.Errorf("healthy gpu: errors %d, samples %d, last %+v", ok.Errors, len(ok.Samples), ok.Samples[len(ok.Samples)-1])
	}
	// Probe (read 1) + 6 samples: reads 4..7 fail, so samples 3..6 (index 2..5) are unread.
	if bad.Errors != 4 || !strings.Contains(bad.LastError, "ERROR_GPU_IS_LOST") {
		t.Errorf("failing gpu: errors %d, last %q", bad.Errors, bad.LastError)
	}
	if e := bad.Samples[5].EnergyJ; e == e {
		t.Errorf("failed read left energy %v, want NaN", e)
	}
	if e := bad.Samples[1].EnergyJ; e != 0.07 {
		t.Errorf("read before the failure: energy %v, want 0.07", e)
	}
}

func TestNVMLInitFailureCallsNothingElse(t *testing.T) {
	// Every other mock function is nil and panics if called: a call after a
	// failed Init would kill a real process.
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }}
	_, err := OpenNVML(NVMLOptions{Lib: lib})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "libnvidia-ml.so.1 not found") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ProbeNVML(NVMLOptions{Lib: lib}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("probe err = %v", err)
	}
	if len(lib.ShutdownCalls()) != 0 {
		t.Error("Shutdown called after a failed Init")
	}
}

func TestProbeNVML(t *testing.T) {
	lib, gs := newMockH100s(t)
	gs[0].noCounter = true
	lib.Devices[0].(*server.Device).GetArchitectureFunc = func() (nvml.DeviceArchitecture, nvml.Return) {
		return nvml.DEVICE_ARCH_PASCAL, nvml.SUCCESS
	}
	info, err := ProbeNVML(NVMLOptions{Lib: lib, VisibleDevices: "1", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.DriverVersion != "550.54.15" || info.CUDADriverVersion != "12.4" || len(info.GPUs) != 8 {
		t.Fatalf("info = %+v", info)
	}
	g := info.GPUs[1]
	if g.Name != "NVIDIA H100 80GB HBM3" || g.Architecture != "hopper" || !g.Selected || !g.HasEnergyCounter ||
		!g.HasInstantPower || *g.PowerLimitW != 700 || *g.MinPowerLimitW != 200 || !*g.PersistenceMode ||
		!*g.ECCEnabled || *g.MIGEnabled || *g.SMClockMHz != 1980 || g.ComputeCapability != "9.0" {
		t.Errorf("gpu 1 = %+v", g)
	}
	if info.GPUs[0].Selected || info.GPUs[0].HasEnergyCounter || info.GPUs[0].Architecture != "pascal" {
		t.Errorf("gpu 0 = %+v", info.GPUs[0])
	}
	if len(lib.ShutdownCalls()) != 1 {
		t.Errorf("shutdown calls = %d, want 1", len(lib.ShutdownCalls()))
	}
}

func TestOpenAutoPrefersNVMLCounter(t *testing.T) {
	lib, _ := newMockH100s(t)
	s, sel, err := Open(Config{Sensor: "zeus", NVML: NVMLOptions{Lib: lib, VisibleDevices: "0", VisibleSet: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if sel.Sensor != "nvml" || sel.Method != MethodCounter || sel.Requested != "zeus" || len(sel.Notes) == 0 || !strings.Contains(sel.Notes[0], "alias") {
		t.Errorf("selection = %+v", sel)
	}
	_, sel, err = Open(Config{NVML: NVMLOptions{Lib: lib, VisibleDevices: "0", VisibleSet: true}})
	if err != nil || sel.Sensor != "nvml" || !strings.Contains(sel.Reason, "energy counter") {
		t.Errorf("auto selection = %+v, %v", sel, err)
	}
}

func TestNVMLCounterOnlyWhenAsked(t *testing.T) {
	lib, _ := newMockH100s(t)
	var asked []int
	d := lib.Devices[0].(*server.Device)
	inner := d.GetFieldValuesFunc
	d.GetFieldValuesFunc = func(fv []nvml.FieldValue) nvml.Return {
		n := 0
		for _, f := range fv {
			if f.FieldId == nvml.FI_DEV_TOTAL_ENERGY_CONSUMPTION {
				n++
			}
		}
		asked = append(asked, n)
		return inner(fv)
	}
	s, err := OpenNVML(NVMLOptions{Lib: lib, VisibleDevices: "0", VisibleSet: true})
	if err != nil {
		t.Fatal(err)
	}
	asked = nil // forget the probe
	dst := make([]Sample, 1)
	for _, mode := range []ReadMode{ReadCounter, 0, ReadAux, ReadCounter | ReadAux} {
		dst[0].Reset(0)
		if err := s.Read(dst, mode); err != nil {
			t.Fatal(err)
		}
		if got := dst[0].EnergyJ == dst[0].EnergyJ; got != (mode&ReadCounter != 0) {
			t.Errorf("mode %b: energy read = %v", mode, got)
		}
		if dst[0].PowerW != 700 {
			t.Errorf("mode %b: power %v", mode, dst[0].PowerW)
		}
	}
	if want := []int{1, 0, 0, 1}; len(asked) != 4 || asked[0] != 1 || asked[1] != 0 || asked[2] != 0 || asked[3] != 1 {
		t.Errorf("energy field requested %v, want %v", asked, want)
	}
}
