// Package envinfo snapshots the environment a measurement ran in: GPUs and
// driver (through NVML), CPU, memory, OS, container, llem version, and a
// hardware fingerprint that identifies the machine without naming it.
package envinfo

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/energy"
)

// Snapshot is the environment of one study execution; it goes into every
// result record.
type Snapshot struct {
	CollectedAt time.Time `json:"collected_at"`
	Llem        Llem      `json:"llem"`
	GPU         GPU       `json:"gpu"`
	CPU         CPU       `json:"cpu"`
	MemoryBytes uint64    `json:"memory_bytes"`
	OS          OS        `json:"os"`
	Container   Container `json:"container"`
	// Runners says where each backend's workers ran in this execution and,
	// for Docker, which image (reference, ID and registry digest). Set by
	// llem eval once the runners are resolved; absent from the fingerprint.
	Runners map[string]Runner `json:"runners,omitempty"`
	// Fingerprint is a stable hash of the hardware identity (CPU model and
	// counts, memory size in GiB, every GPU's UUID and name): the key for
	// caches such as the idle baseline, and provenance in results.
	Fingerprint string `json:"fingerprint"`
}

// Llem is the tool's own version.
type Llem struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
}

// GPU is what NVML reports; Unavailable says why there is nothing.
type GPU struct {
	energy.NVMLInfo
	Unavailable string `json:"unavailable,omitempty"`
}

// CPU describes the processors.
type CPU struct {
	energy.CPUFacts
	Governor string `json:"governor,omitempty"` // cpufreq scaling governor of cpu0, when exposed
}

// OS names the operating system.
type OS struct {
	Name   string `json:"name"`   // PRETTY_NAME from os-release
	Kernel string `json:"kernel"` // uname release
	Arch   string `json:"arch"`
}

// Container says whether llem runs inside a container.
type Container struct {
	Detected bool   `json:"detected"`
	Runtime  string `json:"runtime,omitempty"` // docker | podman | containerd | kubernetes | lxc | unknown
	Evidence string `json:"evidence,omitempty"`
}

// Runner is where one backend's workers ran.
type Runner struct {
	Kind   string `json:"kind"`   // local | docker
	Source string `json:"source"` // what chose it: --runner flag, environment, study, user config, auto
	// Docker: the image reference as resolved, where it came from (study,
	// user config, release image for the host's CUDA), the image ID the
	// containers were created from, and its registry digest (repo@sha256:…;
	// empty for an image that was built or imported locally).
	Image       string `json:"image,omitempty"`
	ImageSource string `json:"image_source,omitempty"`
	ImageID     string `json:"image_id,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
	// Python is the local interpreter of a Python backend.
	Python string `json:"python,omitempty"`
}

// Options say where to look; zero values mean the real machine.
type Options struct {
	// Root is the file system root ("/" when empty); proc, sys and etc are
	// read under it, which lets tests use a fake tree.
	Root string
	FS   fs.FS
	NVML energy.NVMLOptions
	// SkipNVML leaves the GPU section empty (tests without a GPU mock).
	SkipNVML bool
}

// Collect gathers a snapshot. It never fails: what cannot be read is left
// empty (GPU.Unavailable says why for NVML).
func Collect(opt Options) Snapshot {
	fsys := opt.FS
	if fsys == nil {
		root := opt.Root
		if root == "" {
			root = "/"
		}
		fsys = os.DirFS(root)
	}
	s := Snapshot{CollectedAt: time.Now().UTC(),
		Llem: Llem{Version: version.Version, Commit: version.Commit(), Go: runtime.Version()}}
	if !opt.SkipNVML {
		info, err := energy.ProbeNVML(opt.NVML)
		s.GPU.NVMLInfo = info
		if err != nil {
			s.GPU.Unavailable = err.Error()
		}
	}
	proc, _ := fs.Sub(fsys, "proc")
	if cpu, err := energy.ReadCPUFacts(proc); err == nil {
		s.CPU.CPUFacts = cpu
	}
	s.CPU.Governor = readTrim(fsys, "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
	s.MemoryBytes, _ = energy.ReadMemTotal(proc)
	s.OS = readOS(fsys)
	s.Container = detectContainer(fsys)
	s.Fingerprint = Fingerprint(s)
	return s
}

func readTrim(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readOS(fsys fs.FS) OS {
	o := OS{Arch: runtime.GOARCH}
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
				o.Name = strings.Trim(v, `"'`)
			}
		}
		break
	}
	if o.Kernel = readTrim(fsys, "proc/sys/kernel/osrelease"); o.Kernel == "" {
		var u unix.Utsname
		if unix.Uname(&u) == nil {
			o.Kernel = unix.ByteSliceToString(u.Release[:])
		}
	}
	return o
}

func detectContainer(fsys fs.FS) Container {
	if _, err := fs.Stat(fsys, ".dockerenv"); err == nil {
		return Container{Detected: true, Runtime: "docker", Evidence: "/.dockerenv"}
	}
	if _, err := fs.Stat(fsys, "run/.containerenv"); err == nil {
		return Container{Detected: true, Runtime: "podman", Evidence: "/run/.containerenv"}
	}
	cg := readTrim(fsys, "proc/1/cgroup")
	for _, k := range []struct{ needle, runtime string }{{"kubepods", "kubernetes"}, {"docker", "docker"}, {"containerd", "containerd"}, {"libpod", "podman"}, {"lxc", "lxc"}} {
		if strings.Contains(cg, k.needle) {
			return Container{Detected: true, Runtime: k.runtime, Evidence: "/proc/1/cgroup mentions " + k.needle}
		}
	}
	return Container{}
}

// Fingerprint hashes the hardware identity. It deliberately leaves out
// anything that changes without a hardware change (clocks, driver, kernel,
// hostname), and rounds memory to GiB.
func Fingerprint(s Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cpu=%s;sockets=%d;cores=%d;threads=%d;mem_gib=%d", s.CPU.Model, s.CPU.Sockets, s.CPU.Cores, s.CPU.Threads, (s.MemoryBytes+1<<29)>>30)
	gpus := make([]string, 0, len(s.GPU.GPUs))
	for _, g := range s.GPU.GPUs {
		gpus = append(gpus, g.UUID+"|"+g.Name)
	}
	sort.Strings(gpus)
	for _, g := range gpus {
		b.WriteString(";gpu=" + g)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// ConfigPath is where llem's user config lives:
// $XDG_CONFIG_HOME/llenergymeasure/config.yaml, else ~/.config/llenergymeasure/config.yaml.
func ConfigPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return path.Join(".config", "llenergymeasure", "config.yaml")
		}
		dir = path.Join(home, ".config")
	}
	return path.Join(dir, "llenergymeasure", "config.yaml")
}
