//go:build gpu && cgo

package energy

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// rusageThread is RUSAGE_THREAD (Linux), which package syscall does not name.
const rusageThread = 1

func cpuTime(who int) time.Duration {
	var r syscall.Rusage
	syscall.Getrusage(who, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// BenchmarkNVMLCalls measures each NVML call the sampler makes on GPU 0 of
// a real machine: ns/op is wall time per call, thread-cpu-ns/op the CPU
// time of the calling thread and process-cpu-ns/op that of the whole
// process (the driver may busy-wait on other threads), per call. Idle
// reports the process CPU of NVML initialised but unused, in % of one core.
//
//	go test -tags gpu -run '^$' -bench NVMLCalls ./pkg/energy
func BenchmarkNVMLCalls(b *testing.B) {
	lib := nvml.New()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		b.Skip("no NVML:", ret)
	}
	defer lib.Shutdown()
	d, ret := lib.DeviceGetHandleByIndex(0)
	if ret != nvml.SUCCESS {
		b.Fatal(ret)
	}

	b.Run("Idle", func(b *testing.B) {
		p0, w0 := cpuTime(syscall.RUSAGE_SELF), time.Now()
		for b.Loop() {
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(100*float64(cpuTime(syscall.RUSAGE_SELF)-p0)/float64(time.Since(w0)), "cpu-%")
	})

	fv := func(ids ...uint32) func() {
		v := make([]nvml.FieldValue, len(ids))
		return func() {
			for i := range v {
				v[i] = nvml.FieldValue{FieldId: ids[i]}
			}
			d.GetFieldValues(v)
		}
	}
	calls := []struct {
		name string
		f    func()
	}{
		{"Fields_83energy_186power", fv(83, 186)},
		{"Fields_186power", fv(186)},
		{"Fields_83energy", fv(83)},
		{"GetTotalEnergyConsumption", func() { d.GetTotalEnergyConsumption() }},
		{"GetPowerUsage", func() { d.GetPowerUsage() }},
		{"GetTemperature", func() { d.GetTemperature(nvml.TEMPERATURE_GPU) }},
		{"GetClockInfo_SM", func() { d.GetClockInfo(nvml.CLOCK_SM) }},
		{"GetUtilizationRates", func() { d.GetUtilizationRates() }},
		{"GetMemoryInfo", func() { d.GetMemoryInfo() }},
		{"GetCurrentClocksEventReasons", func() { d.GetCurrentClocksEventReasons() }},
	}
	for _, c := range calls {
		b.Run(c.name, func(b *testing.B) {
			// Thread CPU time means something only on one OS thread.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			n := 0
			p0, t0 := cpuTime(syscall.RUSAGE_SELF), cpuTime(rusageThread)
			for b.Loop() {
				c.f()
				n++
			}
			thread, process := cpuTime(rusageThread)-t0, cpuTime(syscall.RUSAGE_SELF)-p0
			b.ReportMetric(float64(thread.Nanoseconds())/float64(n), "thread-cpu-ns/op")
			b.ReportMetric(float64(process.Nanoseconds())/float64(n), "process-cpu-ns/op")
		})
	}
}
