package verify_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/verify"
	"github.com/llenergymeasure/llem/pkg/result"
)

func TestConsistentRecordIsAccepted(t *testing.T) {
	rec, rj := verify.Check(archivetest.Push(archivetest.Record(archivetest.Spec{})))
	if rj != nil {
		t.Fatalf("rejected: %v", rj)
	}
	if rec.Verdict != verify.Consistent || len(rec.Checks) != 0 {
		t.Fatalf("verdict %s %v", rec.Verdict, rec.Checks)
	}
	if rec.Meta.GPU != "NVIDIA H100 80GB HBM3" || rec.Meta.Fingerprint == "" || rec.Meta.LlemCommit != "abc1234" {
		t.Fatalf("meta %+v", rec.Meta)
	}
}

// TestInconsistenciesAreFound breaks one fact at a time: the record is
// still accepted, with an inconsistent verdict naming the check, and
// nothing in it is changed.
func TestInconsistenciesAreFound(t *testing.T) {
	for _, c := range []struct {
		check string
		edit  func(r *result.Record)
	}{
		{"config_hash", func(r *result.Record) { r.Config = json.RawMessage(`{"model":"other"}`) }},
		{"phases", func(r *result.Record) { r.Energy.Phases[0].DurationS += 1 }},
		{"phases", func(r *result.Record) { r.Energy.Phases[1].EnergyJ *= 1.01 }},
		{"power", func(r *result.Record) { r.Energy.PerDevice[0].MeanPowerW = 2000 }},
		{"power", func(r *result.Record) { *r.Energy.MeanPowerW *= 2 }},
		{"tokens", func(r *result.Record) { r.Throughput.OutputTokens++ }},
		{"tokens", func(r *result.Record) { r.Decode.Tokens-- }},
		{"tokens", func(r *result.Record) { r.Prefill.Tokens++ }},
		{"tokens", func(r *result.Record) { *r.Efficiency.EnergyPerOutputTokenJ /= 2 }},
		{"window", func(r *result.Record) { r.Timing.WindowS = 30 }},
	} {
		r := archivetest.Record(archivetest.Spec{})
		c.edit(r)
		p := archivetest.Push(r)
		rec, rj := verify.Check(p)
		if rj != nil {
			t.Fatalf("%s: rejected: %v", c.check, rj)
		}
		if rec.Verdict != verify.Inconsistent || !strings.Contains(strings.Join(rec.Checks, "\n"), c.check+":") {
			t.Errorf("%s: verdict %s %q", c.check, rec.Verdict, rec.Checks)
		}
		if rec.SHA256 != p.SHA256 {
			t.Errorf("%s: the record changed", c.check)
		}
	}
	// A flagged discrepancy is the record's own account, not an inconsistency.
	r := archivetest.Record(archivetest.Spec{})
	r.Energy.Phases[1].EnergyJ *= 1.01
	r.Flags = append(r.Flags, "phase_sum_mismatch")
	if rec, _ := verify.Check(archivetest.Push(r)); rec == nil || rec.Verdict != verify.Consistent {
		t.Fatalf("flagged phase_sum_mismatch: %+v", rec)
	}
}

func TestProvenanceRejections(t *testing.T) {
	for _, c := range []struct {
		code string
		edit func(r *result.Record)
	}{
		{verify.CodeMissingProvenance, func(r *result.Record) { r.Environment = nil }},
		{verify.CodeMissingProvenance, func(r *result.Record) { r.Llem.Commit = "" }},
		{verify.CodeMissingProvenance, func(r *result.Record) {
			r.Environment = json.RawMessage(strings.Replace(string(r.Environment), `"fingerprint":"`, `"fingerprint":"x`, 1)[:0] + `{"cpu":{"model":"x"}}`)
		}},
		{verify.CodeForgedProvenance, func(r *result.Record) {
			r.Environment = json.RawMessage(strings.Replace(string(r.Environment), "AMD EPYC 9454", "AMD EPYC 7763", 1))
		}},
		{verify.CodeForgedProvenance, func(r *result.Record) { r.Llem.Version = "1.0.0" }},
		{verify.CodeSchemaVersion, func(r *result.Record) { r.SchemaVersion = "2.0" }},
		{verify.CodeMalformed, func(r *result.Record) { r.Cycle = 0 }},
		{verify.CodeMalformed, func(r *result.Record) { r.Model = strings.Repeat("m", verify.MaxFieldLen+1) }},
	} {
		r := archivetest.Record(archivetest.Spec{})
		c.edit(r)
		if _, rj := verify.Check(archivetest.Push(r)); rj == nil || rj.Code != c.code {
			t.Errorf("want %s, got %v", c.code, rj)
		}
	}
	p := archivetest.Push(archivetest.Record(archivetest.Spec{}))
	p.Record = append(p.Record[:len(p.Record)-1], []byte(`,"x":1}`)...)
	if _, rj := verify.Check(p); rj == nil || rj.Code != verify.CodeHashMismatch {
		t.Errorf("changed after hashing: %v", rj)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{`, `{"a":"\u0000"}`} {
		if _, rj := verify.Check(archivetest.RawUnchecked([]byte(bad))); rj == nil || rj.Code != verify.CodeMalformed {
			t.Errorf("%s: %v", bad, rj)
		}
	}
}
