package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/result"
)

const corruptStudy = `name: "corrupt"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: native: batch_size: [1, 2]
execution: {cycles: 2, order: "sequential"}
`

// corruption damages a copy of a finished 2-run × 2-cycle study. manifestOK
// says whether the manifest still reads (so --resume must repair the study),
// as opposed to a destroyed manifest (every command must refuse clearly).
type corruption struct {
	name       string
	manifestOK bool
	apply      func(t *testing.T, dir, other string)
}

// TestCorruptionsAcrossCommands damages a study in 30 ways and runs every
// command that reads or continues it: none may panic, print a number taken
// from a record that is not the study's, or fail without saying why; and
// wherever the manifest survives, --resume repairs the study to 4 verified
// records.
func TestCorruptionsAcrossCommands(t *testing.T) {
	t.Setenv("LLEM_CACHE_DIR", t.TempDir())
	t.Setenv("LLEM_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	work := t.TempDir()
	studyPath := filepath.Join(work, "corrupt.cue")
	os.WriteFile(studyPath, []byte(corruptStudy), 0o644)
	otherPath := filepath.Join(work, "other.cue")
	os.WriteFile(otherPath, []byte(strings.Replace(corruptStudy, `name: "corrupt"`, `name: "other"`, 1)), 0o644)
	pristine := evalTo(t, studyPath, filepath.Join(work, "pristine"))
	other := evalTo(t, otherPath, filepath.Join(work, "other"))
	m0, err := result.ReadManifest(pristine)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(dir string, pos int) string {
		return filepath.Join(dir, filepath.FromSlash(m0.Entries[pos].Record))
	}
	editRecord := func(dir string, pos int, edit func(r map[string]any)) {
		b, _ := os.ReadFile(rec(dir, pos))
		var r map[string]any
		json.Unmarshal(b, &r)
		edit(r)
		b, _ = json.Marshal(r)
		os.WriteFile(rec(dir, pos), b, 0o644)
	}
	editManifest := func(dir string, edit func(m map[string]any)) {
		b, _ := os.ReadFile(filepath.Join(dir, result.ManifestFile))
		var m map[string]any
		json.Unmarshal(b, &m)
		edit(m)
		b, _ = json.Marshal(m)
		os.WriteFile(filepath.Join(dir, result.ManifestFile), b, 0o644)
	}
	write := func(p, s string) { os.WriteFile(p, []byte(s), 0o644) }
	cases := []corruption{
		{"record null", true, func(t *testing.T, d, o string) { write(rec(d, 0), "null") }},
		{"record empty", true, func(t *testing.T, d, o string) { write(rec(d, 0), "") }},
		{"record truncated", true, func(t *testing.T, d, o string) {
			b, _ := os.ReadFile(rec(d, 1))
			os.WriteFile(rec(d, 1), b[:len(b)/2], 0o644)
		}},
		{"record binary garbage", true, func(t *testing.T, d, o string) { os.WriteFile(rec(d, 1), []byte{0, 1, 2, 0xff, 0xfe}, 0o644) }},
		{"record of another run", true, func(t *testing.T, d, o string) { b, _ := os.ReadFile(rec(d, 2)); os.WriteFile(rec(d, 0), b, 0o644) }},
		{"record of another study", true, func(t *testing.T, d, o string) { b, _ := os.ReadFile(rec(o, 0)); os.WriteFile(rec(d, 0), b, 0o644) }},
		{"record with another design hash", true, func(t *testing.T, d, o string) {
			editRecord(d, 3, func(r map[string]any) { r["study_hash"] = "forged" })
		}},
		{"record with another cycle", true, func(t *testing.T, d, o string) { editRecord(d, 1, func(r map[string]any) { r["cycle"] = 7.0 }) }},
		{"record with another position", true, func(t *testing.T, d, o string) { editRecord(d, 1, func(r map[string]any) { r["position"] = 3.0 }) }},
		{"record status flipped", true, func(t *testing.T, d, o string) { editRecord(d, 2, func(r map[string]any) { r["status"] = "failed" }) }},
		{"record of schema 2.0", true, func(t *testing.T, d, o string) {
			editRecord(d, 2, func(r map[string]any) { r["schema_version"] = "2.0" })
		}},
		{"record deleted", true, func(t *testing.T, d, o string) { os.Remove(rec(d, 3)) }},
		{"record is a directory", true, func(t *testing.T, d, o string) { os.Remove(rec(d, 3)); os.Mkdir(rec(d, 3), 0o755) }},
		{"records directory deleted", true, func(t *testing.T, d, o string) { os.RemoveAll(filepath.Join(d, result.RecordsDir)) }},
		{"records directory is a file", true, func(t *testing.T, d, o string) {
			os.RemoveAll(filepath.Join(d, result.RecordsDir))
			write(filepath.Join(d, result.RecordsDir), "x")
		}},
		{"stray record of another study", true, func(t *testing.T, d, o string) {
			b, _ := os.ReadFile(rec(o, 1))
			os.MkdirAll(filepath.Join(d, result.RecordsDir, "zzz"), 0o755)
			os.WriteFile(filepath.Join(d, result.RecordsDir, "zzz", "cycle-1.json"), b, 0o644)
		}},
		{"manifest points a record outside", true, func(t *testing.T, d, o string) {
			editManifest(d, func(m map[string]any) { m["entries"].([]any)[0].(map[string]any)["record"] = "../../../etc/passwd" })
		}},
		{"manifest points a record at another's", true, func(t *testing.T, d, o string) {
			editManifest(d, func(m map[string]any) { m["entries"].([]any)[0].(map[string]any)["record"] = m0.Entries[2].Record })
		}},
		{"journal garbage line", true, func(t *testing.T, d, o string) { write(filepath.Join(d, result.JournalFile), "garbage\n") }},
		{"journal torn last line", true, func(t *testing.T, d, o string) {
			write(filepath.Join(d, result.JournalFile), `{"pos":1,"entry":{"run_id`)
		}},
		{"journal entry out of range", true, func(t *testing.T, d, o string) {
			write(filepath.Join(d, result.JournalFile), `{"pos":99,"entry":{"run_id":"x","status":"done"}}`+"\n")
		}},
		{"summary corrupt", true, func(t *testing.T, d, o string) { write(filepath.Join(d, result.SummaryFile), "{") }},
		{"summary deleted", true, func(t *testing.T, d, o string) { os.Remove(filepath.Join(d, result.SummaryFile)) }},
		{"plan deleted", true, func(t *testing.T, d, o string) { os.Remove(filepath.Join(d, result.PlanFile)) }},
		{"plan corrupt", true, func(t *testing.T, d, o string) { write(filepath.Join(d, result.PlanFile), "[1,") }},
		{"timeseries corrupt", true, func(t *testing.T, d, o string) {
			ts, _ := filepath.Glob(filepath.Join(d, result.SeriesDir, "*", "*.parquet"))
			for _, p := range ts {
				write(p, "not parquet")
			}
		}},
		{"manifest truncated", false, func(t *testing.T, d, o string) {
			b, _ := os.ReadFile(filepath.Join(d, result.ManifestFile))
			os.WriteFile(filepath.Join(d, result.ManifestFile), b[:len(b)/3], 0o644)
		}},
		{"manifest empty", false, func(t *testing.T, d, o string) { write(filepath.Join(d, result.ManifestFile), "") }},
		{"manifest null", false, func(t *testing.T, d, o string) { write(filepath.Join(d, result.ManifestFile), "null") }},
		{"manifest deleted", false, func(t *testing.T, d, o string) { os.Remove(filepath.Join(d, result.ManifestFile)) }},
		{"manifest is a directory", false, func(t *testing.T, d, o string) {
			os.Remove(filepath.Join(d, result.ManifestFile))
			os.Mkdir(filepath.Join(d, result.ManifestFile), 0o755)
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(work, fmt.Sprintf("case-%02d", i), filepath.Base(pristine))
			copyTree(t, pristine, dir)
			c.apply(t, dir, other)
			exp := filepath.Join(work, fmt.Sprintf("case-%02d", i), "exports")
			os.Mkdir(exp, 0o755)
			for _, args := range [][]string{
				{"results", "show", dir}, {"results", "show", dir, "--json"}, {"results", "compare", dir, pristine},
				{"results", "export", dir, "--out", filepath.Join(exp, "x.json")},
				{"results", "export", dir, "--format", "parquet", "--out", filepath.Join(exp, "x.parquet")},
				{"results", "export", dir, "--format", "hf-datasets", "--out", filepath.Join(exp, "hf")},
				{"results", "ls", "--root", filepath.Dir(dir)},
			} {
				code, stdout, stderr := runLlem(t, args...)
				if code != 0 && code != 1 && code != 2 {
					t.Fatalf("%v: exit %d\n%s", args, code, stderr)
				}
				if code != 0 && strings.TrimSpace(stderr) == "" {
					t.Fatalf("%v: exit %d without a word", args, code)
				}
				if strings.Contains(stdout, `"study": "other"`) || strings.Contains(stdout, "forged") {
					t.Fatalf("%v: another study's record was merged:\n%s", args, stdout)
				}
			}
			code, _, stderr := runLlem(t, "eval", studyPath, "--resume", dir, "--quiet")
			if !c.manifestOK {
				if code != 2 || !strings.Contains(stderr, "hint:") {
					t.Fatalf("resume of a destroyed manifest: exit %d\n%s", code, stderr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("resume: exit %d\n%s", code, stderr)
			}
			m, err := result.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			recs, probs, err := result.StudyRecords(dir, m)
			if err != nil || m.Status != result.StudyCompleted || len(recs) != 4 {
				t.Fatalf("after resume: %s, %d records, problems %v, %v", m.Status, len(recs), probs, err)
			}
			for _, p := range probs {
				if p.Kind != result.RecordStray {
					t.Fatalf("after resume: %v", p)
				}
			}
			if _, err := result.ReadSummary(dir); err != nil {
				t.Fatalf("after resume: %v", err)
			}
		})
	}
}

func evalTo(t *testing.T, study, out string) string {
	t.Helper()
	if code, _, stderr := runLlem(t, "eval", study, "--out", out, "--quiet"); code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "*", result.ManifestFile))
	if len(dirs) != 1 {
		t.Fatalf("eval made %v", dirs)
	}
	return filepath.Dir(dirs[0])
}

func runLlem(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}
