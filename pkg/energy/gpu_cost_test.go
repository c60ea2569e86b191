//go:build gpu && cgo

package energy

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// TestGPUCallCost prints the CPU time of each NVML call the sampler makes,
// on a real GPU (go test -tags gpu -run TestGPUCallCost -v ./pkg/energy).
func TestGPUCallCost(t *testing.T) {
	lib := nvml.New()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		t.Skip("no NVML:", ret)
	}
	defer lib.Shutdown()
	d, ret := lib.DeviceGetHandleByIndex(0)
	if ret != nvml.SUCCESS {
		t.Fatal(ret)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ru := func(who int) time.Duration {
		var r syscall.Rusage
		syscall.Getrusage(who, &r)
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	const n = 200
	cost := func(name string, f func()) {
		p0, t0, w0 := ru(syscall.RUSAGE_SELF), ru(1 /* RUSAGE_THREAD */), time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		t.Logf("%-32s wall %8.1f µs  thread CPU %8.1f µs  process CPU %8.1f µs per call",
			name, float64(time.Since(w0).Microseconds())/n, float64((ru(1)-t0).Microseconds())/n, float64((ru(syscall.RUSAGE_SELF)-p0).Microseconds())/n)
	}
	fv := func(ids ...uint32) func() {
		v := make([]nvml.FieldValue, len(ids))
		return func() {
			for i := range v {
				v[i] = nvml.FieldValue{FieldId: ids[i]}
			}
			d.GetFieldValues(v)
		}
	}
	p0, w0 := ru(syscall.RUSAGE_SELF), time.Now()
	time.Sleep(2 * time.Second)
	t.Logf("idle with NVML initialised: process CPU %.3f%% of one core", 100*float64(ru(syscall.RUSAGE_SELF)-p0)/float64(time.Since(w0)))
	cost("fields [83 energy, 186 power]", fv(83, 186))
	cost("fields [186 power]", fv(186))
	cost("fields [83 energy]", fv(83))
	cost("GetTotalEnergyConsumption", func() { d.GetTotalEnergyConsumption() })
	cost("GetPowerUsage", func() { d.GetPowerUsage() })
	cost("GetTemperature", func() { d.GetTemperature(nvml.TEMPERATURE_GPU) })
	cost("GetClockInfo SM", func() { d.GetClockInfo(nvml.CLOCK_SM) })
	cost("GetUtilizationRates", func() { d.GetUtilizationRates() })
	cost("GetMemoryInfo", func() { d.GetMemoryInfo() })
	cost("GetCurrentClocksEventReasons", func() { d.GetCurrentClocksEventReasons() })
}
