// Package sensortest is the conformance suite every energy.Sensor passes on
// recorded fixtures: counters that advance and wrap, a missing device, a
// permission error, read errors in the middle of a window, and sample
// timestamps aligned with the read. Each sensor's test supplies a Harness
// over its fixture (a copied sysfs tree, recorded library values, recorded
// tool output) and calls Run.
package sensortest

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
)

// Harness drives one sensor's fixture. Methods a sensor cannot support
// (a tool's output has no permission case) are left nil in Caps.
type Harness struct {
	// Open opens the sensor on a fresh, healthy fixture.
	Open func(t *testing.T) (energy.Sensor, error)
	// OpenMissing opens it where the device is absent; the error must wrap
	// ErrUnavailable.
	OpenMissing func(t *testing.T) error
	// OpenDenied opens it where reading is not permitted; the error must
	// wrap ErrUnavailable and name the fix (DeniedHint).
	OpenDenied func(t *testing.T) error
	DeniedHint string
	// Step advances channel i's energy by j joules (counters) or sets its
	// power to j watts (power-only channels) before the next read.
	Step func(t *testing.T, i int, j float64)
	// NearWrap puts channel i's counter j joules below its wrap point; nil
	// when the fixture's counter cannot wrap.
	NearWrap func(t *testing.T, i int, j float64)
	// Break makes the next reads of channel i fail; Heal undoes it.
	Break, Heal func(t *testing.T, i int)
	// Tolerance is the allowed error of a counter step in joules (the
	// counter's resolution); 0 means 1e-6.
	Tolerance float64
}

// Run runs every case Harness supports.
func Run(t *testing.T, h Harness) {
	tol := h.Tolerance
	if tol == 0 {
		tol = 1e-6
	}
	read := func(t *testing.T, s energy.Sensor) ([]energy.Sample, error) {
		dst := make([]energy.Sample, len(s.Channels()))
		for i := range dst {
			dst[i].Reset(0)
		}
		err := s.Read(dst, energy.ReadAux|energy.ReadCounter)
		return dst, err
	}
	open := func(t *testing.T) energy.Sensor {
		t.Helper()
		s, err := h.Open(t)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if len(s.Channels()) == 0 {
			t.Fatal("no channels")
		}
		return s
	}
	counterCh := func(s energy.Sensor) int {
		for i, c := range s.Channels() {
			if c.HasCounter {
				return i
			}
		}
		return -1
	}

	t.Run("channels", func(t *testing.T) {
		s := open(t)
		seen := map[string]bool{}
		for _, c := range s.Channels() {
			if c.ID == "" || seen[c.ID] || c.Sensor != s.Name() || c.Method == "" {
				t.Errorf("bad channel %+v", c)
			}
			seen[c.ID] = true
			if c.SubsetOf != "" && !seen[c.SubsetOf] {
				found := false
				for _, o := range s.Channels() {
					found = found || o.ID == c.SubsetOf
				}
				if !found {
					t.Errorf("%s is a subset of unknown %s", c.ID, c.SubsetOf)
				}
			}
			if d := energy.DomainOf(c); !strings.Contains(strings.Join(energy.Domains, " "), d) {
				t.Errorf("%s: unknown domain %q", c.ID, d)
			}
		}
	})

	t.Run("counter advances", func(t *testing.T) {
		if h.Step == nil {
			t.Skip("fixture cannot advance")
		}
		s := open(t)
		i := counterCh(s)
		if i < 0 {
			t.Skip("no counter channel")
		}
		a, err := read(t, s)
		if err != nil {
			t.Fatal(err)
		}
		h.Step(t, i, 5)
		b, err := read(t, s)
		if err != nil {
			t.Fatal(err)
		}
		if d := b[i].EnergyJ - a[i].EnergyJ; math.Abs(d-5) > tol {
			t.Errorf("counter step = %v J, want 5", d)
		}
		if !(b[i].PowerW > 0) {
			t.Errorf("power after a step = %v, want > 0", b[i].PowerW)
		}
	})

	t.Run("counter wrap", func(t *testing.T) {
		if h.NearWrap == nil {
			t.Skip("fixture counter does not wrap")
		}
		s := open(t)
		i := counterCh(s)
		h.NearWrap(t, i, 2)
		a, err := read(t, s)
		if err != nil {
			t.Fatal(err)
		}
		h.Step(t, i, 5) // crosses the wrap point
		b, err := read(t, s)
		if err != nil {
			t.Fatal(err)
		}
		if d := b[i].EnergyJ - a[i].EnergyJ; math.Abs(d-5) > tol {
			t.Errorf("step across the wrap = %v J, want 5", d)
		}
	})

	t.Run("missing device", func(t *testing.T) {
		if h.OpenMissing == nil {
			t.Skip("no missing-device fixture")
		}
		if err := h.OpenMissing(t); !errors.Is(err, energy.ErrUnavailable) {
			t.Errorf("open without the device: %v, want ErrUnavailable", err)
		}
	})

	t.Run("permission denied", func(t *testing.T) {
		if h.OpenDenied == nil {
			t.Skip("no permission fixture")
		}
		err := h.OpenDenied(t)
		if !errors.Is(err, energy.ErrUnavailable) || !strings.Contains(err.Error(), h.DeniedHint) {
			t.Errorf("open without permission: %v, want ErrUnavailable naming %q", err, h.DeniedHint)
		}
	})

	t.Run("read errors mid-window", func(t *testing.T) {
		if h.Break == nil {
			t.Skip("fixture cannot fail reads")
		}
		s := open(t)
		if _, err := read(t, s); err != nil {
			t.Fatal(err)
		}
		h.Break(t, 0)
		b, err := read(t, s)
		var ce *energy.ChannelError
		if !errors.As(err, &ce) || ce.Index != 0 {
			t.Fatalf("read with channel 0 broken: %v, want a ChannelError for channel 0", err)
		}
		if !math.IsNaN(b[0].PowerW) || !math.IsNaN(b[0].EnergyJ) {
			t.Errorf("broken channel sample = %+v, want unread (NaN)", b[0])
		}
		for i := 1; i < len(b); i++ {
			if math.IsNaN(b[i].PowerW) && math.IsNaN(b[i].EnergyJ) && s.Channels()[i].HasCounter {
				t.Errorf("channel %d unread although only channel 0 broke", i)
			}
		}
		h.Heal(t, 0)
		c, err := read(t, s)
		if err != nil {
			t.Fatalf("read after healing: %v", err)
		}
		if s.Channels()[0].HasCounter && (math.IsNaN(c[0].EnergyJ) || c[0].EnergyJ < 0) {
			t.Errorf("counter after healing = %v", c[0].EnergyJ)
		}
	})

	t.Run("clock alignment", func(t *testing.T) {
		s := open(t)
		read(t, s)
		t0 := clock.Now()
		b, _ := read(t, s)
		t1 := clock.Now()
		for i, x := range b {
			if x.TNs < t0 || x.TNs > t1 {
				t.Errorf("channel %d sample time %d outside its read [%d, %d]", i, x.TNs, t0, t1)
			}
		}
	})
}

// SysfsFixture copies the recorded sysfs tree (pkg/energy/testdata/sysfs,
// see its README) from src to a new temporary directory and returns it,
// with the real names: the tree is committed with every ':' written %3A
// (intel-rapl%3A0, NVDA2008%3A00, symlink targets too), because Go and CUE
// module zips refuse ':' in file paths, and the copy turns them back into
// the ':' of the kernel's names. Tests write to the copy: counters move,
// files break.
func SysfsFixture(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "sys")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, strings.ReplaceAll(rel, "%3A", ":"))
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(strings.ReplaceAll(target, "%3A", ":"), out)
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(out, b, info.Mode().Perm()|0o200)
		}
	})
	if err != nil {
		t.Fatalf("copy the sysfs fixture: %v", err)
	}
	return dst
}
