// Package hubtest is a stand-in for huggingface.co in tests (the real Hub
// is not reachable from CI): an httptest server answering the requests
// pkg/hub makes — downloads, and uploads through the commit API (write.go) —
// with the Hub's status codes and X-Error-Code headers.
package hubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Repo is one repository the server holds, at one commit.
type Repo struct {
	// Type is "dataset" or "model"; ID is "org/name".
	Type, ID string
	// SHA is the commit; Branches resolve to it too (e.g. "main").
	SHA      string
	Branches []string
	// Files maps file paths to their content.
	Files map[string][]byte
	// Gated answers 401 (no token) or 403 (a token other than Token).
	Gated bool
	Token string
	// Truncate names files served with the full Content-Length but only
	// half the bytes, then a closed connection.
	Truncate []string
}

// Server is the fake Hub.
type Server struct {
	*httptest.Server
	mu    sync.Mutex
	repos []Repo
	reqs  []Request
	write // the upload side: write.go
}

// Request is what the server saw.
type Request struct {
	Path          string
	Authorization string
}

// New starts a fake Hub holding repos; it is closed when the test ends.
func New(t testing.TB, repos ...Repo) *Server {
	s := NewServer(repos...)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake Hub the caller closes.
func NewServer(repos ...Repo) *Server {
	s := &Server{repos: repos}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Requests returns the requests served so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, Request{Path: r.URL.Path, Authorization: r.Header.Get("Authorization")})
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.serveWrite(w, r)
		return
	}
	// /api/{type}s/{org}/{name}/revision/{rev}
	// /{type}s/{org}/{name}/resolve/{sha}/{file...}
	p := strings.TrimPrefix(r.URL.Path, "/")
	api := strings.HasPrefix(p, "api/")
	p = strings.TrimPrefix(p, "api/")
	parts := strings.SplitN(p, "/", 6)
	if len(parts) < 5 {
		http.NotFound(w, r)
		return
	}
	typ, id, verb, rev := strings.TrimSuffix(parts[0], "s"), parts[1]+"/"+parts[2], parts[3], parts[4]
	repo := s.find(typ, id)
	if repo == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
		return
	}
	if repo.Gated {
		auth := r.Header.Get("Authorization")
		switch {
		case auth == "":
			w.Header().Set("X-Error-Code", "GatedRepo")
			http.Error(w, `{"error":"Access to this resource is restricted"}`, http.StatusUnauthorized)
			return
		case auth != "Bearer "+repo.Token:
			w.Header().Set("X-Error-Code", "GatedRepo")
			http.Error(w, `{"error":"Access to this resource is restricted"}`, http.StatusForbidden)
			return
		}
	}
	if rev != repo.SHA && !slices.Contains(repo.Branches, rev) {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, `{"error":"Invalid rev id"}`, http.StatusNotFound)
		return
	}
	switch {
	case api && verb == "revision" && len(parts) == 5:
		type sib struct {
			RFilename string `json:"rfilename"`
		}
		body := struct {
			ID       string `json:"id"`
			SHA      string `json:"sha"`
			Siblings []sib  `json:"siblings"`
		}{ID: repo.ID, SHA: repo.SHA}
		for name := range repo.Files {
			body.Siblings = append(body.Siblings, sib{name})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	case !api && verb == "resolve" && len(parts) == 6:
		data, ok := repo.Files[parts[5]]
		if !ok {
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.Error(w, `{"error":"Entry not found"}`, http.StatusNotFound)
			return
		}
		if slices.Contains(repo.Truncate, parts[5]) {
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", len(data))
			buf.Write(data[:len(data)/2])
			buf.Flush()
			conn.Close()
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) find(typ, id string) *Repo {
	for i := range s.repos {
		if s.repos[i].Type == typ && s.repos[i].ID == id {
			return &s.repos[i]
		}
	}
	return nil
}
