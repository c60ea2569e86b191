// Package sharetest is a TEST STAND-IN for an llem archive server (`llem
// archive serve`), used until a test can start the real one: an httptest
// server that implements the push contract of pkg/archive/wire strictly —
// bearer tokens with scopes, the schema version, strict decoding, a body
// limit (413), the record hash recomputed, provenance required, each record
// stored once by hash, and KnownPath for resuming. It stores in memory.
package sharetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/llenergymeasure/llem/pkg/archive/wire"
)

// Options configure the stand-in.
type Options struct {
	// Tokens maps a token to its scope, "write" or "read".
	Tokens map[string]string
	// MaxBody is the request size limit (default 8 MiB).
	MaxBody int64
	// Reject, when set, may refuse a record the built-in checks passed.
	Reject func(rec map[string]any) (code, reason string)
	// BeforeStore, when set, runs before each push request's records are
	// stored, with the request's number (from 1); a test can block there.
	BeforeStore func(n int)
}

// Server is the stand-in archive.
type Server struct {
	*httptest.Server
	opt    Options
	mu     sync.Mutex
	stored map[string]json.RawMessage
	pushes int
	dups   int
	// auths are the Authorization headers seen.
	auths []string
}

// New starts the stand-in; it is closed when the test ends.
func New(t testing.TB, opt Options) *Server {
	s := NewUnstarted(opt)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// NewUnstarted makes a stand-in the caller starts and closes.
func NewUnstarted(opt Options) *Server {
	if opt.MaxBody == 0 {
		opt.MaxBody = 8 << 20
	}
	s := &Server{opt: opt, stored: map[string]json.RawMessage{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	return s
}

// Stored returns how many distinct records the archive holds.
func (s *Server) Stored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored)
}

// Record returns a stored record by hash.
func (s *Server) Record(sha string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.stored[sha]
	return r, ok
}

// PushRequests counts the push requests that reached the store.
func (s *Server) PushRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushes
}

// Duplicates counts records received that were already stored.
func (s *Server) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

// Authorizations returns the Authorization headers received.
func (s *Server) Authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

func fail(w http.ResponseWriter, status int, code, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.ErrorResponse{Code: code, Reason: reason})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	s.mu.Unlock()
	if r.URL.Path != wire.PushPath && r.URL.Path != wire.KnownPath {
		fail(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, "method", "POST only")
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	scope := s.opt.Tokens[tok]
	if !ok || tok == "" || scope == "" {
		fail(w, http.StatusUnauthorized, "unauthorized", "missing or unknown token")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fail(w, http.StatusUnsupportedMediaType, "content_type", "send application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opt.MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		fail(w, http.StatusRequestEntityTooLarge, "too_large", "request body over the limit")
		return
	}
	if err != nil {
		fail(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if r.URL.Path == wire.KnownPath {
		var req wire.KnownRequest
		if err := strictDecode(body, &req); err != nil {
			fail(w, http.StatusBadRequest, "malformed", err.Error())
			return
		}
		resp := wire.KnownResponse{Known: []string{}}
		s.mu.Lock()
		for _, h := range req.SHA256 {
			if _, ok := s.stored[h]; ok {
				resp.Known = append(resp.Known, h)
			}
		}
		s.mu.Unlock()
		json.NewEncoder(w).Encode(resp)
		return
	}
	if scope != "write" {
		fail(w, http.StatusForbidden, "forbidden", "token has read scope only")
		return
	}
	var req wire.PushRequest
	if err := strictDecode(body, &req); err != nil {
		fail(w, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	if req.SchemaVersion != wire.Version {
		fail(w, http.StatusBadRequest, "schema_version", "this archive speaks "+wire.Version)
		return
	}
	if req.PushID == "" || len(req.Records) == 0 {
		fail(w, http.StatusBadRequest, "malformed", "push_id and at least one record are required")
		return
	}
	s.mu.Lock()
	s.pushes++
	n := s.pushes
	s.mu.Unlock()
	if s.opt.BeforeStore != nil {
		s.opt.BeforeStore(n)
	}
	resp := wire.PushResponse{PushID: req.PushID, Accepted: []wire.Accepted{}, Rejected: []wire.Rejected{}}
	for _, pr := range req.Records {
		a, rej := s.check(pr)
		if rej != nil {
			resp.Rejected = append(resp.Rejected, *rej)
			continue
		}
		s.mu.Lock()
		if _, dup := s.stored[pr.SHA256]; dup {
			a.Duplicate = true
			s.dups++
		} else {
			s.stored[pr.SHA256] = append(json.RawMessage(nil), pr.Record...)
		}
		s.mu.Unlock()
		resp.Accepted = append(resp.Accepted, *a)
	}
	w.Header().Set("Content-Type", "application/json")
	if len(resp.Accepted) == 0 {
		// As llem archive serve: 422 with the per-record answer and the
		// error fields side by side.
		w.WriteHeader(http.StatusUnprocessableEntity)
		json.NewEncoder(w).Encode(struct {
			wire.PushResponse
			Code   string `json:"code"`
			Reason string `json:"reason"`
		}{resp, "rejected", "every record was rejected"})
		return
	}
	json.NewEncoder(w).Encode(resp)
}

func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON body")
	}
	return nil
}

// check vets one record: hash, shape, provenance.
func (s *Server) check(pr wire.PushedRecord) (*wire.Accepted, *wire.Rejected) {
	rej := func(code, reason string) (*wire.Accepted, *wire.Rejected) {
		return nil, &wire.Rejected{SHA256: pr.SHA256, Code: code, Reason: reason}
	}
	sum, err := wire.RecordHash(pr.Record)
	if err != nil {
		return rej("malformed", err.Error())
	}
	if sum != pr.SHA256 {
		return rej("hash_mismatch", "sha256 does not match the record's canonical JSON")
	}
	var rec map[string]any
	if err := json.Unmarshal(pr.Record, &rec); err != nil || rec == nil {
		return rej("malformed", "record is not a JSON object")
	}
	runID, _ := rec["run_id"].(string)
	cycle, _ := rec["cycle"].(float64)
	sv, _ := rec["schema_version"].(string)
	if !strings.HasPrefix(sv, "3.") || runID == "" || cycle < 1 {
		return rej("malformed", "schema_version 3.x, run_id and cycle are required")
	}
	r := func(code, reason string) (*wire.Accepted, *wire.Rejected) {
		a, j := rej(code, reason)
		j.RunID, j.Cycle = runID, int(cycle)
		return a, j
	}
	llem, _ := rec["llem"].(map[string]any)
	env, _ := rec["environment"].(map[string]any)
	if v, _ := llem["version"].(string); v == "" {
		return r("missing_provenance", "record.llem.version is required")
	}
	if c, _ := llem["commit"].(string); c == "" {
		return r("missing_provenance", "record.llem.commit is required")
	}
	if fp, _ := env["fingerprint"].(string); fp == "" {
		return r("missing_provenance", "the environment snapshot with its hardware fingerprint is required")
	}
	if s.opt.Reject != nil {
		if code, reason := s.opt.Reject(rec); code != "" {
			return r(code, reason)
		}
	}
	return &wire.Accepted{SHA256: pr.SHA256, RunID: runID, Cycle: int(cycle), Verdict: "consistent"}, nil
}
