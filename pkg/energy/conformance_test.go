package energy_test

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/energy/sensortest"
)

// copySysfs copies the recorded tree (testdata/sysfs, see its README) to a
// temporary directory, with its real names, so counters can move and files
// can break.
func copySysfs(t *testing.T) string {
	t.Helper()
	return sensortest.SysfsFixture(t, "testdata/sysfs")
}

func readU(t *testing.T, p string) uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writeU(t *testing.T, p string, v uint64) {
	t.Helper()
	if err := os.WriteFile(p, []byte(strconv.FormatUint(v, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deniedFS answers every read of an energy or power file with EACCES, as
// energy_uj is for non-root users since Linux 5.10 (CVE-2020-8694).
type deniedFS struct{ fs.FS }

func (d deniedFS) Open(name string) (fs.File, error) {
	b := filepath.Base(name)
	if strings.Contains(b, "_") && (strings.HasPrefix(b, "energy") || strings.HasPrefix(b, "power") && !strings.HasSuffix(b, "_oem_info")) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

func (d deniedFS) ReadLink(name string) (string, error)   { return fs.ReadLink(d.FS, name) }
func (d deniedFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(d.FS, name) }

// sysfsHarness drives a sensor over a copied tree; files[i] is channel i's
// file, wrap the counter's wrap point (µJ).
func sysfsHarness(open func(root string, fsys fs.FS) (energy.Sensor, error), files func(root string) []string, wrap func(root string, i int) uint64, hint string) sensortest.Harness {
	var root string
	saved := map[string][]byte{}
	return sensortest.Harness{
		Open: func(t *testing.T) (energy.Sensor, error) {
			root = copySysfs(t)
			return open(root, nil)
		},
		OpenMissing: func(t *testing.T) error { _, err := open(t.TempDir(), nil); return err },
		OpenDenied: func(t *testing.T) error {
			r := copySysfs(t)
			_, err := open(r, deniedFS{os.DirFS(r)})
			return err
		},
		DeniedHint: hint,
		Step: func(t *testing.T, i int, j float64) {
			f := files(root)[i]
			if strings.HasPrefix(filepath.Base(f), "power") {
				writeU(t, f, uint64(j*1e6))
				return
			}
			v := readU(t, f) + uint64(j*1e6)
			if w := wrap(root, i); v >= w {
				v -= w
			}
			writeU(t, f, v)
		},
		NearWrap: func(t *testing.T, i int, j float64) { writeU(t, files(root)[i], wrap(root, i)-uint64(j*1e6)) },
		Break: func(t *testing.T, i int) {
			f := files(root)[i]
			saved[f], _ = os.ReadFile(f)
			os.WriteFile(f, []byte("garbage\n"), 0o644)
		},
		Heal: func(t *testing.T, i int) {
			f := files(root)[i]
			os.WriteFile(f, saved[f], 0o644)
		},
	}
}

func TestConformanceRAPL(t *testing.T) {
	sensortest.Run(t, sysfsHarness(
		func(root string, fsys fs.FS) (energy.Sensor, error) {
			return energy.OpenRAPL(energy.RAPLOptions{Root: root, FS: fsys})
		},
		func(root string) []string {
			var out []string
			for _, z := range []string{"intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:0:2"} {
				out = append(out, filepath.Join(root, "class/powercap", z, "energy_uj"))
			}
			return out
		},
		func(root string, i int) uint64 { return 262143328850 },
		"run llem as root"))
}

func hwmonFiles(root string) []string {
	h := filepath.Join(root, "class/hwmon")
	return []string{h + "/hwmon0/power1_average", h + "/hwmon1/energy1_input", h + "/hwmon2/energy1_input", h + "/hwmon2/energy2_input",
		h + "/hwmon4/power1_average", h + "/hwmon5/power1_average", h + "/hwmon6/power1_average"}
}

func TestConformanceHwmon(t *testing.T) {
	sensortest.Run(t, sysfsHarness(
		func(root string, fsys fs.FS) (energy.Sensor, error) {
			return energy.OpenHwmon(energy.HwmonOptions{Root: root, FS: fsys})
		},
		hwmonFiles,
		func(root string, i int) uint64 { return 1 << 32 }, // the fixture's counters are below 2^32: a 32-bit wrap
		"run llem as root"))
}

func TestHwmonFixtureChannels(t *testing.T) {
	s, err := energy.OpenHwmon(energy.HwmonOptions{Root: copySysfs(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for _, c := range s.Channels() {
		got = append(got, strings.Join([]string{c.ID, energy.DomainOf(c), string(c.Method), c.SubsetOf}, "|"))
	}
	want := []string{
		"hwmon:amdgpu:0000:c1:00.0:power1|accelerator|power-integration|",
		"hwmon:i915:0000:00:02.0:energy1|accelerator|counter|",
		"hwmon:xe:0000:03:00.0:energy1|accelerator|counter|",
		"hwmon:xe:0000:03:00.0:energy2|accelerator|counter|hwmon:xe:0000:03:00.0:energy1",
		"hwmon:power_meter:NVDA2008:00:power1|cpu|power-integration|",
		"hwmon:power_meter:NVDA2008:01:power1|cpu|power-integration|hwmon:power_meter:NVDA2008:00:power1",
		"hwmon:power_meter:NVDA2008:02:power1|cpu|power-integration|hwmon:power_meter:NVDA2008:00:power1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("channels:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(s.Skipped) != 1 || !strings.Contains(s.Skipped[0], "coretemp") {
		t.Errorf("skipped = %q", s.Skipped)
	}
	if c := s.Channels()[0]; len(c.Warnings) != 1 || c.Warnings[0].Code != energy.CaveatAveragePower {
		t.Errorf("amdgpu power1_average without a caveat: %+v", c)
	}
	// AMD SMI measures 0000:c1:00.0: hwmon leaves it out.
	s2, err := energy.OpenHwmon(energy.HwmonOptions{Root: copySysfs(t), SkipDevices: []string{"0000:c1:00.0"}})
	if err != nil || strings.HasPrefix(s2.Channels()[0].ID, "hwmon:amdgpu") {
		t.Errorf("SkipDevices ignored: %v", err)
	}
}

// fakeAMDSMI replays recorded AMD SMI values: two physical GPUs, the second
// partitioned into two compute partitions (MI300X CPX-style: one BDF, the
// partition id in bits 28–31), resolution 15.259 µJ per count as
// amdsmi_get_energy_count reports on MI300X.
type fakeAMDSMI struct {
	mu     sync.Mutex
	init   energy.AMDSMIStatus
	counts map[uintptr]uint64
	broken map[uintptr]bool
	down   bool
}

const amdRes = 15.259

func newFakeAMDSMI() *fakeAMDSMI {
	return &fakeAMDSMI{counts: map[uintptr]uint64{1: 1_000_000, 2: 5_000_000, 3: 5_000_000}, broken: map[uintptr]bool{}}
}

func (f *fakeAMDSMI) Init() energy.AMDSMIStatus     { return f.init }
func (f *fakeAMDSMI) ShutDown() energy.AMDSMIStatus { f.down = true; return energy.AMDSMIStatusSuccess }
func (f *fakeAMDSMI) GPUs() ([]uintptr, energy.AMDSMIStatus) {
	if f.counts == nil {
		return nil, energy.AMDSMIStatusSuccess
	}
	return []uintptr{1, 2, 3}, energy.AMDSMIStatusSuccess
}
func (f *fakeAMDSMI) UUID(h uintptr) (string, energy.AMDSMIStatus) {
	return []string{"", "a2ff740f-0000-1000-80ea-e05c945bb3b2", "41ff740f-0000-1000-8046-6d2f1f3a9b1c", "41ff740f-0000-1000-8046-6d2f1f3a9b1d"}[h], 0
}
func (f *fakeAMDSMI) BDF(h uintptr) (uint64, energy.AMDSMIStatus) {
	return []uint64{0, 0x0000_0000_0000_0c00 | 0x11<<8, 0x0000_0000_0000_1b00, 1<<28 | 0x0000_0000_0000_1b00}[h], 0
}
func (f *fakeAMDSMI) EnergyCount(h uintptr) (uint64, float32, uint64, energy.AMDSMIStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken[h] {
		return 0, 0, 0, 8 // AMDSMI_STATUS_BUSY-like failure
	}
	if h == 3 {
		return 0, 0, 0, energy.AMDSMIStatusNotSupported // only the first partition reports the GPU's energy
	}
	return f.counts[h], amdRes, 0, energy.AMDSMIStatusSuccess
}

func TestConformanceAMDSMI(t *testing.T) {
	var lib *fakeAMDSMI
	handle := func(i int) uintptr { return []uintptr{1, 2}[i] }
	sensortest.Run(t, sensortest.Harness{
		Open: func(t *testing.T) (energy.Sensor, error) {
			lib = newFakeAMDSMI()
			return energy.OpenAMDSMI(energy.AMDSMIOptions{Lib: lib})
		},
		OpenMissing: func(t *testing.T) error {
			l := newFakeAMDSMI()
			l.counts = nil
			_, err := energy.OpenAMDSMI(energy.AMDSMIOptions{Lib: l})
			return err
		},
		OpenDenied: func(t *testing.T) error {
			l := newFakeAMDSMI()
			l.init = energy.AMDSMIStatusNoPerm
			_, err := energy.OpenAMDSMI(energy.AMDSMIOptions{Lib: l})
			return err
		},
		DeniedHint: "render and video groups",
		Step: func(t *testing.T, i int, j float64) {
			lib.mu.Lock()
			defer lib.mu.Unlock()
			c := lib.counts[handle(i)] + uint64(math.Round(j*1e6/amdRes))
			lib.counts[handle(i)] = c % (1 << 32)
		},
		NearWrap: func(t *testing.T, i int, j float64) {
			lib.mu.Lock()
			defer lib.mu.Unlock()
			lib.counts[handle(i)] = 1<<32 - uint64(math.Round(j*1e6/amdRes))
		},
		Break:     func(t *testing.T, i int) { lib.mu.Lock(); lib.broken[handle(i)] = true; lib.mu.Unlock() },
		Heal:      func(t *testing.T, i int) { lib.mu.Lock(); lib.broken[handle(i)] = false; lib.mu.Unlock() },
		Tolerance: 2 * amdRes / 1e6,
	})
}

func TestAMDSMIPartitionsMeasureTheParent(t *testing.T) {
	s, err := energy.OpenAMDSMI(energy.AMDSMIOptions{Lib: newFakeAMDSMI(), VisibleSet: true, VisibleDevices: "2"})
	if err != nil {
		t.Fatal(err)
	}
	chs := s.Channels()
	if len(chs) != 1 || chs[0].Device != "0000:1b:00.0" || chs[0].ID != "gpu:41ff740f-0000-1000-8046-6d2f1f3a9b1c" {
		t.Fatalf("channels = %+v", chs)
	}
	if len(chs[0].Warnings) != 1 || chs[0].Warnings[0].Code != energy.CaveatPartitionParent {
		t.Errorf("partitioned GPU without %s: %+v", energy.CaveatPartitionParent, chs[0].Warnings)
	}
}

func TestAMDSMILibraryAbsentIsUnavailable(t *testing.T) {
	_, err := energy.OpenAMDSMI(energy.AMDSMIOptions{LibPath: filepath.Join(t.TempDir(), "libamd_smi.so")})
	want := "libamd_smi.so not found"
	if !energy.CgoEnabled {
		want = "built without cgo"
	}
	if !errors.Is(err, energy.ErrUnavailable) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v", err)
	}
}

func TestPowermetricsFixture(t *testing.T) {
	f, err := os.Open("testdata/powermetrics/m4max-cpu_power-gpu_power.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []energy.PowermetricsSample
	if err := energy.ParsePowermetrics(f, func(s energy.PowermetricsSample) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("samples = %+v", got)
	}
	g := got[0]
	if g.ElapsedMs != 5021.96 || g.CPUW != 0.954 || g.GPUW != 0.028 || g.ANEW != 0 || g.CombinedW != 0.983 {
		t.Errorf("sample = %+v", g)
	}
}

func TestConformancePowermetrics(t *testing.T) {
	root := func() int { return 0 }
	sensortest.Run(t, sensortest.Harness{
		Open: func(t *testing.T) (energy.Sensor, error) {
			f, err := os.Open("testdata/powermetrics/m4max-cpu_power-gpu_power.txt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return energy.OpenPowermetrics(energy.PowermetricsOptions{Source: f, Geteuid: root})
		},
		OpenMissing: func(t *testing.T) error {
			_, err := energy.OpenPowermetrics(energy.PowermetricsOptions{Path: filepath.Join(t.TempDir(), "powermetrics"), Geteuid: root})
			return err
		},
		OpenDenied: func(t *testing.T) error {
			_, err := energy.OpenPowermetrics(energy.PowermetricsOptions{Source: strings.NewReader(""), Geteuid: func() int { return 501 }})
			return err
		},
		DeniedHint: "needs root",
	})
}
