package energy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// RAPLOptions configure the RAPL sensor.
type RAPLOptions struct {
	// Root is the directory holding class/powercap ("/sys" normally; a
	// container may mount the host's tree elsewhere). Empty means
	// SysfsRoot(): $LLEM_SYSFS_ROOT, else "/sys".
	Root string
	// FS, when set, replaces the operating system's file system rooted at
	// Root (tests pass fake sysfs trees and fault-injecting file systems).
	FS fs.FS
}

const raplDir = "class/powercap"

type raplZone struct {
	dir      string
	file     fs.File // energy_uj kept open when it supports ReadAt, else nil
	maxRange uint64  // max_energy_range_uj: the counter wraps to 0 past this
	ujCounter
	buf [32]byte
}

// RAPLSensor reads Intel/AMD RAPL energy counters from the Linux powercap
// sysfs (package, core, uncore and dram domains), unwrapping energy_uj with
// max_energy_range_uj. Power is the counter's rate between samples.
type RAPLSensor struct {
	fsys     fs.FS
	zones    []*raplZone
	channels []Channel
}

// The RAPL sensor, second in auto's chain.
func init() {
	RegisterSensor(SensorDef{Name: "rapl", AutoRank: 3, Interval: DefaultIntervalRAPL, Open: openRAPLSensor,
		AutoReason: func(Sensor) string { return "no usable NVIDIA or AMD GPU; RAPL energy counters readable" }})
}

func openRAPLSensor(cfg Config) (Sensor, error) {
	s, err := OpenRAPL(cfg.RAPL)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenRAPL finds the RAPL zones. No powercap tree is ErrUnavailable; an
// unreadable energy_uj (root-only since Linux 5.10, CVE-2020-8694) is
// ErrUnavailable with the fix in the message.
func OpenRAPL(opt RAPLOptions) (*RAPLSensor, error) {
	fsys := opt.FS
	root := opt.Root
	if root == "" {
		root = SysfsRoot()
	}
	if fsys == nil {
		fsys = os.DirFS(root)
	}
	entries, err := fs.ReadDir(fsys, raplDir)
	if err != nil {
		return nil, Unavailable("rapl", fmt.Sprintf("no %s/%s (no RAPL on this CPU or kernel, or not mounted into the container)", root, raplDir))
	}
	var dirs []string
	for _, e := range entries {
		// intel-rapl:N (package/psys) and intel-rapl:N:M (sub-zones); AMD uses the same names.
		if strings.HasPrefix(e.Name(), "intel-rapl:") {
			dirs = append(dirs, path.Join(raplDir, e.Name()))
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return nil, Unavailable("rapl", fmt.Sprintf("%s/%s has no intel-rapl zones", root, raplDir))
	}
	s := &RAPLSensor{fsys: fsys}
	names := map[string]string{} // dir base → channel ID, to link sub-zones to packages
	hasPackage := false
	for _, d := range dirs {
		name, err := readTrim(fsys, path.Join(d, "name"))
		if err != nil {
			continue
		}
		if strings.HasPrefix(name, "package") {
			hasPackage = true
		}
	}
	for _, d := range dirs {
		name, err := readTrim(fsys, path.Join(d, "name"))
		if err != nil {
			return nil, Unavailable("rapl", fmt.Sprintf("read %s: %v", path.Join(root, d, "name"), err))
		}
		if name == "psys" && hasPackage {
			continue // platform domain overlaps the packages; counted via packages
		}
		base := path.Base(d) // intel-rapl:0 or intel-rapl:0:1
		parts := strings.Split(strings.TrimPrefix(base, "intel-rapl:"), ":")
		pkg, _ := strconv.Atoi(parts[0])
		kind := strings.TrimRightFunc(name, func(r rune) bool { return r == '-' || (r >= '0' && r <= '9') })
		id := "rapl:" + name
		if len(parts) == 2 {
			id = fmt.Sprintf("rapl:%s-%d", name, pkg)
		}
		ch := Channel{ID: id, Sensor: "rapl", Kind: kind, Name: name, Index: pkg, Method: MethodCounter,
			HasCounter: true, CounterPeriodNs: 1_000_000}
		if len(parts) == 2 && kind != "dram" {
			ch.SubsetOf = names["intel-rapl:"+parts[0]]
		}
		if kind == "dram" {
			ch.Notes = append(ch.Notes, "dram is its own RAPL domain, added to the package energy in totals")
		}
		names[base] = id
		z := &raplZone{dir: d}
		mr, err := readTrim(fsys, path.Join(d, "max_energy_range_uj"))
		if err == nil {
			z.maxRange, _ = strconv.ParseUint(mr, 10, 64)
		}
		f, err := fsys.Open(path.Join(d, "energy_uj"))
		if err == nil {
			if _, ok := f.(io.ReaderAt); ok {
				z.file = f // kept open: pread at 0 each sample, no allocation
			} else {
				f.Close()
			}
			_, err = readUintFile(s.fsys, z.file, z.buf[:], path.Join(z.dir, "energy_uj"))
		}
		if err != nil {
			if z.file != nil {
				z.file.Close()
			}
			s.closeZones()
			if errors.Is(err, fs.ErrPermission) {
				return nil, Unavailable("rapl", fmt.Sprintf("permission denied reading %s (energy_uj is root-only since Linux 5.10): run llem as root, or `sudo chmod o+r %s/%s/intel-rapl:*/energy_uj %s/%s/intel-rapl:*/*/energy_uj` (lost at reboot; a udev rule makes it permanent)",
					path.Join(root, d, "energy_uj"), root, raplDir, root, raplDir))
			}
			return nil, Unavailable("rapl", fmt.Sprintf("read %s: %v", path.Join(root, d, "energy_uj"), err))
		}
		s.zones = append(s.zones, z)
		s.channels = append(s.channels, ch)
	}
	if len(s.zones) == 0 {
		return nil, Unavailable("rapl", "no readable RAPL zones")
	}
	return s, nil
}

func readTrim(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	return strings.TrimSpace(string(b)), err
}

// Name implements Sensor.
func (s *RAPLSensor) Name() string { return "rapl" }

// Channels implements Sensor.
func (s *RAPLSensor) Channels() []Channel { return s.channels }

// Read implements Sensor. RAPL has no aux fields and a cheap counter, read every time.
func (s *RAPLSensor) Read(dst []Sample, _ ReadMode) error {
	return readChannels(dst, len(s.zones),
		func(i int) (uint64, error) {
			z := s.zones[i]
			return readUintFile(s.fsys, z.file, z.buf[:], path.Join(z.dir, "energy_uj"))
		},
		func(i int) string { return s.zones[i].dir + "/energy_uj" },
		func(i int, v uint64, now int64, smp *Sample) {
			z := s.zones[i]
			smp.PowerW = z.add(v, now, z.step)
			smp.EnergyJ = z.energyJ()
		})
}

// step is the counter's increase from last to v: past max_energy_range_uj
// it wraps to 0.
func (z *raplZone) step(last, v uint64) uint64 {
	if v < last {
		return v + (z.maxRange - last)
	}
	return v - last
}

func parseUint(b []byte, file string) (uint64, error) {
	var v uint64
	digits := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uint64(c-'0')
		digits++
	}
	if digits == 0 {
		return 0, fmt.Errorf("parse %s: %q", file, b)
	}
	return v, nil
}

func (s *RAPLSensor) closeZones() {
	for _, z := range s.zones {
		if z.file != nil {
			z.file.Close()
		}
	}
}

// Close implements Sensor.
func (s *RAPLSensor) Close() error {
	s.closeZones()
	return nil
}
