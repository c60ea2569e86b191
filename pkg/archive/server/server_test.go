package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/server"
	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// archive is a running archive for a test: server, store and tokens.
type archive struct {
	URL                  string
	Store                store.Store
	Write, Read, Revoked string
	srv                  *httptest.Server
}

// fastStats keeps the statistics cheap in tests (the numbers are not
// what is under test here).
var fastStats = stats.Options{Resamples: 200, Seed: 42, Level: 0.95}

func newArchive(t testing.TB, url string, o server.Options) *archive {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := &archive{Store: st}
	mk := func(name, scope string, rate int) string {
		secret, hash, err := server.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateToken(ctx, store.Token{Name: name, Scope: scope, RatePerMin: rate}, hash); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	a.Write = mk("writer", store.ScopeWrite, 0)
	a.Read = mk("reader", store.ScopeRead, 0)
	a.Revoked = mk("gone", store.ScopeWrite, 0)
	if _, err := st.RevokeToken(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if o.Stats.Resamples == 0 {
		o.Stats = fastStats
	}
	a.srv = httptest.NewServer(server.New(st, o))
	a.URL = a.srv.URL
	t.Cleanup(func() { a.srv.Close(); st.Close() })
	return a
}

func sqliteArchive(t testing.TB, o server.Options) *archive {
	return newArchive(t, filepath.Join(t.TempDir(), "archive.db"), o)
}

type reply struct {
	Status int
	Body   []byte
	Header http.Header
}

func (a *archive) do(t testing.TB, method, path, token string, body []byte, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b, resp.Header}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (a *archive) count(t testing.TB) int {
	t.Helper()
	n, err := a.Store.Count(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func records(n int, s archivetest.Spec) []wire.PushedRecord {
	var out []wire.PushedRecord
	for c := 1; c <= n; c++ {
		s.Cycle = c
		out = append(out, archivetest.Push(archivetest.Record(s)))
	}
	return out
}

func TestPushQueryAggregate(t *testing.T) {
	a := sqliteArchive(t, server.Options{})
	recs := append(records(4, archivetest.Spec{}), records(3, archivetest.Spec{Model: "other/model", GPU: "NVIDIA A100-SXM4-80GB"})...)
	r := a.do(t, "POST", wire.PushPath, a.Write, mustJSON(t, archivetest.Request("p-1", recs...)))
	if r.Status != 200 {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	var pr wire.PushResponse
	json.Unmarshal(r.Body, &pr)
	if len(pr.Accepted) != 7 || len(pr.Rejected) != 0 || pr.Accepted[0].Verdict != "consistent" || pr.Accepted[0].SHA256 != recs[0].SHA256 {
		t.Fatalf("push reply %s", r.Body)
	}
	// Known, for resuming.
	r = a.do(t, "POST", wire.KnownPath, a.Read, mustJSON(t, wire.KnownRequest{SHA256: []string{recs[2].SHA256, strings.Repeat("0", 64)}}))
	var kr wire.KnownResponse
	if json.Unmarshal(r.Body, &kr); r.Status != 200 || !slices.Equal(kr.Known, []string{recs[2].SHA256}) {
		t.Fatalf("known: %d %s", r.Status, r.Body)
	}
	// Query with filters and pages.
	r = a.do(t, "GET", "/api/v1/records?gpu=NVIDIA+A100-SXM4-80GB&limit=2", a.Read, nil)
	var lr struct {
		Records []struct {
			SHA256, Model, GPU string
		} `json:"records"`
		NextCursor string `json:"next_cursor"`
	}
	if json.Unmarshal(r.Body, &lr); r.Status != 200 || len(lr.Records) != 2 || lr.Records[0].Model != "other/model" || lr.NextCursor == "" {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	r = a.do(t, "GET", "/api/v1/records?gpu=NVIDIA+A100-SXM4-80GB&limit=2&cursor="+lr.NextCursor, a.Read, nil)
	lr.Records, lr.NextCursor = nil, ""
	if json.Unmarshal(r.Body, &lr); len(lr.Records) != 1 || lr.NextCursor != "" {
		t.Fatalf("second page: %s", r.Body)
	}
	r = a.do(t, "GET", "/api/v1/records/"+recs[0].SHA256, a.Read, nil)
	var one struct {
		Record  json.RawMessage `json:"record"`
		Verdict string          `json:"verdict"`
	}
	if json.Unmarshal(r.Body, &one); r.Status != 200 || one.Verdict != "consistent" {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	if h, _ := wire.RecordHash(one.Record); h != recs[0].SHA256 {
		t.Fatal("the record served does not hash to its sha256")
	}
	// The statistics are pkg/stats' for the same records.
	r = a.do(t, "GET", "/api/v1/configs?model=meta-llama/Llama-3.1-8B", a.Read, nil)
	var cr struct {
		Total   int `json:"total"`
		Configs []struct {
			GPU   string          `json:"gpu"`
			Stats *stats.RunStats `json:"stats"`
		} `json:"configs"`
	}
	if json.Unmarshal(r.Body, &cr); r.Status != 200 || cr.Total != 1 || cr.Configs[0].Stats == nil {
		t.Fatalf("configs: %d %s", r.Status, r.Body)
	}
	var direct []*result.Record
	for _, p := range recs[:4] {
		var rec result.Record
		json.Unmarshal(p.Record, &rec)
		direct = append(direct, &rec)
	}
	want := stats.Summarise(direct, stats.SummaryOptions{Bootstrap: fastStats}).Runs[0]
	got := cr.Configs[0].Stats
	if got.RunID != want.RunID || got.ValidCount != 4 {
		t.Fatalf("stats run %s n %d", got.RunID, got.ValidCount)
	}
	gm, wm := got.Metric("energy_per_output_token_j"), want.Metric("energy_per_output_token_j")
	if gm.Mean != wm.Mean || gm.CI.Lower != wm.CI.Lower || gm.CI.Upper != wm.CI.Upper {
		t.Fatalf("archive stats %+v, stats.Summarise %+v", gm, wm)
	}
	r = a.do(t, "GET", "/api/v1/facets", a.Read, nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte("NVIDIA A100-SXM4-80GB")) {
		t.Fatalf("facets: %s", r.Body)
	}
}

// TestBadInput: each bad request gets its 4xx and a reason, and nothing
// is stored.
func TestBadInput(t *testing.T) {
	a := sqliteArchive(t, server.Options{MaxBodyBytes: 1 << 20, MaxRecords: 5})
	good := records(1, archivetest.Spec{})
	forged := archivetest.Record(archivetest.Spec{})
	forged.Environment = json.RawMessage(strings.Replace(string(forged.Environment), "AMD EPYC 9454", "AMD EPYC 7763", 1))
	noEnv := archivetest.Record(archivetest.Spec{})
	noEnv.Environment = nil
	tampered := archivetest.Push(archivetest.Record(archivetest.Spec{}))
	tampered.Record = bytes.Replace(tampered.Record, []byte(`"cycle":1`), []byte(`"cycle":2`), 1)
	oldSchema := archivetest.Record(archivetest.Spec{})
	oldSchema.SchemaVersion = "2.0"
	wrongVersion := archivetest.Request("p", good...)
	wrongVersion.SchemaVersion = "llem-push/0"
	big := archivetest.Request("p", records(1, archivetest.Spec{})...)
	big.Client.Version = strings.Repeat("x", 2<<20)
	for _, c := range []struct {
		name   string
		token  string
		body   []byte
		status int
		code   string
		hdr    []string
	}{
		{"malformed JSON", a.Write, []byte(`{"schema_version": "llem-push/1", "records": [`), 400, "malformed", nil},
		{"trailing data", a.Write, append(mustJSON(t, archivetest.Request("p", good...)), []byte(" {}")...), 400, "malformed", nil},
		{"not an object", a.Write, []byte(`[1,2]`), 400, "malformed", nil},
		{"wrong push format", a.Write, mustJSON(t, wrongVersion), 400, "schema_version", nil},
		{"no push id", a.Write, mustJSON(t, archivetest.Request("", good...)), 400, "malformed", nil},
		{"bad push id", a.Write, mustJSON(t, archivetest.Request("a b<script>", good...)), 400, "malformed", nil},
		{"no records", a.Write, mustJSON(t, archivetest.Request("p")), 400, "malformed", nil},
		{"too many records", a.Write, mustJSON(t, archivetest.Request("p", records(6, archivetest.Spec{})...)), 413, "too_many_records", nil},
		{"oversized body", a.Write, mustJSON(t, big), 413, "too_large", nil},
		{"wrong content type", a.Write, mustJSON(t, archivetest.Request("p", good...)), 415, "content_type", []string{"Content-Type", "text/plain"}},
		{"old record schema", a.Write, mustJSON(t, archivetest.Request("p", archivetest.Push(oldSchema))), 422, "rejected", nil},
		{"forged fingerprint", a.Write, mustJSON(t, archivetest.Request("p", archivetest.Push(forged))), 422, "rejected", nil},
		{"no environment", a.Write, mustJSON(t, archivetest.Request("p", archivetest.Push(noEnv))), 422, "rejected", nil},
		{"changed after hashing", a.Write, mustJSON(t, archivetest.Request("p", tampered)), 422, "rejected", nil},
		{"no token", "", mustJSON(t, archivetest.Request("p", good...)), 401, "missing_token", nil},
		{"wrong token", server.TokenPrefix + "not-a-token", mustJSON(t, archivetest.Request("p", good...)), 401, "invalid_token", nil},
		{"revoked token", a.Revoked, mustJSON(t, archivetest.Request("p", good...)), 401, "invalid_token", nil},
		{"read-only token", a.Read, mustJSON(t, archivetest.Request("p", good...)), 403, "insufficient_scope", nil},
	} {
		r := a.do(t, "POST", wire.PushPath, c.token, c.body, c.hdr...)
		var e wire.ErrorResponse
		json.Unmarshal(r.Body, &e)
		if r.Status != c.status || e.Code != c.code || e.Reason == "" {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.Status, r.Body, c.status, c.code)
		}
		if n := a.count(t); n != 0 {
			t.Fatalf("%s: %d records stored", c.name, n)
		}
	}
	if r := a.do(t, "POST", wire.PushPath, "", nil); r.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	// Queries: bad filters are 400, unknown records 404, reads need a token.
	for path, want := range map[string]int{
		"/api/v1/records?verdict=maybe":                     400,
		"/api/v1/records?from=yesterday":                    400,
		"/api/v1/records?limit=100000":                      400,
		"/api/v1/records?model=" + strings.Repeat("m", 600): 400,
		"/api/v1/records/abc":                               400,
		"/api/v1/records/" + strings.Repeat("a", 64):        404,
		"/api/v1/configs?offset=-1":                         400,
		"/records/" + strings.Repeat("a", 64):               404,
	} {
		if r := a.do(t, "GET", path, a.Read, nil); r.Status != want {
			t.Errorf("GET %s: %d, want %d: %s", path, r.Status, want, r.Body)
		}
	}
	for _, path := range []string{"/api/v1/records", "/", "/configs"} {
		if r := a.do(t, "GET", path, "", nil); r.Status != 401 {
			t.Errorf("GET %s without a token: %d", path, r.Status)
		}
	}
	if r := a.do(t, "GET", "/api/v1/health", "", nil); r.Status != 200 {
		t.Errorf("health: %d", r.Status)
	}
}

// TestPartialAndReplayedPush: good records of a batch are stored beside the
// rejected ones; pushing the same batch again stores nothing new.
func TestPartialAndReplayedPush(t *testing.T) {
	a := sqliteArchive(t, server.Options{})
	good := records(3, archivetest.Spec{})
	bad := archivetest.Record(archivetest.Spec{Cycle: 9})
	bad.Llem.Commit = ""
	incons := archivetest.Record(archivetest.Spec{Cycle: 10})
	incons.Throughput.OutputTokens++
	batch := append(slices.Clone(good), archivetest.Push(bad), archivetest.Push(incons))
	body := mustJSON(t, archivetest.Request("p-2", batch...))
	for round := range 2 {
		r := a.do(t, "POST", wire.PushPath, a.Write, body)
		var pr wire.PushResponse
		json.Unmarshal(r.Body, &pr)
		if r.Status != 200 || len(pr.Accepted) != 4 || len(pr.Rejected) != 1 || pr.Rejected[0].Code != "missing_provenance" {
			t.Fatalf("round %d: %d %s", round, r.Status, r.Body)
		}
		for _, acc := range pr.Accepted {
			if acc.Duplicate != (round == 1) {
				t.Fatalf("round %d: duplicate=%v", round, acc.Duplicate)
			}
		}
		if v := pr.Accepted[3]; v.Verdict != "inconsistent" || len(v.Checks) == 0 {
			t.Fatalf("inconsistent record: %+v", v)
		}
		if n := a.count(t); n != 4 {
			t.Fatalf("round %d: %d stored", round, n)
		}
	}
	// Inconsistent records are stored but left out of the statistics.
	r := a.do(t, "GET", "/api/v1/configs", a.Read, nil)
	if !bytes.Contains(r.Body, []byte(`"n_valid_cycles": 3`)) {
		t.Fatalf("configs counted the inconsistent record: %s", r.Body)
	}
}

func TestRateLimit(t *testing.T) {
	a := sqliteArchive(t, server.Options{PublicRead: true, AnonymousRatePerMin: 6})
	secret, hash, _ := server.NewToken()
	a.Store.CreateToken(context.Background(), store.Token{Name: "slow", Scope: store.ScopeRead, RatePerMin: 6}, hash)
	for _, tok := range []string{secret, ""} {
		got := 0
		for range 5 {
			r := a.do(t, "GET", "/api/v1/records", tok, nil)
			if r.Status == 429 {
				if r.Header.Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
				got++
			}
		}
		if got == 0 {
			t.Errorf("with token %v: never limited at 6/min over 5 quick requests", tok != "")
		}
	}
}

// TestOpenAPIMatchesRoutes: docs/archive-openapi.yaml documents exactly the
// API routes the server registers, and the server serves that file.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "archive-openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `yaml:"openapi"`
		Paths   map[string]map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", m, p)
			}
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	routes := server.Routes()
	slices.Sort(documented)
	slices.Sort(routes)
	if !slices.Equal(documented, routes) {
		t.Fatalf("OpenAPI paths:\n%s\nserver routes:\n%s", strings.Join(documented, "\n"), strings.Join(routes, "\n"))
	}
	a := sqliteArchive(t, server.Options{})
	if r := a.do(t, "GET", "/api/v1/openapi.yaml", "", nil); r.Status != 200 || !bytes.Equal(r.Body, raw) {
		t.Fatalf("served OpenAPI differs from the file: %d", r.Status)
	}
}

// TestAccessLogHasNoToken: the log names the token, never its secret.
func TestAccessLogHasNoToken(t *testing.T) {
	var buf syncBuffer
	a := sqliteArchive(t, server.Options{Logger: newJSONLogger(&buf)})
	a.do(t, "POST", wire.PushPath, a.Write, mustJSON(t, archivetest.Request("p-log", records(1, archivetest.Spec{})...)))
	a.do(t, "GET", "/", a.Read, nil, "Authorization", "Basic "+basic(a.Read))
	a.do(t, "GET", "/api/v1/records", a.Revoked, nil)
	log := buf.String()
	for _, secret := range []string{a.Write, a.Read, a.Revoked, strings.TrimPrefix(a.Write, server.TokenPrefix)} {
		if strings.Contains(log, secret) {
			t.Fatalf("a token secret is in the access log:\n%s", log)
		}
	}
	if !strings.Contains(log, `"token":"writer"`) || !strings.Contains(log, `"status":401`) || !strings.Contains(log, `"accepted":1`) {
		t.Fatalf("access log lacks the token name, the status or the counts:\n%s", log)
	}
	fmt.Fprint(io.Discard, log)
}
