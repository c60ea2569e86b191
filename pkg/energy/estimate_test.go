package energy

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const cpuinfoEPYC = `processor	: 0
model name	: AMD EPYC 7742 64-Core Processor
physical id	: 0
core id		: 0
flags		: fpu sse2

processor	: 1
model name	: AMD EPYC 7742 64-Core Processor
physical id	: 1
core id		: 0
flags		: fpu sse2
`

func writeProc(t *testing.T, cpuinfo, stat string) string {
	t.Helper()
	root := t.TempDir()
	for name, v := range map[string]string{"cpuinfo": cpuinfo, "meminfo": "MemTotal:       16000000 kB\nMemFree: 1 kB\n", "stat": stat} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestLookupTDP(t *testing.T) {
	tests := []struct {
		model string
		want  string
		tdp   float64
	}{
		{"Intel(R) Xeon(R) Platinum 8480+", "Platinum 8480+", 350},
		{"Intel(R) Xeon(R) Platinum 8468", "Platinum 8468", 350},
		{"AMD EPYC 7742 64-Core Processor", "EPYC 7742", 225},
		{"AMD EPYC 9654 96-Core Processor", "EPYC 9654", 360},
		{"13th Gen Intel(R) Core(TM) i9-13900K", "i9-13900K", 125},
		{"AMD Ryzen 9 7950X 16-Core Processor", "Ryzen 9 7950X", 170},
		{"Intel(R) Xeon(R) Processor", "", 0},
		{"AMD EPYC 77420", "", 0},
	}
	for _, tt := range tests {
		e, ok := LookupTDP(tt.model)
		if ok != (tt.want != "") || e.Model != tt.want || e.TDPW != tt.tdp {
			t.Errorf("LookupTDP(%q) = %+v, %v; want %q %v W", tt.model, e, ok, tt.want, tt.tdp)
		}
	}
}

func TestEstimateFromTDPAndUtilisation(t *testing.T) {
	root := writeProc(t, cpuinfoEPYC, "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n")
	s, err := OpenEstimate(EstimateOptions{ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	chs := s.Channels()
	if chs[0].MaxPowerW != 450 || !strings.Contains(chs[0].Notes[0], "EPYC 7742 225 W/socket × 2 socket") {
		t.Fatalf("cpu channel = %+v", chs[0])
	}
	if chs[0].Method != MethodEstimateTDP || chs[0].Warnings[0].Code != CaveatEstimate {
		t.Errorf("cpu channel method/warnings = %s %+v", chs[0].Method, chs[0].Warnings)
	}
	// 300 more busy jiffies of 400 total since open: 75 % of 450 W.
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu  300 0 200 900 0 0 0 0 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := make([]Sample, 2)
	dst[0].Reset(0)
	dst[1].Reset(0)
	if err := s.Read(dst, ReadAux); err != nil {
		t.Fatal(err)
	}
	if math.Abs(dst[0].PowerW-337.5) > 1e-9 || dst[0].UtilPct != 75 {
		t.Errorf("cpu sample = %+v, want 337.5 W at 75 %%", dst[0])
	}
	wantMem := 16000000 * 1024 / 1e9 * DefaultMemoryWattsPerGB
	if math.Abs(dst[1].PowerW-wantMem) > 1e-9 {
		t.Errorf("memory power = %v, want %v", dst[1].PowerW, wantMem)
	}
}

func TestEstimateOverrideAndUnknownCPU(t *testing.T) {
	unknown := "processor : 0\nmodel name : Intel(R) Xeon(R) Processor\nflags : hypervisor\nprocessor : 1\nmodel name : Intel(R) Xeon(R) Processor\nflags : hypervisor\n"
	root := writeProc(t, unknown, "cpu  1 0 1 8 0 0 0 0\n")
	s, err := OpenEstimate(EstimateOptions{ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Channels()[0]; c.MaxPowerW != 8 || !strings.Contains(c.Notes[0], "not in the TDP table") {
		t.Errorf("unknown cpu channel = %+v", c)
	}
	s, err = OpenEstimate(EstimateOptions{ProcRoot: root, TDPWatts: 65})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Channels()[0]; c.MaxPowerW != 65 || !strings.Contains(c.Notes[0], "user override") {
		t.Errorf("override channel = %+v", c)
	}
}

func TestEstimateVMScalesKnownTDP(t *testing.T) {
	vm := "processor : 0\nmodel name : AMD EPYC 7742 64-Core Processor\nflags : fpu hypervisor\nprocessor : 1\nmodel name : AMD EPYC 7742 64-Core Processor\nflags : fpu hypervisor\n"
	root := writeProc(t, vm, "cpu  1 0 1 8 0 0 0 0\n")
	s, err := OpenEstimate(EstimateOptions{ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Channels()[0]; math.Abs(c.MaxPowerW-225.0*2/128) > 1e-9 {
		t.Errorf("VM share = %v W, want %v", c.MaxPowerW, 225.0*2/128)
	}
}

func TestEstimateUnavailableWithoutProc(t *testing.T) {
	if _, err := OpenEstimate(EstimateOptions{ProcRoot: t.TempDir()}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}
