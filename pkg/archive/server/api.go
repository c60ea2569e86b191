package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/docs"
	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/archive/verify"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// authorize checks the request's token for scope and its rate. An
// anonymous read is allowed when the archive is public (rate-limited per
// client address). It writes the error reply itself and returns false.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope string) bool {
	e := s.auth(r, scope)
	if e != nil {
		s.writeError(w, r, e)
		return false
	}
	return true
}

func (s *Server) auth(r *http.Request, scope string) *apiError {
	h := r.Header.Get("Authorization")
	if h == "" {
		if scope == store.ScopeRead && s.opt.PublicRead {
			if ok, wait := s.limit.allow("addr:"+s.clientAddr(r), s.opt.AnonymousRatePerMin); !ok {
				return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Reason: "too many requests from this address; slow down or use a token", RetryAfter: wait}
			}
			return nil
		}
		return fail(http.StatusUnauthorized, "missing_token", "this needs a token with %s scope: Authorization: Bearer <token> (llem archive token create)", scope)
	}
	secret, ok := credential(h)
	if !ok || secret == "" {
		return fail(http.StatusUnauthorized, "invalid_token", "the Authorization header is neither Bearer <token> nor Basic with the token as password")
	}
	tok, err := s.store.TokenByHash(r.Context(), HashToken(secret))
	if errors.Is(err, store.ErrNotFound) {
		return fail(http.StatusUnauthorized, "invalid_token", "unknown or revoked token")
	}
	if err != nil {
		return storeError(err)
	}
	logOf(r).token, logOf(r).tokenID = tok.Name, tok.ID
	if !tok.Allows(scope) {
		return fail(http.StatusForbidden, "insufficient_scope", "token %q has %s scope; this needs %s", tok.Name, tok.Scope, scope)
	}
	if ok, wait := s.limit.allow("token:"+strconv.FormatInt(tok.ID, 10), tok.RatePerMin); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Reason: fmt.Sprintf("token %q is limited to %d requests a minute", tok.Name, tok.RatePerMin), RetryAfter: wait}
	}
	r.Header.Del("Authorization")
	return nil
}

// readBody reads at most MaxBodyBytes of a JSON body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, fail(http.StatusUnsupportedMediaType, "content_type", "send the body as application/json, not %q", ct)
		}
	}
	if r.ContentLength > s.opt.MaxBodyBytes {
		return nil, fail(http.StatusRequestEntityTooLarge, "too_large", "the body is %d bytes; this archive takes at most %d per request: push in smaller batches", r.ContentLength, s.opt.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, fail(http.StatusRequestEntityTooLarge, "too_large", "the body is over %d bytes, this archive's limit per request: push in smaller batches", s.opt.MaxBodyBytes)
		}
		return nil, fail(http.StatusBadRequest, "malformed", "reading the body: %v", err)
	}
	return body, nil
}

var pushIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`) }) // compiled on first use: start-up stays fast

// DecodePush parses and checks a push request body (not its records'
// content: verify.Check does that per record). It is what the fuzz test
// feeds.
func DecodePush(body []byte, maxRecords int) (*wire.PushRequest, *apiError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var req wire.PushRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fail(http.StatusBadRequest, "malformed", "the body is not a push request (JSON): %v", err)
	}
	if dec.More() {
		return nil, fail(http.StatusBadRequest, "malformed", "the body has data after the push request")
	}
	if req.SchemaVersion != wire.Version {
		return nil, fail(http.StatusBadRequest, "schema_version", "push format %q: this archive speaks %q (update llem, or the archive)", short(req.SchemaVersion), wire.Version)
	}
	if !pushIDPattern().MatchString(req.PushID) {
		return nil, fail(http.StatusBadRequest, "malformed", "push_id %q: want 1–128 of A–Z a–z 0–9 . _ : -", short(req.PushID))
	}
	if len(req.Client.Version) > verify.MaxFieldLen || len(req.Client.Commit) > verify.MaxFieldLen {
		return nil, fail(http.StatusBadRequest, "malformed", "client version or commit is too long")
	}
	if len(req.Records) == 0 {
		return nil, fail(http.StatusBadRequest, "malformed", "the push has no records")
	}
	if len(req.Records) > maxRecords {
		return nil, fail(http.StatusRequestEntityTooLarge, "too_many_records", "%d records in one push; this archive takes at most %d: push in smaller batches", len(req.Records), maxRecords)
	}
	return &req, nil
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// pushReply is the body of a push: a wire.PushResponse and, when nothing
// was accepted (422), the wire.ErrorResponse fields beside it, so a client
// decoding either type gets what it expects.
type pushReply struct {
	wire.PushResponse
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) push(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, store.ScopeWrite) {
		return
	}
	body, e := s.readBody(w, r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	req, e := DecodePush(body, s.opt.MaxRecords)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	resp := wire.PushResponse{PushID: req.PushID, Accepted: []wire.Accepted{}, Rejected: []wire.Rejected{}}
	var ok []*verify.Record
	for _, p := range req.Records {
		rec, rj := verify.Check(p)
		if rj != nil {
			rej := wire.Rejected{SHA256: p.SHA256, Code: rj.Code, Reason: rj.Reason}
			var id struct {
				RunID string `json:"run_id"`
				Cycle int    `json:"cycle"`
			}
			if json.Unmarshal(p.Record, &id) == nil {
				rej.RunID, rej.Cycle = short(id.RunID), id.Cycle
			}
			if len(rej.SHA256) > 64 {
				rej.SHA256 = short(rej.SHA256)
			}
			resp.Rejected = append(resp.Rejected, rej)
			continue
		}
		ok = append(ok, rec)
	}
	li := logOf(r)
	li.extra = map[string]int{"records": len(req.Records), "rejected": len(resp.Rejected)}
	if len(ok) == 0 {
		first := resp.Rejected[0]
		li.code = "rejected"
		writeJSON(w, http.StatusUnprocessableEntity, pushReply{PushResponse: resp, Code: "rejected",
			Reason: fmt.Sprintf("all %d records were rejected; the first: %s: %s", len(resp.Rejected), first.Code, first.Reason)})
		return
	}
	push := store.Push{ID: req.PushID, TokenID: li.tokenID, ClientVersion: req.Client.Version, ClientCommit: req.Client.Commit, At: time.Now().UTC()}
	res, err := s.store.Put(r.Context(), push, ok)
	if err != nil {
		s.writeError(w, r, storeError(err))
		return
	}
	dups := 0
	for i, pr := range res {
		resp.Accepted = append(resp.Accepted, wire.Accepted{SHA256: pr.SHA256, RunID: ok[i].Meta.RunID, Cycle: ok[i].Meta.Cycle,
			Duplicate: pr.Duplicate, Verdict: pr.Verdict, Checks: pr.Checks})
		if pr.Duplicate {
			dups++
		}
	}
	li.extra["accepted"], li.extra["duplicates"] = len(res), dups
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) known(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, store.ScopeRead) {
		return
	}
	body, e := s.readBody(w, r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	var req wire.KnownRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		s.writeError(w, r, fail(http.StatusBadRequest, "malformed", "the body is not {\"sha256\": [...]}"))
		return
	}
	if len(req.SHA256) > 10*s.opt.MaxRecords {
		s.writeError(w, r, fail(http.StatusRequestEntityTooLarge, "too_many_records", "ask about at most %d hashes at a time", 10*s.opt.MaxRecords))
		return
	}
	known, err := s.store.Known(r.Context(), req.SHA256)
	if err != nil {
		s.writeError(w, r, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, wire.KnownResponse{Known: known})
}

// parseFilter reads the filter query parameters (400 on a bad one).
func parseFilter(r *http.Request) (store.Filter, *apiError) {
	q := r.URL.Query()
	f := store.Filter{Model: q.Get("model"), Backend: q.Get("backend"), GPU: q.Get("gpu"), Precision: q.Get("precision"),
		LlemVersion: q.Get("llem_version"), Study: q.Get("study"), RunID: q.Get("run_id"), ConfigHash: q.Get("config_hash"),
		Verdict: q.Get("verdict"), Status: q.Get("status")}
	for k, vs := range q {
		for _, v := range vs {
			if len(v) > verify.MaxFieldLen {
				return f, fail(http.StatusBadRequest, "bad_filter", "%s is longer than %d bytes", short(k), verify.MaxFieldLen)
			}
		}
	}
	if f.Verdict != "" && f.Verdict != verify.Consistent && f.Verdict != verify.Inconsistent {
		return f, fail(http.StatusBadRequest, "bad_filter", "verdict %q: want consistent or inconsistent", short(f.Verdict))
	}
	if f.Status != "" && f.Status != string(result.StatusOK) && f.Status != string(result.StatusFailed) {
		return f, fail(http.StatusBadRequest, "bad_filter", "status %q: want ok or failed", short(f.Status))
	}
	var err error
	if f.From, err = parseTime(q.Get("from"), false); err != nil {
		return f, fail(http.StatusBadRequest, "bad_filter", "from: %v", err)
	}
	if f.To, err = parseTime(q.Get("to"), true); err != nil {
		return f, fail(http.StatusBadRequest, "bad_filter", "to: %v", err)
	}
	return f, nil
}

// parseTime reads RFC 3339 or a date (YYYY-MM-DD); a date as the upper
// bound includes that whole day.
func parseTime(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2026-11-30) nor an RFC 3339 time", short(v))
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, *apiError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fail(http.StatusBadRequest, "bad_parameter", "%s %q: want a whole number from %d to %d", name, short(v), lo, hi)
	}
	return n, nil
}

// recordMeta is a stored record's metadata in API replies.
type recordMeta struct {
	SHA256                string    `json:"sha256"`
	Study                 string    `json:"study"`
	StudyHash             string    `json:"study_hash"`
	RunID                 string    `json:"run_id"`
	ConfigHash            string    `json:"config_hash"`
	Cycle                 int       `json:"cycle"`
	Attempt               int       `json:"attempt"`
	Model                 string    `json:"model"`
	Backend               string    `json:"backend"`
	Precision             string    `json:"precision"`
	GPU                   string    `json:"gpu"`
	Fingerprint           string    `json:"fingerprint"`
	LlemVersion           string    `json:"llem_version"`
	LlemCommit            string    `json:"llem_commit"`
	StartedAt             time.Time `json:"started_at"`
	Status                string    `json:"status"`
	Flags                 []string  `json:"flags"`
	EnergyPerOutputTokenJ *float64  `json:"energy_per_output_token_j"`
	Verdict               string    `json:"verdict"`
	Checks                []string  `json:"checks"`
	ReceivedAt            time.Time `json:"received_at"`
	PushID                string    `json:"push_id"`
	Client                string    `json:"client"`
}

func metaOf(r store.Row) recordMeta {
	return recordMeta{SHA256: r.SHA256, Study: r.Study, StudyHash: r.StudyHash, RunID: r.RunID, ConfigHash: r.ConfigHash, Cycle: r.Cycle,
		Attempt: r.Attempt, Model: r.Model, Backend: r.Backend, Precision: r.Precision, GPU: r.GPU, Fingerprint: r.Fingerprint,
		LlemVersion: r.LlemVersion, LlemCommit: r.LlemCommit, StartedAt: r.StartedAt, Status: r.Status, Flags: r.Flags,
		EnergyPerOutputTokenJ: r.EnergyPerOutputTokenJ, Verdict: r.Verdict, Checks: r.Checks, ReceivedAt: r.ReceivedAt, PushID: r.PushID, Client: r.Client}
}

// listReply is GET /api/v1/records.
type listReply struct {
	Records    []recordMeta `json:"records"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, store.ScopeRead) {
		return
	}
	f, e := parseFilter(r)
	if e == nil {
		var limit, cursor int
		if limit, e = intParam(r, "limit", 50, 1, 500); e == nil {
			if cursor, e = intParam(r, "cursor", 0, 0, 1<<62); e == nil {
				rows, next, err := s.store.List(r.Context(), f, int64(cursor), limit)
				if err != nil {
					s.writeError(w, r, storeError(err))
					return
				}
				out := listReply{Records: []recordMeta{}}
				for _, row := range rows {
					out.Records = append(out.Records, metaOf(row))
				}
				if next > 0 {
					out.NextCursor = strconv.FormatInt(next, 10)
				}
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
	}
	s.writeError(w, r, e)
}

// recordReply is GET /api/v1/records/{sha256}: the metadata, the verdict
// and the record exactly as stored (its canonical JSON).
type recordReply struct {
	recordMeta
	Record json.RawMessage `json:"record"`
}

var shaPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) }) // compiled on first use: start-up stays fast

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*store.Stored, bool) {
	sha := r.PathValue("sha256")
	if !shaPattern().MatchString(sha) {
		s.writeError(w, r, fail(http.StatusBadRequest, "bad_parameter", "%q is not a record hash (64 lowercase hex digits)", short(sha)))
		return nil, false
	}
	st, err := s.store.Get(r.Context(), sha)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, r, fail(http.StatusNotFound, "not_found", "no record %s in this archive", sha))
		return nil, false
	}
	if err != nil {
		s.writeError(w, r, storeError(err))
		return nil, false
	}
	return st, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, store.ScopeRead) {
		return
	}
	if st, ok := s.lookup(w, r); ok {
		writeJSON(w, http.StatusOK, recordReply{recordMeta: metaOf(st.Row), Record: st.Record})
	}
}

// configStats is one configuration on one GPU: pkg/stats' RunStats over
// its records (stats.Summarise, as llem results show).
type configStats struct {
	GPU        string          `json:"gpu"`
	ConfigHash string          `json:"config_hash"`
	Records    int             `json:"records"`
	Stats      *stats.RunStats `json:"stats"`
}

// configsReply is GET /api/v1/configs.
type configsReply struct {
	Total       int               `json:"total"`
	Offset      int               `json:"offset"`
	Methodology stats.Methodology `json:"measurement_methodology"`
	Configs     []configStats     `json:"configs"`
	// Truncated says a page's groups held more records than one page
	// summarises (MaxGroupRecords): narrow the filter.
	Truncated bool     `json:"truncated,omitempty"`
	Warnings  []string `json:"warnings"`
}

// aggregate summarises one page of configuration groups. Inconsistent
// records are left out unless the filter asks for a verdict or
// include_inconsistent is set.
// archived is a stored record decoded, with the GPU label it is indexed by.
type archived struct {
	Rec *result.Record
	GPU string
}

func (s *Server) aggregate(r *http.Request) (*configsReply, []archived, *apiError) {
	f, e := parseFilter(r)
	if e != nil {
		return nil, nil, e
	}
	if f.Verdict == "" && r.URL.Query().Get("include_inconsistent") != "true" {
		f.Verdict = verify.Consistent
	}
	offset, e := intParam(r, "offset", 0, 0, 1<<30)
	if e != nil {
		return nil, nil, e
	}
	limit, e := intParam(r, "limit", 20, 1, 100)
	if e != nil {
		return nil, nil, e
	}
	groups, total, err := s.store.Configs(r.Context(), f, offset, limit)
	if err != nil {
		return nil, nil, storeError(err)
	}
	out := &configsReply{Total: total, Offset: offset, Configs: []configStats{}, Warnings: []string{}}
	stored, err := s.store.Records(r.Context(), f, groups, s.opt.MaxGroupRecords+1)
	if err != nil {
		return nil, nil, storeError(err)
	}
	if len(stored) > s.opt.MaxGroupRecords {
		stored = stored[:s.opt.MaxGroupRecords]
		out.Truncated = true
	}
	// Summarise groups by run ID; a configuration measured on two kinds of
	// GPU is two groups, so each record is summarised under a key naming
	// both (a copy: the stored record is not touched), and the run ID is
	// put back in the statistics.
	key := func(runID, gpu string) string { return runID + "\x00" + gpu }
	var recs []*result.Record
	var orig []archived
	for _, st := range stored {
		var rec result.Record
		if err := json.Unmarshal(st.Record, &rec); err != nil {
			return nil, nil, fail(http.StatusInternalServerError, "corrupt_record", "stored record %s does not decode: %v", st.SHA256, err)
		}
		orig = append(orig, archived{&rec, st.GPU})
		c := rec
		c.RunID = key(st.RunID, st.GPU)
		recs = append(recs, &c)
	}
	sum := stats.Summarise(recs, stats.SummaryOptions{Bootstrap: s.opt.Stats})
	out.Methodology = sum.Methodology
	out.Warnings = append(out.Warnings, sum.Warnings...)
	bySum := map[string]*stats.RunStats{}
	for i := range sum.Runs {
		bySum[sum.Runs[i].RunID] = &sum.Runs[i]
	}
	for _, g := range groups {
		cs := configStats{GPU: g.GPU, ConfigHash: g.ConfigHash, Records: g.Records}
		if rs := bySum[key(g.RunID, g.GPU)]; rs != nil {
			rs.RunID = g.RunID
			cs.Stats = rs
		}
		out.Configs = append(out.Configs, cs)
	}
	return out, orig, nil
}

func (s *Server) configs(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, store.ScopeRead) {
		return
	}
	out, _, e := s.aggregate(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) facets(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, store.ScopeRead) {
		return
	}
	f, err := s.facetValues(r.Context())
	if err != nil {
		s.writeError(w, r, storeError(err))
		return
	}
	nz := func(x []string) []string {
		if x == nil {
			return []string{}
		}
		return x
	}
	writeJSON(w, http.StatusOK, map[string][]string{"model": nz(f.Models), "backend": nz(f.Backends), "gpu": nz(f.GPUs),
		"precision": nz(f.Precisions), "llem_version": nz(f.LlemVersions)})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(docs.ArchiveOpenAPI)
}
