package share

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/share/sharetest"
)

var alice = Identity{Home: "/home/alice", User: "alice", Host: "gpu-node07.lab.example.org"}

func TestScrubKeepsOnlyAllowlistedEnvironment(t *testing.T) {
	rec := `{"schema_version":"3.1","run_id":"r1","cycle":1,"energy":{"total_j":12.50},` +
		`"model":"/home/alice/models/llama","error":{"message":"open /home/alice/x: denied on gpu-node07","stderr_tail":"/home/alicex stays"},` +
		`"gpu_settings":[{"uuid":"GPU-1","index":0,"power_limit_w":300}],` +
		`"environment":` + exportertest.Environment + `}`
	// Add what envinfo records for a local Python runner and an unknown field.
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(rec))
	dec.UseNumber()
	dec.Decode(&m)
	env := m["environment"].(map[string]any)
	env["runners"].(map[string]any)["vllm"] = map[string]any{"kind": "local", "source": "auto", "python": "/home/alice/venv/bin/python"}
	env["slurm_job_id"] = "slurm-77"
	b, _ := json.Marshal(m)
	sc, err := Scrub(b, alice)
	if err != nil {
		t.Fatal(err)
	}
	out := string(sc.Record)
	for _, gone := range []string{"GPU-5f1d2c3b", "GPU-1", "00000000:18:00.0", "/.dockerenv", "venv", "llem/pytorch:0.1.0", "1652823054001", "slurm-77", "/home/alice/", "gpu-node07"} {
		if strings.Contains(out, gone) {
			t.Errorf("%q is uploaded: %s", gone, out)
		}
	}
	for _, kept := range []string{`"total_j":12.50`, `"name":"NVIDIA H100 80GB HBM3"`, `"fingerprint":"dbbe10970a6dc4a3"`, `"model":"~/models/llama"`,
		`open ~/x: denied on <host>`, `/home/alicex stays`, `"power_limit_w":300`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s missing from %s", kept, out)
		}
	}
	for _, f := range []string{"gpu.gpus[].uuid", "gpu.gpus[].pci_bus_id", "gpu.gpus[].serial", "container.evidence", "runners.*.image", "runners.*.python", "slurm_job_id", "gpu_settings[].uuid"} {
		if !slices.Contains(sc.Removed, f) {
			t.Errorf("removed fields %v lack %s", sc.Removed, f)
		}
	}
	for _, f := range []string{"gpu.gpus[].name", "fingerprint", "llem.commit", "runners.*.kind", "cpu.model"} {
		if !slices.Contains(sc.Kept, f) {
			t.Errorf("kept fields %v lack %s", sc.Kept, f)
		}
	}
	// Scrubbing is a fixed point: the archive's hash of what was sent is
	// what the client computed.
	again, err := Scrub(sc.Record, alice)
	if err != nil || string(again.Record) != out {
		t.Fatalf("scrub is not idempotent:\n%s\n%s", out, again.Record)
	}
}

func TestScrubKeepsReleaseImages(t *testing.T) {
	rec := `{"environment":{"runners":{"vllm":{"kind":"docker","image":"ghcr.io/llenergymeasure/vllm:0.3-cu12","image_source":"release image for the host's CUDA 12","image_digest":"ghcr.io/llenergymeasure/vllm@sha256:ab"}}}}`
	sc, err := Scrub([]byte(rec), Identity{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sc.Record), "ghcr.io/llenergymeasure/vllm:0.3-cu12") || !strings.Contains(string(sc.Record), "@sha256:ab") {
		t.Fatalf("release image removed: %s", sc.Record)
	}
}

func TestScrubRejectsNonObjects(t *testing.T) {
	for _, in := range []string{``, `null`, `[1]`, `{"a":1} x`, `"s"`} {
		if _, err := Scrub([]byte(in), alice); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzScrub(f *testing.F) {
	f.Add([]byte(`{"environment":`+exportertest.Environment+`}`), "/home/alice", "alice", "node1")
	f.Add([]byte(`{"a":"/home/alice/b","gpu_settings":[{"uuid":"x"}]}`), "/home/alice", "alice", "node1")
	f.Add([]byte(`{"environment":{"runners":{"x":7}}}`), "", "", "")
	f.Fuzz(func(t *testing.T, in []byte, home, user, host string) {
		id := Identity{Home: home, User: user, Host: host}
		sc, err := Scrub(in, id)
		if err != nil {
			return
		}
		if _, err := wire.RecordHash(sc.Record); err != nil {
			t.Fatalf("scrubbed record does not hash: %v", err)
		}
		again, err := Scrub(sc.Record, id)
		if err != nil {
			t.Fatalf("scrubbed record does not scrub again: %v", err)
		}
		if len(again.Removed) != 0 {
			t.Fatalf("second scrub removed %v from %s", again.Removed, sc.Record)
		}
	})
}

func FuzzParseArchiveURL(f *testing.F) {
	for _, s := range []string{"https://a.example", "http://127.0.0.1:8080/x/", "http://example.org", "hf://datasets/a/b", "https://u:p@h", "https://h/?token=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseArchiveURL(s)
		if err != nil {
			return
		}
		if strings.HasSuffix(u, "/") || strings.Contains(u, "@") || strings.Contains(u, "?") {
			t.Fatalf("%q accepted as %q", s, u)
		}
		if strings.HasPrefix(u, "http://") {
			if _, err := ParseArchiveURL(u); err != nil {
				t.Fatalf("accepted %q but not its own output %q", s, u)
			}
		}
	})
}

func TestParseArchiveURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://archive.example.org/":   "https://archive.example.org",
		"http://127.0.0.1:8080":          "http://127.0.0.1:8080",
		"http://localhost:1/base/":       "http://localhost:1/base",
		"http://archive.example.org":     "",
		"https://u:secret@h.example.org": "",
		"https://h/?api_key=secret":      "",
		"ftp://h":                        "",
		"archive.example.org":            "",
	} {
		got, err := ParseArchiveURL(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error shows the secret: %v", in, err)
		}
	}
}

// study writes a synthetic study of runs×cycles records with a realistic
// environment.
func study(t *testing.T, runs, cycles int) string {
	t.Helper()
	dir := t.TempDir()
	recs := exportertest.Records(exportertest.Spec{Study: "share", Runs: runs, Cycles: cycles, Seed: 1})
	_ = recs
	if _, _, err := exportertest.WriteStudy(dir, exportertest.Spec{Study: "share", Runs: runs, Cycles: cycles, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	// Give every record the realistic environment snapshot.
	files, _ := filepath.Glob(filepath.Join(dir, "records", "*", "*.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["environment"] = json.RawMessage(exportertest.Environment)
		b, _ = json.MarshalIndent(m, "", "  ")
		os.WriteFile(f, b, 0o644)
	}
	return dir
}

func TestCollectStudyAndOneRecord(t *testing.T) {
	dir := study(t, 3, 2)
	p, err := Collect(dir, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Items) != 6 || p.Study != "share" {
		t.Fatalf("collected %d records of %q", len(p.Items), p.Study)
	}
	if !slices.Contains(p.EnvRemoved, "gpu.gpus[].uuid") || !slices.Contains(p.EnvKept, "fingerprint") {
		t.Fatalf("kept %v removed %v", p.EnvKept, p.EnvRemoved)
	}
	one, err := Collect(filepath.Join(dir, filepath.FromSlash(p.Items[2].Path)), alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Items) != 1 || one.Items[0].SHA256 != p.Items[2].SHA256 {
		t.Fatalf("one record: %+v", one.Items)
	}
	// A stray file under records/ is never pushed, even when named.
	stray := filepath.Join(dir, "records", "stranger", "cycle-1.json")
	os.MkdirAll(filepath.Dir(stray), 0o755)
	b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p.Items[0].Path)))
	os.WriteFile(stray, b, 0o644)
	if _, err := Collect(stray, alice); err == nil {
		t.Fatal("a stray record was collected")
	}
	again, err := Collect(dir, alice)
	if err != nil || len(again.Items) != 6 || len(again.Skipped) != 1 {
		t.Fatalf("with a stray file: %d items, skipped %v, %v", len(again.Items), again.Skipped, err)
	}
}

func TestPushIsIdempotentAndBatched(t *testing.T) {
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"w-token": "write"}})
	p, err := Collect(study(t, 5, 5), alice)
	if err != nil {
		t.Fatal(err)
	}
	var calls []int
	c := &Client{Base: srv.URL, Token: "w-token", Batch: 7, Progress: func(done, total int) { calls = append(calls, done) }}
	res, err := c.Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 25 || len(res.Rejected) != 0 || srv.Stored() != 25 || srv.PushRequests() != 4 {
		t.Fatalf("accepted %d rejected %d stored %d in %d requests", len(res.Accepted), len(res.Rejected), srv.Stored(), srv.PushRequests())
	}
	if !slices.Equal(calls, []int{0, 7, 14, 21, 25}) {
		t.Fatalf("progress %v", calls)
	}
	// The archive holds the scrubbed record, byte for byte.
	if got, _ := srv.Record(p.Items[0].SHA256); string(got) != string(p.Items[0].Record) {
		t.Fatal("stored record differs from the pushed one")
	}
	// Again: nothing is sent, everything is reported as already stored.
	res, err = (&Client{Base: srv.URL, Token: "w-token"}).Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AlreadyStored) != 25 || len(res.Accepted) != 0 || srv.PushRequests() != 4 || srv.Stored() != 25 {
		t.Fatalf("second push: already %d accepted %d requests %d", len(res.AlreadyStored), len(res.Accepted), srv.PushRequests())
	}
}

func TestPushResumesAfterPartialPush(t *testing.T) {
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"w": "write"}})
	p, _ := Collect(study(t, 4, 3), alice)
	if _, err := (&Client{Base: srv.URL, Token: "w"}).Push(context.Background(), p.Items[:5]); err != nil {
		t.Fatal(err)
	}
	res, err := (&Client{Base: srv.URL, Token: "w", Batch: 2}).Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.AlreadyStored) != 5 || len(res.Accepted) != 7 || srv.Stored() != 12 {
		t.Fatalf("resume: already %d accepted %d stored %d", len(res.AlreadyStored), len(res.Accepted), srv.Stored())
	}
	for _, a := range res.Accepted {
		if a.Duplicate {
			t.Fatalf("resend of a stored record: %+v", a)
		}
	}
}

func TestPushSplitsOversizedBatches(t *testing.T) {
	p, _ := Collect(study(t, 2, 3), alice)
	limit := int64(len(p.Items[0].Record)*2 + 600)
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"w": "write"}, MaxBody: limit})
	res, err := (&Client{Base: srv.URL, Token: "w"}).Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 6 || srv.Stored() != 6 {
		t.Fatalf("accepted %d stored %d", len(res.Accepted), srv.Stored())
	}
}

func TestPushReportsRejections(t *testing.T) {
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"w": "write"}})
	p, _ := Collect(study(t, 2, 2), alice)
	// A forged hash and a record without provenance.
	p.Items[0].SHA256 = strings.Repeat("0", 64)
	var m map[string]any
	json.Unmarshal(p.Items[1].Record, &m)
	delete(m, "environment")
	p.Items[1].Record, _ = json.Marshal(m)
	p.Items[1].SHA256, _ = wire.RecordHash(p.Items[1].Record)
	res, err := (&Client{Base: srv.URL, Token: "w"}).Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]bool{}
	for _, r := range res.Rejected {
		codes[r.Code] = true
	}
	if len(res.Accepted) != 2 || !codes["hash_mismatch"] || !codes["missing_provenance"] || srv.Stored() != 2 {
		t.Fatalf("accepted %d rejected %+v", len(res.Accepted), res.Rejected)
	}
}

func TestPushAuthErrorsNeverShowTheToken(t *testing.T) {
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"r-secret": "read"}})
	p, _ := Collect(study(t, 1, 1), alice)
	for tok, status := range map[string]int{"wrong-secret": 401, "r-secret": 403} {
		_, err := (&Client{Base: srv.URL, Token: tok}).Push(context.Background(), p.Items)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != status {
			t.Fatalf("token %s: %v", tok, err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("error shows the token: %v", err)
		}
	}
}

func TestPushRetriesTransientFailures(t *testing.T) {
	inner := sharetest.NewUnstarted(sharetest.Options{Tokens: map[string]string{"w": "write"}})
	var n atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 { // every other request fails
			http.Error(w, `{"code":"unavailable","reason":"restarting"}`, http.StatusServiceUnavailable)
			return
		}
		inner.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()
	p, _ := Collect(study(t, 2, 2), alice)
	c := &Client{Base: front.URL, Token: "w", Batch: 1, Backoff: func(int) time.Duration { return 0 }}
	res, err := c.Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accepted) != 4 || inner.Stored() != 4 {
		t.Fatalf("accepted %d stored %d", len(res.Accepted), inner.Stored())
	}
}

func TestPushIncompleteAnswerIsAnError(t *testing.T) {
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.KnownPath {
			json.NewEncoder(w).Encode(wire.KnownResponse{})
			return
		}
		json.NewEncoder(w).Encode(wire.PushResponse{}) // answers for nothing
	}))
	defer front.Close()
	p, _ := Collect(study(t, 1, 2), alice)
	if _, err := (&Client{Base: front.URL, Token: "w"}).Push(context.Background(), p.Items); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("err = %v", err)
	}
}

var _ = result.RecordPath

func TestScrubKeepsNullSections(t *testing.T) {
	sc, err := Scrub([]byte(`{"environment":{"gpu":{"gpus":null,"unavailable":"no NVML"},"runners":null}}`), alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Removed) != 0 || string(sc.Record) != `{"environment":{"gpu":{"gpus":null,"unavailable":"no NVML"},"runners":null}}` {
		t.Fatalf("removed %v: %s", sc.Removed, sc.Record)
	}
}

// TestScrubKeepsTheFingerprintRecomputable checks the rule the archive
// relies on: the hardware facts the fingerprint is computed from
// (envinfo.Fingerprint) are never rewritten, even when they contain the
// host name.
func TestScrubKeepsTheFingerprintRecomputable(t *testing.T) {
	id := Identity{Home: "/home/xeon", User: "xeon", Host: "xeon"}
	in := `{"model":"/home/xeon/m","environment":{"cpu":{"model":"Intel Xeon Gold 6338"},"memory_bytes":1,"gpu":{"unavailable":"open /home/xeon/lib: no"},"fingerprint":"0123456789abcdef"}}`
	sc, err := Scrub([]byte(in), id)
	if err != nil {
		t.Fatal(err)
	}
	out := string(sc.Record)
	if !strings.Contains(out, `"model":"Intel Xeon Gold 6338"`) || !strings.Contains(out, `"unavailable":"open ~/lib: no"`) || !strings.Contains(out, `"model":"~/m"`) {
		t.Fatalf("scrubbed: %s", out)
	}
}

// TestDocsListTheSharedFields keeps docs/sharing.md true: every field of
// the allowlist and every removal with a reason is named there.
func TestDocsListTheSharedFields(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "sharing.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, f := range EnvFields() {
		name := f
		if i := strings.LastIndexAny(f, "."); i > 0 && (strings.HasPrefix(f, "gpu.gpus[].") || strings.HasPrefix(f, "runners.*.") || strings.HasPrefix(f, "cpu.")) {
			name = f[i+1:]
		}
		if !strings.Contains(doc, "`"+f+"`") && !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/sharing.md does not name the shared field %s", f)
		}
	}
	for f := range envRemovedWhy {
		if strings.HasPrefix(f, "environment (") {
			continue
		}
		if !strings.Contains(doc, "`"+f+"`") {
			t.Errorf("docs/sharing.md does not name the removed field %s", f)
		}
	}
}

// TestPushAllRejected: an archive answers 422 when it rejected every record
// of a request, with the per-record answer beside the error (as llem
// archive serve does); that is reported, not treated as a failure.
func TestPushAllRejected(t *testing.T) {
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"w": "write"}})
	p, _ := Collect(study(t, 1, 2), alice)
	for i := range p.Items {
		p.Items[i].SHA256 = strings.Repeat("f", 63) + string(rune('0'+i))
	}
	res, err := (&Client{Base: srv.URL, Token: "w"}).Push(context.Background(), p.Items)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 2 || len(res.Accepted) != 0 || res.Rejected[0].Code != "hash_mismatch" || srv.Stored() != 0 {
		t.Fatalf("rejected %+v accepted %d", res.Rejected, len(res.Accepted))
	}
}
