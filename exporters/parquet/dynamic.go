package parquet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/llenergymeasure/llem/pkg/result"
)

// Study-dependent columns, appended after the fixed Columns in this order
// (each group sorted by name), so a study's export has a typed column per
// thing researchers group or join by:
//
//	coord_<dimension>          one per grid dimension the study varied: the
//	                           dotted path lower-cased with every run of
//	                           characters outside [a-z0-9] as "_"
//	                           (native.batch_size → coord_native_batch_size);
//	                           int64 when every value is an integer, float64
//	                           when every value is a number, bool, string,
//	                           else the value's JSON; null where a run lacks it
//	energy_<kind><index>_j     per measured device (gpu0, cpu0, dram0, ...)
//	mean_power_<kind><index>_w
//	energy_domain_<domain>_j   per energy domain (gpu, cpu_package, dram)
//	version_<package>          per backend package the workers reported
//
// A name that would repeat an earlier one gets _2, _3... appended.

// SanitizeName turns a dimension, device or package name into a column
// name fragment: lower case, runs of other characters as one "_".
func SanitizeName(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
		}
		under = true
	}
	return strings.TrimSuffix(b.String(), "_")
}

// CoordColumn is the column name of a grid dimension's dotted path.
func CoordColumn(path string) string { return "coord_" + SanitizeName(path) }

// coordKind is the narrowest kind holding every value of one dimension.
func coordKind(vals []json.RawMessage) Kind {
	ints, nums, bools := true, true, true
	for _, v := range vals {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || string(v) == "null" {
			continue
		}
		switch {
		case v[0] == '"':
			ints, nums, bools = false, false, false
		case string(v) == "true" || string(v) == "false":
			ints, nums = false, false
		case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
			bools = false
			if bytes.ContainsAny(v, ".eE") {
				ints = false
			}
		default:
			return String // object or array: its JSON
		}
	}
	switch {
	case ints && nums:
		return Int64
	case nums:
		return Float64
	case bools:
		return Bool
	}
	return String
}

// names dedupes column names in order.
type names map[string]bool

func (n names) add(name string) string {
	out := name
	for k := 2; n[out]; k++ {
		out = fmt.Sprintf("%s_%d", name, k)
	}
	n[out] = true
	return out
}

// coordValueColumn reads one dimension from a row's coordinates (records
// or per-run rows), as kind k.
func coordValueColumn(name, path string, k Kind) Column {
	get := func(x *row) (json.RawMessage, bool) {
		v, ok := x.coords[path]
		if !ok || string(v) == "null" {
			return nil, false
		}
		return v, true
	}
	doc := "grid dimension " + path
	switch k {
	case Int64:
		return Column{Name: name, Kind: k, Doc: doc, i: func(x *row) (int64, bool) {
			v, ok := get(x)
			var n int64
			if ok && json.Unmarshal(v, &n) == nil {
				return n, true
			}
			return 0, false
		}}
	case Float64:
		return Column{Name: name, Kind: k, Doc: doc, f: func(x *row) (float64, bool) {
			v, ok := get(x)
			var f float64
			if ok && json.Unmarshal(v, &f) == nil {
				return f, true
			}
			return 0, false
		}}
	case Bool:
		return Column{Name: name, Kind: k, Doc: doc, b: func(x *row) (bool, bool) {
			v, ok := get(x)
			return ok && string(v) == "true", ok
		}}
	}
	return Column{Name: name, Kind: String, Doc: doc, s: func(x *row) (string, bool) {
		v, ok := get(x)
		if !ok {
			return "", false
		}
		var s string
		if v[0] == '"' && json.Unmarshal(v, &s) == nil {
			return s, true
		}
		c, _ := compactJSON(v)
		return c, true
	}}
}

// coordColumns are the typed coordinate columns of the dimensions in coords.
func coordColumns(all []map[string]json.RawMessage, used names) []Column {
	vals := map[string][]json.RawMessage{}
	for _, m := range all {
		for k, v := range m {
			vals[k] = append(vals[k], v)
		}
	}
	var cols []Column
	for _, path := range slices.Sorted(maps.Keys(vals)) {
		cols = append(cols, coordValueColumn(used.add(CoordColumn(path)), path, coordKind(vals[path])))
	}
	return cols
}

// parseCoords decodes a record's coordinates (nil when it has none).
func parseCoords(raw json.RawMessage) map[string]json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// ColumnsFor is the schema of an export of recs: the fixed Columns, then
// the study-dependent columns described at the top of this file.
func ColumnsFor(recs []*result.Record) []Column {
	used := names{}
	for _, c := range Columns() {
		used[c.Name] = true
	}
	cols := slices.Clone(Columns())
	var coords []map[string]json.RawMessage
	seen := map[string]bool{}
	devices := map[string]bool{}
	domains := map[string]bool{}
	versions := map[string]bool{}
	for _, r := range recs {
		if key := r.Study + "\x00" + r.RunID; !seen[key] && len(r.Coordinates) > 0 {
			seen[key] = true
			if m := parseCoords(r.Coordinates); m != nil {
				coords = append(coords, m)
			}
		}
		for _, d := range r.Energy.PerDevice {
			devices[deviceKey(d)] = true
		}
		for d := range r.Energy.PerDomainJ {
			domains[d] = true
		}
		if r.Worker != nil {
			for p := range r.Worker.Versions {
				versions[p] = true
			}
		}
	}
	cols = append(cols, coordColumns(coords, used)...)
	for _, key := range slices.Sorted(maps.Keys(devices)) {
		cols = append(cols,
			Column{Name: used.add("energy_" + SanitizeName(key) + "_j"), Kind: Float64, Doc: "window energy of device " + key,
				f: func(x *row) (float64, bool) {
					if d := findDevice(x.r, key); d != nil {
						return d.EnergyJ, true
					}
					return 0, false
				}},
			Column{Name: used.add("mean_power_" + SanitizeName(key) + "_w"), Kind: Float64, Doc: "mean power of device " + key,
				f: func(x *row) (float64, bool) {
					if d := findDevice(x.r, key); d != nil {
						return d.MeanPowerW, true
					}
					return 0, false
				}})
	}
	for _, dom := range slices.Sorted(maps.Keys(domains)) {
		cols = append(cols, Column{Name: used.add("energy_domain_" + SanitizeName(dom) + "_j"), Kind: Float64, Doc: "window energy of domain " + dom,
			f: func(x *row) (float64, bool) {
				v, ok := x.r.Energy.PerDomainJ[dom]
				return v, ok
			}})
	}
	if slices.ContainsFunc(recs, func(r *result.Record) bool { return r.CycleQuality != nil }) {
		cols = append(cols, cycleQualityColumns(used)...)
	}
	for _, p := range slices.Sorted(maps.Keys(versions)) {
		cols = append(cols, Column{Name: used.add("version_" + SanitizeName(p)), Kind: String, Doc: "worker's " + p + " version",
			s: func(x *row) (string, bool) {
				if x.r.Worker == nil {
					return "", false
				}
				v, ok := x.r.Worker.Versions[p]
				return v, ok
			}})
	}
	return cols
}

// deviceKey names a device by kind and index: gpu0, cpu0, dram1.
func deviceKey(d result.DeviceEnergy) string { return fmt.Sprintf("%s%d", d.Kind, d.Index) }

func findDevice(r *result.Record, key string) *result.DeviceEnergy {
	for i := range r.Energy.PerDevice {
		if deviceKey(r.Energy.PerDevice[i]) == key {
			return &r.Energy.PerDevice[i]
		}
	}
	return nil
}

// hasCoords says whether cols read row coordinates.
func hasCoords(cols []Column) bool {
	for _, c := range cols {
		if strings.HasPrefix(c.Name, "coord_") {
			return true
		}
	}
	return false
}

// cycleQualityColumns are the per-cycle table's quality columns, present
// when a run of the export is scored per cycle (quality.scope "cycle"):
// each row's own scoring. Runs scored once have their score in the per-run
// table; their rows here are null.
func cycleQualityColumns(used names) []Column {
	q := func(x *row) *result.QualityRecord { return x.r.CycleQuality }
	ptr := func(v *float64) (float64, bool) {
		if v == nil {
			return 0, false
		}
		return *v, true
	}
	return []Column{
		{Name: used.add("cycle_quality_status"), Kind: String, Doc: "this cycle's lm-eval scoring (quality.scope cycle): ok or failed; null when not scored per cycle",
			s: func(x *row) (string, bool) {
				if c := q(x); c != nil {
					return string(c.Status), true
				}
				return "", false
			}},
		{Name: used.add("cycle_quality_score"), Kind: Float64, Doc: "this cycle's weighted lm-eval score (docs/quality.md)",
			f: func(x *row) (float64, bool) {
				if c := q(x); c != nil {
					return ptr(c.Score)
				}
				return 0, false
			}},
		{Name: used.add("cycle_quality_score_stderr"), Kind: Float64, Doc: "lm-eval's standard error of this cycle's score",
			f: func(x *row) (float64, bool) {
				if c := q(x); c != nil {
					return ptr(c.ScoreStderr)
				}
				return 0, false
			}},
		{Name: used.add("cycle_quality_scoring_energy_j"), Kind: Float64, Doc: "energy of this cycle's scoring itself (J, raw)",
			f: func(x *row) (float64, bool) {
				if c := q(x); c != nil {
					return ptr(c.Energy.RawJ)
				}
				return 0, false
			}},
	}
}
