//go:build !cgo

package energy

// loadAMDSMI without cgo: libamd_smi is loaded with purego, and on Linux
// purego makes even a CGO_ENABLED=0 binary dynamically linked (it needs the
// system's dynamic loader), which would break the static llem that runs in
// minimal containers. Static builds therefore measure AMD GPUs through
// hwmon only; the release binary (cgo, for NVML) loads AMD SMI.
func loadAMDSMI(string) (AMDSMILib, error) {
	return nil, Unavailable("amdsmi", "this llem was built without cgo (a static build), which cannot load libamd_smi; use a cgo build, or the hwmon sensor")
}

// CgoEnabled says whether this build can load shared libraries at run time
// (AMD SMI; NVML is cgo too).
const CgoEnabled = false
