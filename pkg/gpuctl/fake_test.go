//go:build cgo

package gpuctl

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// fakeState is the settable state of a fake H200 (no GPU exists on the
// test machine; the validation H200 must never be changed). Limits and
// clocks follow an H200 SXM's NVML answers: power limit 200–700 W,
// default 700 W; SM clock 345–1980 MHz; memory clock 3201 MHz. It lives in
// a file when path is set, so it outlives a process, as a GPU's settings do.
type fakeState struct {
	LimitMW   uint32 `json:"limit_mw"`
	LockedSM  uint32 `json:"locked_sm"`
	LockedMem uint32 `json:"locked_mem"`
	AppMem    uint32 `json:"app_mem"`
	AppSM     uint32 `json:"app_sm"`
	Sets      int    `json:"sets"`
}

type fakeGPU struct {
	mu   sync.Mutex
	path string
	st   fakeState
	deny bool // setters answer NO_PERMISSION, as NVML does for non-root
}

func freshState() fakeState { return fakeState{LimitMW: 700000, AppMem: 3201, AppSM: 1980} }

func (g *fakeGPU) do(f func(s *fakeState) nvml.Return) nvml.Return {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.path != "" {
		if b, err := os.ReadFile(g.path); err == nil {
			if err := json.Unmarshal(b, &g.st); err != nil {
				panic(err)
			}
		}
	}
	ret := f(&g.st)
	if g.path != "" {
		b, _ := json.Marshal(g.st)
		if err := os.WriteFile(g.path, b, 0o600); err != nil {
			panic(err)
		}
	}
	return ret
}

func (g *fakeGPU) state() fakeState {
	var s fakeState
	g.do(func(st *fakeState) nvml.Return { s = *st; return nvml.SUCCESS })
	return s
}

func (g *fakeGPU) set(f func(s *fakeState) nvml.Return) nvml.Return {
	if g.deny {
		return nvml.ERROR_NO_PERMISSION
	}
	return g.do(func(s *fakeState) nvml.Return {
		r := f(s)
		if r == nvml.SUCCESS {
			s.Sets++
		}
		return r
	})
}

func (g *fakeGPU) install(d *server.Device) {
	get := func(f func(s fakeState) uint32) (uint32, nvml.Return) { return f(g.state()), nvml.SUCCESS }
	d.GetPowerManagementLimitConstraintsFunc = func() (uint32, uint32, nvml.Return) { return 200000, 700000, nvml.SUCCESS }
	d.GetPowerManagementDefaultLimitFunc = func() (uint32, nvml.Return) { return 700000, nvml.SUCCESS }
	d.GetPowerManagementLimitFunc = func() (uint32, nvml.Return) { return get(func(s fakeState) uint32 { return s.LimitMW }) }
	d.GetEnforcedPowerLimitFunc = d.GetPowerManagementLimitFunc
	d.SetPowerManagementLimitFunc = func(mw uint32) nvml.Return {
		return g.set(func(s *fakeState) nvml.Return {
			if mw < 200000 || mw > 700000 {
				return nvml.ERROR_INVALID_ARGUMENT
			}
			s.LimitMW = mw
			return nvml.SUCCESS
		})
	}
	d.GetMinMaxClockOfPStateFunc = func(c nvml.ClockType, p nvml.Pstates) (uint32, uint32, nvml.Return) {
		if c == nvml.CLOCK_MEM {
			return 3201, 3201, nvml.SUCCESS
		}
		return 345, 1980, nvml.SUCCESS
	}
	d.SetGpuLockedClocksFunc = func(lo, hi uint32) nvml.Return {
		return g.set(func(s *fakeState) nvml.Return { s.LockedSM = hi; return nvml.SUCCESS })
	}
	d.ResetGpuLockedClocksFunc = func() nvml.Return {
		return g.set(func(s *fakeState) nvml.Return { s.LockedSM = 0; return nvml.SUCCESS })
	}
	d.SetMemoryLockedClocksFunc = func(lo, hi uint32) nvml.Return {
		return g.set(func(s *fakeState) nvml.Return { s.LockedMem = hi; return nvml.SUCCESS })
	}
	d.ResetMemoryLockedClocksFunc = func() nvml.Return {
		return g.set(func(s *fakeState) nvml.Return { s.LockedMem = 0; return nvml.SUCCESS })
	}
	d.GetApplicationsClockFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		return get(func(s fakeState) uint32 {
			if c == nvml.CLOCK_MEM {
				return s.AppMem
			}
			return s.AppSM
		})
	}
	d.SetApplicationsClocksFunc = func(mem, sm uint32) nvml.Return {
		return g.set(func(s *fakeState) nvml.Return { s.AppMem, s.AppSM = mem, sm; return nvml.SUCCESS })
	}
	d.ResetApplicationsClocksFunc = func() nvml.Return {
		return g.set(func(s *fakeState) nvml.Return { s.AppMem, s.AppSM = 3201, 1980; return nvml.SUCCESS })
	}
	d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		return get(func(s fakeState) uint32 {
			if c == nvml.CLOCK_MEM {
				return 3201
			}
			if s.LockedSM > 0 {
				return s.LockedSM
			}
			return 1980
		})
	}
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		s := g.state()
		var m uint64
		if s.LimitMW < 700000 {
			m |= nvml.ClocksEventReasonSwPowerCap // under load a cap below TDP holds clocks down
		}
		return m, nvml.SUCCESS
	}
}

// newFakeH200s returns a mock with n H200s; with dir set, GPU i's state
// lives in dir/gpu<i>.json.
func newFakeH200s(n int, dir string) (*server.Server, []*fakeGPU) {
	s := dgxh200.NewWithGPUs(gpus.Multiple(n, gpus.H200_SXM5_141GB)...)
	var gs []*fakeGPU
	for i, d := range s.Devices {
		g := &fakeGPU{st: freshState()}
		if dir != "" {
			// A machine's GPUs keep their UUIDs across processes.
			d.(*server.Device).UUID = fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", i)
			g.path = filepath.Join(dir, fmt.Sprintf("gpu%d.json", i))
			if _, err := os.Stat(g.path); err != nil {
				g.do(func(*fakeState) nvml.Return { return nvml.SUCCESS })
			}
		}
		g.install(d.(*server.Device))
		gs = append(gs, g)
	}
	return s, gs
}
