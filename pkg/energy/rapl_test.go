package energy

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeRAPLTree builds a fake powercap sysfs tree (no RAPL exists on the test
// machine): one package with core and dram sub-zones, and a psys zone.
func writeRAPLTree(t *testing.T, maxRange uint64) string {
	t.Helper()
	root := t.TempDir()
	zone := func(rel, name string, energy uint64) {
		d := filepath.Join(root, "class/powercap", rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range map[string]string{"name": name, "energy_uj": strconv.FormatUint(energy, 10), "max_energy_range_uj": strconv.FormatUint(maxRange, 10)} {
			if err := os.WriteFile(filepath.Join(d, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	zone("intel-rapl:0", "package-0", 1000)
	zone("intel-rapl:0:0", "core", 500)
	zone("intel-rapl:0:1", "dram", 200)
	zone("intel-rapl:1", "psys", 9000)
	return root
}

func setEnergy(t *testing.T, root, rel string, v uint64) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "class/powercap", rel, "energy_uj"), []byte(strconv.FormatUint(v, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRAPLDomainsAndWrapAround(t *testing.T) {
	root := writeRAPLTree(t, 1_000_000)
	s, err := OpenRAPL(RAPLOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	chs := s.Channels()
	var ids []string
	for _, c := range chs {
		ids = append(ids, c.ID+"/"+c.Kind+"/"+c.SubsetOf)
	}
	want := "rapl:package-0/package/ rapl:core-0/core/rapl:package-0 rapl:dram-0/dram/"
	if got := strings.Join(ids, " "); got != want {
		t.Fatalf("channels = %q, want %q (psys skipped when packages exist)", got, want)
	}
	dst := make([]Sample, len(chs))
	read := func() {
		for i := range dst {
			dst[i].Reset(0)
		}
		if err := s.Read(dst, ReadAux); err != nil {
			t.Fatal(err)
		}
	}
	read() // zero point
	if dst[0].EnergyJ != 0 || dst[0].PowerW == dst[0].PowerW {
		t.Fatalf("first sample = %+v, want 0 J and NaN power", dst[0])
	}
	setEnergy(t, root, "intel-rapl:0", 999_000)
	time.Sleep(2 * time.Millisecond)
	read()
	if dst[0].EnergyJ != 0.998 || !(dst[0].PowerW > 0) {
		t.Fatalf("after +998000 µJ: %+v", dst[0])
	}
	// Wrap: 999000 → 1000 past max_energy_range_uj 1e6 is +2000 µJ.
	setEnergy(t, root, "intel-rapl:0", 1000)
	read()
	if got := dst[0].EnergyJ; got != 1.0 {
		t.Fatalf("after wrap: %v J, want 1.0", got)
	}
}

// faultFS wraps a file system and fails opens of matching paths: tests run
// as root, so permission denied cannot come from real file modes.
type faultFS struct {
	fs.FS
	match string
	err   error
}

func (f faultFS) Open(name string) (fs.File, error) {
	if strings.Contains(name, f.match) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: f.err}
	}
	return f.FS.Open(name)
}

func TestRAPLPermissionDenied(t *testing.T) {
	root := writeRAPLTree(t, 1_000_000)
	_, err := OpenRAPL(RAPLOptions{Root: root, FS: faultFS{os.DirFS(root), "energy_uj", fs.ErrPermission}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	for _, want := range []string{"permission denied", "chmod o+r", "run llem as root", "udev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRAPLMissingTree(t *testing.T) {
	_, err := OpenRAPL(RAPLOptions{Root: t.TempDir()})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "class/powercap") {
		t.Fatalf("err = %v", err)
	}
}

// noReaderAtFS hides ReadAt so the sensor takes its reopen path.
type noReaderAtFS struct{ fs.FS }

type plainFile struct{ fs.File }

func (n noReaderAtFS) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return f, nil
	}
	return plainFile{f}, nil
}

func TestRAPLReopenPathAndReadFailure(t *testing.T) {
	root := writeRAPLTree(t, 1_000_000)
	s, err := OpenRAPL(RAPLOptions{FS: noReaderAtFS{os.DirFS(root)}})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]Sample, 3)
	if err := s.Read(dst, 0); err != nil {
		t.Fatal(err)
	}
	setEnergy(t, root, "intel-rapl:0:1", 700)
	if err := s.Read(dst, 0); err != nil || dst[2].EnergyJ != 0.0005 {
		t.Fatalf("dram after +500 µJ: %v J, err %v", dst[2].EnergyJ, err)
	}
	if err := os.Remove(filepath.Join(root, "class/powercap/intel-rapl:0:1/energy_uj")); err != nil {
		t.Fatal(err)
	}
	err = s.Read(dst, 0)
	var ce *ChannelError
	if !errors.As(err, &ce) || ce.Index != 2 {
		t.Fatalf("err = %v, want a channel error for dram (index 2)", err)
	}
}

func TestReadMarksUnreadFields(t *testing.T) {
	root := writeRAPLTree(t, 1<<32)
	s, err := OpenRAPL(RAPLOptions{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]Sample, 3) // zero values, as a careless caller passes them
	if err := s.Read(dst, ReadAux); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(dst[0].TempC) || dst[0].ThrottleReasons != -1 {
		t.Errorf("RAPL left a zero temperature/throttle: %+v", dst[0])
	}
}
