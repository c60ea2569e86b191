package energy

import (
	"strconv"
	"strings"
)

// VisibleEntry is one entry of CUDA_VISIBLE_DEVICES.
type VisibleEntry struct {
	Index int    // >= 0 for a numeric entry, else -1
	UUID  string // "GPU-…" (full or a unique prefix) or "MIG-…"
}

// IsMIG reports whether the entry names a MIG instance.
func (v VisibleEntry) IsMIG() bool { return strings.HasPrefix(v.UUID, "MIG-") }

// ParseVisibleDevices parses CUDA_VISIBLE_DEVICES the way the CUDA runtime
// does: comma-separated indices or UUIDs ("GPU-<uuid>", a unique prefix such
// as "GPU-8c5f", or "MIG-<uuid>"), whitespace ignored, and the list ends at the
// first entry that is neither (CUDA ignores everything after an invalid one).
// set=false (the variable is unset) means every GPU; set with an empty value
// means none. A negative index also ends the list, as in CUDA.
func ParseVisibleDevices(value string, set bool) (entries []VisibleEntry, all bool) {
	if !set {
		return nil, true
	}
	for _, f := range strings.Split(value, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			break
		}
		if n, err := strconv.Atoi(f); err == nil {
			if n < 0 {
				break
			}
			entries = append(entries, VisibleEntry{Index: n})
			continue
		}
		if strings.HasPrefix(f, "GPU-") || strings.HasPrefix(f, "MIG-") {
			entries = append(entries, VisibleEntry{Index: -1, UUID: f})
			continue
		}
		break
	}
	return entries, false
}
