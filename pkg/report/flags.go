package report

// flagMeaning explains each validity flag (pkg/measure, docs/methodology.md)
// in words a reader of the report needs: what it says about the numbers.
var flagMeaning = map[string]string{
	"window_too_short":              "The measured window was shorter than 10 s, so sensor update periods and window edges weigh on the energy; use more prompts or longer outputs.",
	"short_window_power_integrated": "The energy counter updated fewer than twice in the window, so energy was integrated from instant power instead.",
	"counter_integral_disagreement": "The energy counter and the integral of instant power differ by more than 5% over at least 5 s; one of the two sensors is off.",
	"power_above_limit":             "Mean power exceeded the device's power limit (or a sample exceeded it by 50%): likely a sensor glitch.",
	"power_below_idle":              "Mean power was below 90% of the idle baseline: the baseline is stale or the load did not run.",
	"below_baseline":                "Baseline-adjusted energy came out negative; only the raw energy is meaningful.",
	"baseline_missing_device":       "The idle baseline lacks a measured device, so no adjusted total was computed.",
	"temperature_out_of_range":      "A GPU temperature sample was outside 20–95 °C.",
	"thermal_drift":                 "Temperature changed by more than 10 °C across the window; efficiency may drift with it.",
	"thermal_throttling":            "The GPU reported hardware slowdown or thermal throttling during the window: the numbers reflect a throttled device.",
	"power_throttling":              "The GPU hit its software power cap or power brake: normal at full load, but the result depends on the power limit.",
	"sampler_gap":                   "Two power samples were more than 3 sampling intervals apart in or around the window.",
	"sensor_read_errors":            "Some sensor reads in the window failed.",
	"window_outside_timeline":       "The window started before or ended after the sampled timeline; its edges were extrapolated.",
	"channel_unavailable":           "A device had no usable samples in the window and is excluded from the total.",
	"no_power_samples":              "The device has an energy counter but no instant power; window edges were extrapolated from the counter's mean power.",
	"phase_overlap":                 "Worker-reported prefill/decode intervals overlap.",
	"phase_outside_window":          "Phase intervals were clipped to the measured window.",
	"estimate_used":                 "Energy is an estimate (TDP × utilisation), not a measurement: compare such numbers only with each other, never with measured ones.",
	"mig_parent_measured":           "A MIG instance was requested but the whole parent GPU was measured.",
	"average_power_timeline":        "The device has no instant power reading; the timeline uses the 1 s average power.",
	"energy_unavailable":            "No energy sensor measured this run (energy.sensor: none); energy figures leave it out.",
	"busy_host":                     "Processes other than llem and its worker used over 25% of the host's CPU time during the window: CPU energy and timings may include their load.",
	"other_gpu_processes":           "Another process ran on the measured GPUs through the window (NVML's process list): whole-GPU energy includes its share.",
}

// FlagMeaning returns the explanation of a validity flag code, or "" for a
// code this version does not know.
func FlagMeaning(code string) string { return flagMeaning[code] }
