package envinfo

import (
	"testing"
	"testing/fstest"

	"github.com/llenergymeasure/llem/pkg/energy"
)

func fakeRoot(extra map[string]string) fstest.MapFS {
	m := fstest.MapFS{
		"proc/cpuinfo":              {Data: []byte("processor : 0\nmodel name : AMD EPYC 7742 64-Core Processor\nphysical id : 0\ncore id : 0\nprocessor : 1\nmodel name : AMD EPYC 7742 64-Core Processor\nphysical id : 0\ncore id : 1\n")},
		"proc/meminfo":              {Data: []byte("MemTotal:       16384000 kB\n")},
		"proc/sys/kernel/osrelease": {Data: []byte("6.1.0-test\n")},
		"proc/1/cgroup":             {Data: []byte("0::/init.scope\n")},
		"etc/os-release":            {Data: []byte("NAME=Debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")},
		"sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": {Data: []byte("performance\n")},
	}
	for k, v := range extra {
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}

func TestCollectFromFakeRoot(t *testing.T) {
	s := Collect(Options{FS: fakeRoot(nil), SkipNVML: true})
	if s.CPU.Model != "AMD EPYC 7742 64-Core Processor" || s.CPU.Sockets != 1 || s.CPU.Cores != 2 || s.CPU.Threads != 2 || s.CPU.Governor != "performance" {
		t.Errorf("cpu = %+v", s.CPU)
	}
	if s.MemoryBytes != 16384000*1024 || s.OS.Name != "Debian GNU/Linux 12 (bookworm)" || s.OS.Kernel != "6.1.0-test" {
		t.Errorf("mem %d os %+v", s.MemoryBytes, s.OS)
	}
	if s.Container.Detected || s.Llem.Version == "" || len(s.Fingerprint) != 16 {
		t.Errorf("container %+v llem %+v fp %q", s.Container, s.Llem, s.Fingerprint)
	}
}

func TestContainerDetection(t *testing.T) {
	tests := []struct {
		extra map[string]string
		want  string
	}{
		{map[string]string{".dockerenv": ""}, "docker"},
		{map[string]string{"run/.containerenv": ""}, "podman"},
		{map[string]string{"proc/1/cgroup": "0::/kubepods/besteffort/pod1"}, "kubernetes"},
		{map[string]string{"proc/1/cgroup": "12:pids:/docker/abc"}, "docker"},
	}
	for _, tt := range tests {
		c := detectContainer(fakeRoot(tt.extra))
		if !c.Detected || c.Runtime != tt.want {
			t.Errorf("%v → %+v, want %s", tt.extra, c, tt.want)
		}
	}
}

func TestFingerprintStableAndHardwareOnly(t *testing.T) {
	base := Snapshot{CPU: CPU{CPUFacts: energy.CPUFacts{Model: "X", Sockets: 2, Cores: 64, Threads: 128}}, MemoryBytes: 512 << 30}
	base.GPU.GPUs = []energy.GPUInfo{{UUID: "GPU-a", Name: "H100"}, {UUID: "GPU-b", Name: "H100"}}
	fp := Fingerprint(base)

	same := base
	same.GPU.GPUs = []energy.GPUInfo{base.GPU.GPUs[1], base.GPU.GPUs[0]} // order does not matter
	same.MemoryBytes -= 100 << 20                                        // kernel reservations drift
	same.OS.Kernel, same.GPU.DriverVersion, same.CPU.Governor = "other", "999", "powersave"
	if Fingerprint(same) != fp {
		t.Error("fingerprint changed without a hardware change")
	}
	other := base
	other.GPU.GPUs = []energy.GPUInfo{{UUID: "GPU-c", Name: "H100"}}
	if Fingerprint(other) == fp {
		t.Error("fingerprint unchanged after swapping GPUs")
	}
}

func TestConfigPath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	if got := ConfigPath(); got != "/cfg/llenergymeasure/config.yaml" {
		t.Errorf("ConfigPath = %q", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := ConfigPath(); got != "/home/u/.config/llenergymeasure/config.yaml" {
		t.Errorf("ConfigPath = %q", got)
	}
}
