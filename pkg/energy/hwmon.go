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

// HwmonOptions configure the hwmon sensor.
type HwmonOptions struct {
	// Root is the directory holding class/hwmon; empty means SysfsRoot()
	// ($LLEM_SYSFS_ROOT, else "/sys").
	Root string
	// FS, when set, replaces the operating system's file system rooted at
	// Root (tests pass fault-injecting file systems).
	FS fs.FS
	// SkipDevices lists device identities (PCI addresses) already measured
	// by a better sensor (AMD SMI): their hwmon channels are left out.
	SkipDevices []string
}

const hwmonDir = "class/hwmon"

// hwmonInput is one channel's file: an energy counter (µJ) or a power
// reading (µW).
type hwmonInput struct {
	file    string // relative to the FS root, e.g. class/hwmon/hwmon2/energy1_input
	counter bool   // energyN_input: cumulative µJ
	average bool   // powerN_average rather than powerN_input
	f       fs.File
	ujCounter
	buf [32]byte
}

// HwmonSensor reads Linux hwmon devices (Documentation/hwmon/sysfs-interface.rst):
// energyN_input (cumulative µJ) where a device has it, else powerN_input
// (instant µW), else powerN_average (µW averaged by the device). It covers
// AMD GPUs (amdgpu: power1_average or power1_input), Intel GPUs (i915, xe:
// energy1_input), NVIDIA Grace CPU power telemetry (NVDA2008 devices with
// power1_oem_info labels) and any other hwmon device that reports power.
type HwmonSensor struct {
	fsys     fs.FS
	root     string
	in       []*hwmonInput
	channels []Channel
	// Skipped explains each hwmon device that gave no channel (no power or
	// energy file, measured by another sensor, unreadable), for `llem env`.
	Skipped []string
}

// The hwmon sensor, after RAPL in auto's chain (a machine with RAPL measures
// its CPU better through RAPL; hwmon is what AMD and Intel GPUs and Grace
// CPUs offer without a vendor library).
func init() {
	RegisterSensor(SensorDef{Name: "hwmon", AutoRank: 4, Interval: DefaultIntervalRAPL, Open: openHwmonSensor,
		AutoReason: func(Sensor) string {
			return "no NVIDIA GPU, no AMD SMI and no readable RAPL; hwmon power or energy readings found"
		}})
}

func openHwmonSensor(cfg Config) (Sensor, error) {
	s, err := OpenHwmon(cfg.Hwmon)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenHwmon finds every hwmon device with an energy or power reading.
func OpenHwmon(opt HwmonOptions) (*HwmonSensor, error) {
	root := opt.Root
	if root == "" {
		root = SysfsRoot()
	}
	fsys := opt.FS
	if fsys == nil {
		fsys = os.DirFS(root)
	}
	entries, err := fs.ReadDir(fsys, hwmonDir)
	if err != nil {
		return nil, Unavailable("hwmon", fmt.Sprintf("no %s/%s (kernel without hwmon, or /sys not mounted into the container)", root, hwmonDir))
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "hwmon") {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { return hwmonNum(names[i]) < hwmonNum(names[j]) })
	s := &HwmonSensor{fsys: fsys, root: root}
	var permErr string
	for _, n := range names {
		dir := path.Join(hwmonDir, n)
		name, err := readTrim(fsys, path.Join(dir, "name"))
		if err != nil {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s: no name file", n))
			continue
		}
		dev := hwmonDevice(fsys, dir)
		if dev != "" && containsStr(opt.SkipDevices, path.Base(dev)) {
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s (%s, %s): measured by AMD SMI", n, name, path.Base(dev)))
			continue
		}
		files, _ := fs.ReadDir(fsys, dir)
		var energy, powerIn, powerAvg []string
		for _, f := range files {
			fn := f.Name()
			switch {
			case strings.HasPrefix(fn, "energy") && strings.HasSuffix(fn, "_input"):
				energy = append(energy, fn)
			case strings.HasPrefix(fn, "power") && strings.HasSuffix(fn, "_input"):
				powerIn = append(powerIn, fn)
			case strings.HasPrefix(fn, "power") && strings.HasSuffix(fn, "_average"):
				powerAvg = append(powerAvg, fn)
			}
		}
		if len(energy) == 0 && len(powerIn) == 0 && len(powerAvg) == 0 && dev != "" {
			// NVDA2008 (Grace) puts its power files under device/.
			for _, f := range readDirQuiet(fsys, path.Join(dir, "device")) {
				if fn := f.Name(); strings.HasPrefix(fn, "power") && strings.HasSuffix(fn, "_average") {
					powerAvg = append(powerAvg, "device/"+fn)
				}
			}
		}
		var chosen []string
		counter, average := false, false
		switch {
		case len(energy) > 0:
			chosen, counter = energy, true
		case len(powerIn) > 0:
			chosen = powerIn
		case len(powerAvg) > 0:
			chosen, average = powerAvg, true
		default:
			s.Skipped = append(s.Skipped, fmt.Sprintf("%s (%s): no energy or power reading", n, name))
			continue
		}
		sort.Strings(chosen)
		first := len(s.channels)
		for _, fn := range chosen {
			in := &hwmonInput{file: path.Join(dir, fn), counter: counter, average: average}
			if f, err := fsys.Open(in.file); err == nil {
				if _, ok := f.(io.ReaderAt); ok {
					in.f = f
				} else {
					f.Close()
				}
			}
			if _, err := readUintFile(fsys, in.f, in.buf[:], in.file); err != nil {
				if in.f != nil {
					in.f.Close()
				}
				if errors.Is(err, fs.ErrPermission) {
					permErr = fmt.Sprintf("permission denied reading %s: run llem as root, or make it readable (`sudo chmod o+r %s`, lost at reboot; a udev rule makes it permanent)", path.Join(root, in.file), path.Join(root, in.file))
				}
				s.Skipped = append(s.Skipped, fmt.Sprintf("%s (%s): read %s: %v", n, name, fn, err))
				continue
			}
			ch := hwmonChannel(fsys, dir, n, name, dev, fn, counter, average)
			s.in = append(s.in, in)
			s.channels = append(s.channels, ch)
		}
		linkSubsets(s.channels[first:])
	}
	linkGrace(s.channels)
	if len(s.channels) == 0 {
		if permErr != "" {
			return nil, Unavailable("hwmon", permErr)
		}
		reason := fmt.Sprintf("no hwmon device under %s/%s reports energy or power", root, hwmonDir)
		if len(s.Skipped) > 0 {
			reason += " (" + strings.Join(s.Skipped, "; ") + ")"
		}
		return nil, Unavailable("hwmon", reason)
	}
	return s, nil
}

func hwmonNum(n string) int {
	v, err := strconv.Atoi(strings.TrimPrefix(n, "hwmon"))
	if err != nil {
		return 1 << 30
	}
	return v
}

func readDirQuiet(fsys fs.FS, dir string) []fs.DirEntry {
	e, _ := fs.ReadDir(fsys, dir)
	return e
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if strings.EqualFold(y, x) {
			return true
		}
	}
	return false
}

// hwmonDevice returns the target of the hwmon directory's device symlink
// ("../../../0000:c1:00.0"), or "" when there is none.
func hwmonDevice(fsys fs.FS, dir string) string {
	if t, err := fs.ReadLink(fsys, path.Join(dir, "device")); err == nil {
		return t
	}
	return ""
}

// hwmonChannel describes one reading. Identity: the hwmon name plus the
// device (PCI address for GPUs, ACPI/platform id for Grace); the hwmonN
// number is not stable across boots and is only the fallback.
func hwmonChannel(fsys fs.FS, dir, n, name, dev, fn string, counter, average bool) Channel {
	base := strings.TrimPrefix(fn, "device/")
	stem := base[:strings.IndexByte(base, '_')] // energy1, power2
	label, _ := readTrim(fsys, path.Join(dir, stem+"_label"))
	if label == "" {
		label, _ = readTrim(fsys, path.Join(dir, "device", stem+"_oem_info"))
	}
	id := dev
	if id == "" {
		id = n
	}
	id = "hwmon:" + name + ":" + path.Base(id) + ":" + stem
	ch := Channel{ID: id, Sensor: "hwmon", Name: name, Device: path.Base(dev), Method: MethodPowerIntegration, Index: hwmonNum(n)}
	if dev == "" {
		ch.Device = n
	}
	if label != "" {
		ch.Name = name + " " + label
	}
	switch name {
	case "amdgpu", "i915", "xe", "nouveau":
		ch.Kind, ch.Domain = "gpu", DomainAccelerator
	default:
		ch.Kind, ch.Domain = "platform", DomainPlatform
		l := strings.ToLower(label)
		switch {
		case strings.Contains(l, "module"):
			ch.Kind, ch.Domain = "module", DomainPlatform
		case strings.Contains(l, "grace"), strings.Contains(l, "cpu"):
			ch.Kind, ch.Domain = "cpu", DomainCPU
		case strings.Contains(l, "sysio"):
			ch.Kind, ch.Domain = "sysio", DomainCPU
		}
	}
	if counter {
		ch.Method, ch.HasCounter, ch.CounterPeriodNs = MethodCounter, true, 1_000_000
		ch.Notes = append(ch.Notes, fmt.Sprintf("hwmon %s (%s): energy counter %s (µJ), power is its rate between samples", n, name, fn))
	} else {
		ch.Notes = append(ch.Notes, fmt.Sprintf("hwmon %s (%s): no energy counter; energy integrated from %s (µW)", n, name, fn))
	}
	if average {
		ch.Warnings = append(ch.Warnings, Caveat{CaveatAveragePower, fmt.Sprintf("hwmon %s (%s) offers only %s, a device-averaged power: short windows and phase splits are smoothed", n, name, base)})
	}
	return ch
}

// linkSubsets marks overlapping readings of one device so that totals count
// each joule once: Intel xe's "pkg" energy is inside its "card" energy;
// Grace's "CPU" and "SysIO" rails are inside its "Grace" socket power,
// which is inside "Module" power (module left as a platform domain).
func linkSubsets(chs []Channel) {
	if len(chs) < 2 {
		return
	}
	byLabel := func(sub string) int {
		for i, c := range chs {
			if strings.Contains(strings.ToLower(c.Name), sub) {
				return i
			}
		}
		return -1
	}
	if card := byLabel("card"); card >= 0 {
		for i := range chs {
			if i != card && chs[i].Domain == chs[card].Domain {
				chs[i].SubsetOf = chs[card].ID
			}
		}
		return
	}
	if chs[0].Domain == DomainAccelerator {
		for i := 1; i < len(chs); i++ {
			if chs[i].SubsetOf == "" && chs[i].Domain == DomainAccelerator {
				chs[i].SubsetOf = chs[0].ID
			}
		}
	}
}

// linkGrace: per socket, Grace's CPU and SysIO rails are inside its Grace
// socket power (each is its own NVDA2008 hwmon device).
func linkGrace(chs []Channel) {
	for i := range chs {
		l := strings.ToLower(chs[i].Name)
		if !strings.Contains(l, "cpu") && !strings.Contains(l, "sysio") {
			continue
		}
		sock := lastField(l)
		for j := range chs {
			lj := strings.ToLower(chs[j].Name)
			if strings.Contains(lj, "grace") && lastField(lj) == sock {
				chs[i].SubsetOf = chs[j].ID
			}
		}
	}
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// Name implements Sensor.
func (s *HwmonSensor) Name() string { return "hwmon" }

// Channels implements Sensor.
func (s *HwmonSensor) Channels() []Channel { return s.channels }

// Read implements Sensor. hwmon files are cheap to read: every field every time.
func (s *HwmonSensor) Read(dst []Sample, _ ReadMode) error {
	return readChannels(dst, len(s.in),
		func(i int) (uint64, error) {
			in := s.in[i]
			return readUintFile(s.fsys, in.f, in.buf[:], in.file)
		},
		func(i int) string { return path.Join(s.root, s.in[i].file) },
		func(i int, v uint64, now int64, smp *Sample) {
			in := s.in[i]
			if !in.counter {
				smp.PowerW = float64(v) / 1e6
				return
			}
			smp.PowerW = in.add(v, now, hwmonStep)
			smp.EnergyJ = in.energyJ()
		})
}

// hwmonStep is an energyN_input counter's increase from last to v.
//
// Wrap: hwmon documents energyN_input as a cumulative µJ counter but not its
// width. Drivers accumulate their hardware registers into 64 bits (i915,
// xe), some expose the register itself: a reading below the last one is one
// wrap of the narrowest width (32 or 64 bits) that holds the last reading. At
// 100 ms sampling a 32-bit µJ counter (4295 J) wraps at most once below
// 42.9 kW.
func hwmonStep(last, v uint64) uint64 {
	if v >= last {
		return v - last
	}
	if last < 1<<32 {
		return v + (1<<32 - last)
	}
	return v + (^uint64(0) - last) + 1
}

// Close implements Sensor.
func (s *HwmonSensor) Close() error {
	for _, in := range s.in {
		if in.f != nil {
			in.f.Close()
		}
	}
	return nil
}
