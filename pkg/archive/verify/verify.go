// Package verify is the archive's trust model applied to one pushed record:
// provenance that must be present and true for the record to be accepted
// (rejections), then internal-consistency checks whose verdict is stored
// with the record. It never changes a record: what it finds is reported
// beside it.
package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Verdicts stored with every accepted record.
const (
	Consistent   = "consistent"
	Inconsistent = "inconsistent"
)

// Rejection codes (wire.Rejected.Code) this package gives.
const (
	CodeMalformed         = "malformed"
	CodeHashMismatch      = "hash_mismatch"
	CodeSchemaVersion     = "schema_version"
	CodeMissingProvenance = "missing_provenance"
	CodeForgedProvenance  = "inconsistent_provenance"
)

// Record is an accepted record: its canonical bytes (what the hash covers
// and what is stored), the decoded record, the metadata the archive
// indexes, and the consistency verdict.
type Record struct {
	SHA256    string
	Canonical []byte
	Rec       *result.Record
	Meta      Meta
	Verdict   string
	Checks    []string
}

// Meta are the columns the archive filters and groups on.
type Meta struct {
	Study, StudyHash, RunID, ConfigHash string
	Cycle, Attempt                      int
	Model, Backend, Precision           string
	// GPU names the measured GPUs ("NVIDIA H100 80GB HBM3", "2 × …"),
	// "none" without one.
	GPU                     string
	Fingerprint             string
	LlemVersion, LlemCommit string
	StartedAt               time.Time
	Status                  string
	Flags                   []string
	// EnergyPerOutputTokenJ is nil when the record has none.
	EnergyPerOutputTokenJ *float64
}

// Rejection is why a record is not accepted.
type Rejection struct{ Code, Reason string }

func (r *Rejection) Error() string { return r.Code + ": " + r.Reason }

func reject(code, format string, a ...any) *Rejection {
	return &Rejection{Code: code, Reason: fmt.Sprintf(format, a...)}
}

var (
	hexHash     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	fingerprint = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// MaxFieldLen bounds every indexed text field: a model name or a version is
// short; a megabyte-long one is an attack on the index, not a record.
const MaxFieldLen = 512

// Check verifies one pushed record against the hash the client claims.
// It returns the accepted record, or the reason it is rejected.
func Check(p wire.PushedRecord) (*Record, *Rejection) {
	if !hexHash.MatchString(p.SHA256) {
		return nil, reject(CodeMalformed, "sha256 %q is not 64 lowercase hex digits", short(p.SHA256))
	}
	trimmed := bytes.TrimSpace(p.Record)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, reject(CodeMalformed, "record is not a JSON object")
	}
	canon, err := wire.Canonical(p.Record)
	if err != nil {
		return nil, reject(CodeMalformed, "%v", err)
	}
	sum := sha256.Sum256(canon)
	if got := hex.EncodeToString(sum[:]); got != p.SHA256 {
		return nil, reject(CodeHashMismatch, "the record hashes to %s, the request says %s: the record changed after it was hashed", got, p.SHA256)
	}
	if bytes.Contains(canon, []byte(`\u0000`)) {
		return nil, reject(CodeMalformed, "record holds a NUL character (\\u0000), which the archive's databases cannot store")
	}
	if err := portable(canon); err != nil {
		return nil, reject(CodeMalformed, "%v", err)
	}
	var rec result.Record
	if err := json.Unmarshal(canon, &rec); err != nil {
		return nil, reject(CodeMalformed, "record does not decode as an llem result record: %v", err)
	}
	if rj := checkShape(&rec); rj != nil {
		return nil, rj
	}
	meta, rj := provenance(&rec)
	if rj != nil {
		return nil, rj
	}
	out := &Record{SHA256: p.SHA256, Canonical: canon, Rec: &rec, Meta: meta}
	out.Checks = Consistency(&rec)
	out.Verdict = Consistent
	if len(out.Checks) > 0 {
		out.Verdict = Inconsistent
	}
	return out, nil
}

// MaxDepth bounds the nesting of a record's JSON (llem's records nest a
// handful of levels; a deep one would only strain the databases' parsers).
const MaxDepth = 64

// portable rejects JSON every store cannot hold the same way: numbers
// outside float64's range (PostgreSQL's JSONB refuses some, SQLite keeps
// them as text) and nesting deeper than MaxDepth.
func portable(canon []byte) error {
	dec := json.NewDecoder(bytes.NewReader(canon))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if depth > MaxDepth {
			return fmt.Errorf("record nests deeper than %d levels", MaxDepth)
		}
		switch x := v.(type) {
		case json.Number:
			if f, err := strconv.ParseFloat(string(x), 64); err != nil || math.IsInf(f, 0) {
				return fmt.Errorf("number %s is outside the range of a 64-bit float", short(string(x)))
			}
		case []any:
			for _, e := range x {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		case map[string]any:
			for _, e := range x {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(v, 0)
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// checkShape rejects records of another major schema version and records
// missing what identifies them.
func checkShape(r *result.Record) *Rejection {
	major, _, _ := strings.Cut(r.SchemaVersion, ".")
	want, _, _ := strings.Cut(result.SchemaVersion, ".")
	if r.SchemaVersion == "" || major != want {
		return reject(CodeSchemaVersion, "record schema_version %q: this archive stores %s.x records", short(r.SchemaVersion), want)
	}
	for name, v := range map[string]string{"run_id": r.RunID, "model": r.Model, "backend": r.Backend, "config_hash": r.ConfigHash, "status": string(r.Status)} {
		if v == "" {
			return reject(CodeMalformed, "record has no %s", name)
		}
	}
	for name, v := range map[string]string{"study": r.Study, "study_hash": r.StudyHash, "run_id": r.RunID, "model": r.Model, "backend": r.Backend,
		"precision": r.Precision, "config_hash": r.ConfigHash, "llem.version": r.Llem.Version, "llem.commit": r.Llem.Commit} {
		if len(v) > MaxFieldLen {
			return reject(CodeMalformed, "%s is %d bytes long (at most %d)", name, len(v), MaxFieldLen)
		}
	}
	if r.Status != result.StatusOK && r.Status != result.StatusFailed {
		return reject(CodeMalformed, "status %q is neither ok nor failed", short(string(r.Status)))
	}
	if r.Cycle < 1 {
		return reject(CodeMalformed, "cycle %d: cycles count from 1", r.Cycle)
	}
	if len(bytes.TrimSpace(r.Config)) == 0 || r.Config[0] != '{' {
		return reject(CodeMalformed, "record has no config object")
	}
	if r.Timing.StartedAt.IsZero() {
		return reject(CodeMalformed, "record has no timing.started_at")
	}
	return nil
}

// env is the part of the environment snapshot provenance needs.
type env struct {
	envinfo.Snapshot
}

// provenance requires the environment snapshot, the hardware fingerprint
// and the measuring llem's version and commit, and rejects a record whose
// provenance contradicts itself.
func provenance(r *result.Record) (Meta, *Rejection) {
	m := Meta{Study: r.Study, StudyHash: r.StudyHash, RunID: r.RunID, ConfigHash: r.ConfigHash, Cycle: r.Cycle, Attempt: r.Attempt,
		Model: r.Model, Backend: r.Backend, Precision: r.Precision, LlemVersion: r.Llem.Version, LlemCommit: r.Llem.Commit,
		StartedAt: r.Timing.StartedAt.UTC(), Status: string(r.Status), Flags: r.Flags, EnergyPerOutputTokenJ: r.Efficiency.EnergyPerOutputTokenJ}
	if m.Flags == nil {
		m.Flags = []string{}
	}
	if len(bytes.TrimSpace(r.Environment)) == 0 || bytes.Equal(bytes.TrimSpace(r.Environment), []byte("null")) {
		return m, reject(CodeMissingProvenance, "record has no environment snapshot: the archive accepts only records that say what they ran on")
	}
	var e env
	if err := json.Unmarshal(r.Environment, &e); err != nil {
		return m, reject(CodeMissingProvenance, "environment snapshot does not decode: %v", err)
	}
	if r.Llem.Version == "" || r.Llem.Commit == "" {
		return m, reject(CodeMissingProvenance, "record has no llem version and commit (record.llem): the archive accepts only records that name the llem that measured them")
	}
	if e.Fingerprint == "" {
		return m, reject(CodeMissingProvenance, "environment snapshot has no hardware fingerprint")
	}
	if !fingerprint.MatchString(e.Fingerprint) {
		return m, reject(CodeForgedProvenance, "hardware fingerprint %q is not 16 hex digits (envinfo.Fingerprint)", short(e.Fingerprint))
	}
	if e.CPU.Model == "" && len(e.GPU.GPUs) == 0 {
		return m, reject(CodeMissingProvenance, "environment snapshot describes no hardware (no CPU model, no GPU)")
	}
	if e.Llem.Version != "" && (e.Llem.Version != r.Llem.Version || e.Llem.Commit != r.Llem.Commit) {
		return m, reject(CodeForgedProvenance, "record.llem (%s %s) and environment.llem (%s %s) name different llem builds",
			short(r.Llem.Version), short(r.Llem.Commit), short(e.Llem.Version), short(e.Llem.Commit))
	}
	// The fingerprint can be recomputed only while the snapshot keeps every
	// GPU's UUID (a push may remove identifying fields; docs/sharing.md).
	recomputable := e.CPU.Model != ""
	for _, g := range e.GPU.GPUs {
		if g.UUID == "" || g.Name == "" {
			recomputable = false
		}
	}
	if recomputable {
		if fp := envinfo.Fingerprint(e.Snapshot); fp != e.Fingerprint {
			return m, reject(CodeForgedProvenance, "hardware fingerprint %s does not match the snapshot's hardware (recomputed %s)", e.Fingerprint, fp)
		}
	}
	m.Fingerprint = e.Fingerprint
	m.GPU = gpuLabel(e.Snapshot)
	if len(m.GPU) > MaxFieldLen {
		return m, reject(CodeMalformed, "GPU names are %d bytes long (at most %d)", len(m.GPU), MaxFieldLen)
	}
	return m, nil
}

// gpuLabel names the GPUs llem measured: those selected, else all.
func gpuLabel(s envinfo.Snapshot) string {
	var names []string
	for _, g := range s.GPU.GPUs {
		if g.Selected {
			names = append(names, g.Name)
		}
	}
	if len(names) == 0 {
		for _, g := range s.GPU.GPUs {
			names = append(names, g.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	count := map[string]int{}
	var order []string
	for _, n := range names {
		if count[n] == 0 {
			order = append(order, n)
		}
		count[n]++
	}
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = n
		if count[n] > 1 {
			parts[i] = fmt.Sprintf("%d × %s", count[n], n)
		}
	}
	return strings.Join(parts, " + ")
}

// Tolerances of the consistency checks. Records are written by llem from
// the same numbers (result/fill.go), so only float rounding separates them.
const (
	relTol = 1e-6
	// PhaseEnergyTolerance is measure.PhaseSumTolerance: phases summing
	// further from raw_j than this carry the phase_sum_mismatch flag.
	PhaseEnergyTolerance = 0.001
	// PowerHeadroom allows a device's mean power this far above its
	// highest power limit (NVML power readings overshoot briefly).
	PowerHeadroom = 1.10
)

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))+1e-12
}

func has(flags []string, f string) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}

// Consistency re-checks what a record says about itself and returns each
// check that failed ("name: detail"); none means consistent. A record that
// carries a flag for a discrepancy (phase_sum_mismatch, phase_overlap) is
// consistent with it: the flag is the record's own account.
func Consistency(r *result.Record) []string {
	var out []string
	fail := func(name, format string, a ...any) { out = append(out, name+": "+fmt.Sprintf(format, a...)) }

	if h, err := study.ConfigHash(r.Config); err != nil {
		fail("config_hash", "config does not canonicalise: %v", err)
	} else if h != r.ConfigHash {
		fail("config_hash", "config hashes to %s, the record says %s", h, r.ConfigHash)
	}
	if len(r.RunID) != 12 || !strings.HasPrefix(r.ConfigHash, r.RunID) {
		fail("run_id", "run_id %q is not the first 12 digits of config_hash", short(r.RunID))
	}
	if r.Status != result.StatusOK {
		if r.Error == nil {
			fail("status", "status failed without an error")
		}
		return out
	}
	T := r.Timing.WindowS
	if T <= 0 {
		fail("window", "window_s %g is not positive", T)
	}
	if r.Timing.WindowEndNs > r.Timing.WindowStartNs && T > 0 && !near(float64(r.Timing.WindowEndNs-r.Timing.WindowStartNs)/1e9, T, relTol) {
		fail("window", "window_s %g, but window_end_ns − window_start_ns is %g s", T, float64(r.Timing.WindowEndNs-r.Timing.WindowStartNs)/1e9)
	}
	if !r.Timing.EndedAt.IsZero() && r.Timing.EndedAt.Before(r.Timing.StartedAt) {
		fail("timing", "ended_at is before started_at")
	}
	out = append(out, phases(r)...)
	out = append(out, power(r)...)
	out = append(out, tokens(r)...)
	return out
}

// phases: the phases' durations tile the window and their energies sum to
// raw_j (within measure.PhaseSumTolerance unless flagged).
func phases(r *result.Record) []string {
	ps := r.Energy.Phases
	if len(ps) == 0 {
		return nil
	}
	var out []string
	var dur, e float64
	for _, p := range ps {
		if p.DurationS < 0 || p.EnergyJ < 0 {
			out = append(out, fmt.Sprintf("phases: phase %q has a negative duration or energy", short(p.Name)))
		}
		dur += p.DurationS
		e += p.EnergyJ
	}
	T := r.Timing.WindowS
	if has(r.Flags, "phase_overlap") {
		if dur < T*(1-relTol)-1e-9 {
			out = append(out, fmt.Sprintf("phases: durations sum to %.9g s, less than the %.9g s window", dur, T))
		}
	} else if !near(dur, T, relTol) && math.Abs(dur-T) > 1e-6 {
		out = append(out, fmt.Sprintf("phases: durations sum to %.9g s, the window is %.9g s", dur, T))
	}
	if r.Energy.RawJ != nil && *r.Energy.RawJ > 0 && !has(r.Flags, "phase_sum_mismatch") &&
		math.Abs(e-*r.Energy.RawJ) > PhaseEnergyTolerance**r.Energy.RawJ {
		out = append(out, fmt.Sprintf("phases: energies sum to %.6g J, raw_j is %.6g J (and the record has no phase_sum_mismatch flag)", e, *r.Energy.RawJ))
	}
	return out
}

// power: each GPU's mean power within its power limit (with headroom), the
// window's mean power equal to raw_j / window_s.
func power(r *result.Record) []string {
	var out []string
	en := r.Energy
	if en.RawJ != nil {
		if *en.RawJ < 0 {
			out = append(out, fmt.Sprintf("power: raw_j %g is negative", *en.RawJ))
		}
		if en.MeanPowerW != nil && r.Timing.WindowS > 0 && !near(*en.MeanPowerW, *en.RawJ/r.Timing.WindowS, relTol) {
			out = append(out, fmt.Sprintf("power: mean_power_w %g, but raw_j / window_s is %g", *en.MeanPowerW, *en.RawJ/r.Timing.WindowS))
		}
	}
	var e env
	if json.Unmarshal(r.Environment, &e) != nil {
		return out
	}
	limits := map[int]float64{}
	for _, g := range e.GPU.GPUs {
		hi := 0.0
		for _, p := range []*float64{g.PowerLimitW, g.MaxPowerLimitW, g.EnforcedPowerLimitW, g.DefaultPowerLimitW} {
			if p != nil && *p > hi {
				hi = *p
			}
		}
		if hi > 0 {
			limits[g.Index] = hi
		}
	}
	for _, d := range en.PerDevice {
		if d.MeanPowerW < 0 || d.EnergyJ < 0 {
			out = append(out, fmt.Sprintf("power: device %s has negative power or energy", short(d.Name)))
		}
		if d.Kind != "gpu" {
			continue
		}
		if lim, ok := limits[d.Index]; ok && d.MeanPowerW > lim*PowerHeadroom {
			out = append(out, fmt.Sprintf("power: GPU %d drew %.4g W on average, above its %.4g W power limit", d.Index, d.MeanPowerW, lim))
		}
	}
	return out
}

// tokens: throughput's counts agree with the per-request latencies and the
// phases, and the rates and ratios divide what they say they divide.
func tokens(r *result.Record) []string {
	var out []string
	t := r.Throughput
	if t.InputTokens < 0 || t.OutputTokens < 0 || t.Requests < 0 {
		return []string{"tokens: negative token or request count"}
	}
	if per := r.Latency.PerRequest; len(per) > 0 {
		in, outTok, decode := 0, 0, 0
		for _, q := range per {
			in += q.InputTokens
			outTok += q.OutputTokens
			if q.OutputTokens > 1 {
				decode += q.OutputTokens - 1
			}
		}
		if len(per) != t.Requests {
			out = append(out, fmt.Sprintf("tokens: %d requests, %d per-request latencies", t.Requests, len(per)))
		}
		if in != t.InputTokens || outTok != t.OutputTokens {
			out = append(out, fmt.Sprintf("tokens: throughput says %d in / %d out, the requests sum to %d / %d", t.InputTokens, t.OutputTokens, in, outTok))
		}
		if r.Decode != nil && r.Serving == nil && r.Decode.Tokens != decode {
			out = append(out, fmt.Sprintf("tokens: decode.tokens %d, the requests generated %d tokens after their first", r.Decode.Tokens, decode))
		}
	}
	// A serving run has no prefill/decode split (its window is one host
	// phase over the server's steady state: docs/serving.md), so its
	// phase token counts are not the window's.
	if r.Prefill != nil && r.Serving == nil && r.Prefill.Tokens != t.InputTokens {
		out = append(out, fmt.Sprintf("tokens: prefill.tokens %d, throughput.input_tokens %d", r.Prefill.Tokens, t.InputTokens))
	}
	if T := r.Timing.WindowS; T > 0 {
		if !near(t.OutputTokensPerSec, float64(t.OutputTokens)/T, relTol) {
			out = append(out, fmt.Sprintf("tokens: output_tokens_per_sec %g, output_tokens / window_s is %g", t.OutputTokensPerSec, float64(t.OutputTokens)/T))
		}
		if !near(t.InputTokensPerSec, float64(t.InputTokens)/T, relTol) {
			out = append(out, fmt.Sprintf("tokens: input_tokens_per_sec %g, input_tokens / window_s is %g", t.InputTokensPerSec, float64(t.InputTokens)/T))
		}
	}
	if ept := r.Efficiency.EnergyPerOutputTokenJ; ept != nil && r.Energy.RawJ != nil && t.OutputTokens > 0 &&
		!near(*ept, *r.Energy.RawJ/float64(t.OutputTokens), relTol) {
		out = append(out, fmt.Sprintf("tokens: energy_per_output_token_j %g, raw_j / output_tokens is %g", *ept, *r.Energy.RawJ/float64(t.OutputTokens)))
	}
	return out
}
