package energy

import (
	"regexp"
)

// TDPEntry is one CPU model's thermal design power (per socket).
type TDPEntry struct {
	Model   string  // the model as it appears in /proc/cpuinfo, e.g. "Platinum 8480+"
	TDPW    float64 // vendor TDP / processor base power, watts per socket
	Threads int     // hardware threads per socket, to scale a VM's share
}

// TDPSource says where the table's numbers come from.
const TDPSource = "vendor specification (Intel ARK processor base power / TDP, AMD product pages default TDP), per socket"

// tdpTable lists common server and desktop CPUs. The match is a
// case-insensitive whole-word search of the entry's Model in /proc/cpuinfo's
// "model name"; longer models are tried first ("8480+" before "8480").
var tdpTable = []TDPEntry{
	// Intel Xeon Scalable
	{"Platinum 8592+", 350, 128},
	{"Platinum 8480+", 350, 112},
	{"Platinum 8468", 350, 96},
	{"Gold 6448Y", 225, 64},
	{"Platinum 8380", 270, 80},
	{"Platinum 8358", 250, 64},
	{"Gold 6338", 205, 64},
	{"Platinum 8280", 205, 56},
	{"Platinum 8175M", 240, 48},
	{"Gold 6248", 150, 40},
	{"Gold 6230", 125, 40},
	{"Gold 6150", 165, 36},
	{"E5-2698 v4", 135, 40},
	{"E5-2680 v4", 120, 28},
	// AMD EPYC
	{"EPYC 9754", 360, 256},
	{"EPYC 9654", 360, 192},
	{"EPYC 9554", 360, 128},
	{"EPYC 9474F", 360, 96},
	{"EPYC 9454", 290, 96},
	{"EPYC 9334", 210, 64},
	{"EPYC 7763", 280, 128},
	{"EPYC 7742", 225, 128},
	{"EPYC 7713", 225, 128},
	{"EPYC 7543", 225, 64},
	{"EPYC 7443", 200, 48},
	{"EPYC 7402", 180, 48},
	// Desktop / workstation
	{"Threadripper 3990X", 280, 128},
	{"i9-14900K", 125, 32},
	{"i9-13900K", 125, 32},
	{"i9-12900K", 125, 24},
	{"i7-13700K", 125, 24},
	{"i5-13600K", 125, 20},
	{"Ryzen 9 7950X", 170, 32},
	{"Ryzen 9 7900X", 170, 24},
	{"Ryzen 9 5950X", 105, 32},
	{"Ryzen 7 5800X", 105, 16},
}

// DefaultWattsPerThread is used for CPUs not in the table: CodeCarbon's
// fallback of 4 W per thread (codecarbon/core/cpu.py DEFAULT_POWER_PER_CORE).
const DefaultWattsPerThread = 4.0

// LookupTDP finds the CPU model in the table.
func LookupTDP(modelName string) (TDPEntry, bool) {
	best, ok := TDPEntry{}, false
	for _, e := range tdpTable {
		re := regexp.MustCompile(`(?i)(^|[^0-9a-z])` + regexp.QuoteMeta(e.Model) + `($|[^0-9a-z+])`)
		if re.MatchString(modelName) && (!ok || len(e.Model) > len(best.Model)) {
			best, ok = e, true
		}
	}
	return best, ok
}
