package hubtest

// The upload side of the stand-in Hub: repository creation, preupload, the
// LFS batch API with a storage that acts like a presigned-URL object store,
// and the NDJSON commit endpoint. Shapes follow huggingface_hub's client
// (src/huggingface_hub/_commit_api.py @ 32a2b30969c24562479acceb9bddff521268553f,
// src/huggingface_hub/lfs.py, hf_api.create_commit / create_repo); it
// rejects what the Hub rejects: a missing or read-only token, a commit
// without its header line, unknown operations, paths outside the
// repository or under .git/, a file sent inline that must go through LFS
// (LFS-tracked patterns, binary content, over 10 MiB), an lfsFile whose
// object was never uploaded, an unknown branch. Its storage refuses an
// upload carrying an Authorization header (a presigned URL carries its own
// credentials; S3 refuses a second mechanism) and one whose bytes do not
// hash to the object id.

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MaxInline is the largest file the Hub takes inline in a commit.
const MaxInline = 10 << 20

// lfsPatterns are the default .gitattributes LFS patterns of a new dataset
// repository that matter here.
var lfsPatterns = []string{"*.parquet", "*.arrow", "*.bin", "*.safetensors", "*.pt", "*.zip", "*.gz"}

// write is the state of uploads.
type write struct {
	tokens map[string]string // token → "write" or "read"
	lfs    map[string][]byte // uploaded LFS objects by oid
	parts  map[string]map[int][]byte
	// MultipartChunk, when > 0, makes LFS uploads of larger objects
	// multipart with parts of this size.
	MultipartChunk int
	commits        int
}

// AllowToken lets token act on every repository with scope "write" or
// "read".
func (s *Server) AllowToken(token, scope string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens == nil {
		s.tokens = map[string]string{}
	}
	s.tokens[token] = scope
}

// Commits counts the commits made.
func (s *Server) Commits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits
}

// File returns a file of a repository's current commit.
func (s *Server) File(typ, id, name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.find(typ, id)
	if r == nil {
		return nil, false
	}
	b, ok := r.Files[name]
	return b, ok
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// writer checks the token for a write; it answers and returns false when
// refused.
func (s *Server) writer(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || s.tokens[tok] == "":
		hubError(w, http.StatusUnauthorized, "", "Invalid username or password.")
		return false
	case s.tokens[tok] != "write":
		hubError(w, http.StatusForbidden, "", "You don't have the rights to write to this repository: the token is read-only")
		return false
	}
	return true
}

var lfsBatchPath = regexp.MustCompile(`^/(datasets/|spaces/)?([^/]+/[^/]+)\.git/info/lfs/objects/(batch|verify)$`)

func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request) {
	if s.lfs == nil {
		s.lfs, s.parts = map[string][]byte{}, map[string]map[int][]byte{}
	}
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/lfs-storage/"):
		s.storage(w, r, strings.TrimPrefix(p, "/lfs-storage/"))
	case r.Method == http.MethodPost && p == "/api/repos/create":
		s.createRepo(w, r)
	case r.Method == http.MethodPost && lfsBatchPath.MatchString(p):
		m := lfsBatchPath.FindStringSubmatch(p)
		typ := "model"
		if m[1] != "" {
			typ = strings.TrimSuffix(m[1], "s/")
		}
		s.lfsBatch(w, r, typ, m[2], m[3])
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/api/"):
		// /api/{type}s/{org}/{name}/{preupload|commit}/{rev}
		parts := strings.Split(strings.TrimPrefix(p, "/api/"), "/")
		if len(parts) != 5 || (parts[3] != "preupload" && parts[3] != "commit") {
			hubError(w, http.StatusNotFound, "", "Not found")
			return
		}
		rev, err := url.PathUnescape(parts[4])
		if err != nil {
			hubError(w, http.StatusBadRequest, "", "bad revision")
			return
		}
		typ, id := strings.TrimSuffix(parts[0], "s"), parts[1]+"/"+parts[2]
		if !s.writer(w, r) {
			return
		}
		repo := s.find(typ, id)
		if repo == nil {
			hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
			return
		}
		if !slices.Contains(repo.Branches, rev) {
			hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
			return
		}
		if parts[3] == "preupload" {
			s.preupload(w, r)
		} else {
			s.commit(w, r, repo)
		}
	default:
		hubError(w, http.StatusMethodNotAllowed, "", "method not allowed")
	}
}

func (s *Server) createRepo(w http.ResponseWriter, r *http.Request) {
	if !s.writer(w, r) {
		return
	}
	var req struct {
		Name         string `json:"name"`
		Organization string `json:"organization"`
		Type         string `json:"type"`
		Private      bool   `json:"private"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" || req.Organization == "" {
		hubError(w, http.StatusBadRequest, "", "name and organization are required")
		return
	}
	if req.Type == "" {
		req.Type = "model"
	}
	id := req.Organization + "/" + req.Name
	if s.find(req.Type, id) != nil {
		hubError(w, http.StatusConflict, "", "You already created this "+req.Type+" repo")
		return
	}
	sum := sha1.Sum([]byte("init " + id))
	s.repos = append(s.repos, Repo{Type: req.Type, ID: id, SHA: hex.EncodeToString(sum[:]), Branches: []string{"main"},
		Files: map[string][]byte{".gitattributes": []byte(strings.Join(lfsPatterns, " filter=lfs diff=lfs merge=lfs -text\n") + " filter=lfs diff=lfs merge=lfs -text\n")}})
	json.NewEncoder(w).Encode(map[string]string{"url": s.URL + "/" + req.Type + "s/" + id, "name": id})
}

// mustLFS says whether the Hub wants a file through LFS.
func mustLFS(name string, size int, sample []byte) bool {
	for _, pat := range lfsPatterns {
		if ok, _ := path.Match(pat, path.Base(name)); ok {
			return true
		}
	}
	return size > MaxInline || bytes.IndexByte(sample, 0) >= 0
}

func validPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || part == ".git" {
			return false
		}
	}
	return true
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (s *Server) preupload(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Files []struct {
			Path   string `json:"path"`
			Sample string `json:"sample"`
			Size   *int   `json:"size"`
			SHA    string `json:"sha"`
		} `json:"files"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Files) == 0 || len(req.Files) > 256 {
		hubError(w, http.StatusBadRequest, "", "files: 1 to 256 entries are required")
		return
	}
	type mode struct {
		Path         string `json:"path"`
		UploadMode   string `json:"uploadMode"`
		ShouldIgnore bool   `json:"shouldIgnore"`
	}
	var out struct {
		Files []mode `json:"files"`
	}
	for _, f := range req.Files {
		sample, err := base64.StdEncoding.DecodeString(f.Sample)
		if err != nil || len(sample) > 512 || f.Size == nil || *f.Size < 0 || !hex64.MatchString(f.SHA) || !validPath(f.Path) {
			hubError(w, http.StatusBadRequest, "", fmt.Sprintf("invalid preupload entry for %q", f.Path))
			return
		}
		m := "regular"
		if mustLFS(f.Path, *f.Size, sample) {
			m = "lfs"
		}
		out.Files = append(out.Files, mode{Path: f.Path, UploadMode: m})
	}
	json.NewEncoder(w).Encode(out)
}

func (s *Server) lfsBatch(w http.ResponseWriter, r *http.Request, typ, id, verb string) {
	if !s.writer(w, r) {
		return
	}
	if s.find(typ, id) == nil {
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
		return
	}
	if verb == "verify" {
		var v struct {
			OID  string `json:"oid"`
			Size int    `json:"size"`
		}
		if json.NewDecoder(r.Body).Decode(&v) != nil || len(s.lfs[v.OID]) != v.Size || s.lfs[v.OID] == nil {
			hubError(w, http.StatusNotFound, "", "object not uploaded")
			return
		}
		json.NewEncoder(w).Encode(map[string]bool{"success": true})
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/vnd.git-lfs+json") || !strings.HasPrefix(r.Header.Get("Accept"), "application/vnd.git-lfs+json") {
		hubError(w, http.StatusNotAcceptable, "", "LFS batch requests are application/vnd.git-lfs+json")
		return
	}
	var req struct {
		Operation string `json:"operation"`
		Transfers []string
		Objects   []struct {
			OID  string `json:"oid"`
			Size *int   `json:"size"`
		} `json:"objects"`
		HashAlgo string `json:"hash_algo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Operation != "upload" || (req.HashAlgo != "" && req.HashAlgo != "sha256") {
		hubError(w, http.StatusUnprocessableEntity, "", "invalid LFS batch request")
		return
	}
	type action struct {
		Href   string            `json:"href"`
		Header map[string]string `json:"header,omitempty"`
	}
	type object struct {
		OID     string             `json:"oid"`
		Size    int                `json:"size"`
		Actions map[string]*action `json:"actions,omitempty"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error,omitempty"`
	}
	var out struct {
		Transfer string   `json:"transfer"`
		Objects  []object `json:"objects"`
	}
	out.Transfer = "basic"
	for _, o := range req.Objects {
		ob := object{OID: o.OID}
		if o.Size != nil {
			ob.Size = *o.Size
		}
		if !hex64.MatchString(o.OID) || o.Size == nil || *o.Size < 0 {
			ob.Error = &struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}{422, "invalid object"}
			out.Objects = append(out.Objects, ob)
			continue
		}
		if _, have := s.lfs[o.OID]; !have {
			up := &action{Href: s.URL + "/lfs-storage/" + o.OID + "/" + strconv.Itoa(*o.Size)}
			if c := s.MultipartChunk; c > 0 && *o.Size > c && slices.Contains(req.Transfers, "multipart") {
				out.Transfer = "multipart"
				up.Header = map[string]string{"chunk_size": strconv.Itoa(c)}
				for i := 1; i <= (*o.Size+c-1)/c; i++ {
					up.Header[strconv.Itoa(i)] = fmt.Sprintf("%s/lfs-storage/%s/%d/part/%d", s.URL, o.OID, *o.Size, i)
				}
				up.Href = fmt.Sprintf("%s/lfs-storage/%s/%d/complete", s.URL, o.OID, *o.Size)
			}
			pre := ""
			if typ != "model" {
				pre = typ + "s/"
			}
			ob.Actions = map[string]*action{"upload": up, "verify": {Href: s.URL + "/" + pre + id + ".git/info/lfs/objects/verify"}}
		}
		out.Objects = append(out.Objects, ob)
	}
	w.Header().Set("Content-Type", "application/vnd.git-lfs+json")
	json.NewEncoder(w).Encode(out)
}

// storage is the object store behind the upload URLs:
// {oid}/{size} (PUT whole), {oid}/{size}/part/{n} (PUT part),
// {oid}/{size}/complete (POST completion).
func (s *Server) storage(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Header.Get("Authorization") != "" {
		hubError(w, http.StatusBadRequest, "", "InvalidArgument: Only one auth mechanism allowed")
		return
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 || !hex64.MatchString(parts[0]) {
		hubError(w, http.StatusNotFound, "", "NoSuchKey")
		return
	}
	oid := parts[0]
	size, _ := strconv.Atoi(parts[1])
	store := func(data []byte) bool {
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != oid || len(data) != size {
			hubError(w, http.StatusBadRequest, "", "BadDigest: the content does not match the object id or size")
			return false
		}
		s.lfs[oid] = data
		return true
	}
	switch {
	case len(parts) == 2 && r.Method == http.MethodPut:
		data, _ := io.ReadAll(r.Body)
		if store(data) {
			w.WriteHeader(http.StatusOK)
		}
	case len(parts) == 4 && parts[2] == "part" && r.Method == http.MethodPut:
		n, _ := strconv.Atoi(parts[3])
		data, _ := io.ReadAll(r.Body)
		if s.parts[oid] == nil {
			s.parts[oid] = map[int][]byte{}
		}
		s.parts[oid][n] = data
		sum := sha256.Sum256(data)
		w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
		w.WriteHeader(http.StatusOK)
	case len(parts) == 3 && parts[2] == "complete" && r.Method == http.MethodPost:
		var c struct {
			OID   string `json:"oid"`
			Parts []struct {
				PartNumber int    `json:"partNumber"`
				ETag       string `json:"etag"`
			} `json:"parts"`
		}
		if json.NewDecoder(r.Body).Decode(&c) != nil || c.OID != oid || len(c.Parts) != len(s.parts[oid]) {
			hubError(w, http.StatusBadRequest, "", "InvalidPart: the completion does not list every part")
			return
		}
		var all []byte
		for i, p := range c.Parts {
			data, ok := s.parts[oid][p.PartNumber]
			sum := sha256.Sum256(data)
			if !ok || p.PartNumber != i+1 || p.ETag != `"`+hex.EncodeToString(sum[:8])+`"` {
				hubError(w, http.StatusBadRequest, "", "InvalidPart: unknown part or wrong etag")
				return
			}
			all = append(all, data...)
		}
		if store(all) {
			w.WriteHeader(http.StatusOK)
		}
	default:
		hubError(w, http.StatusMethodNotAllowed, "", "method not allowed")
	}
}

// commit applies an NDJSON commit to repo.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, repo *Repo) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
		hubError(w, http.StatusUnsupportedMediaType, "", "send the commit as application/x-ndjson")
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	type line struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	var header struct {
		Summary     *string `json:"summary"`
		Description string  `json:"description"`
	}
	changes := map[string][]byte{}
	var deleted []string
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			hubError(w, http.StatusBadRequest, "", fmt.Sprintf("line %d is not JSON", n+1))
			return
		}
		n++
		if n == 1 {
			if l.Key != "header" || json.Unmarshal(l.Value, &header) != nil || header.Summary == nil || strings.TrimSpace(*header.Summary) == "" {
				hubError(w, http.StatusBadRequest, "", "the first line must be the header, with a summary")
				return
			}
			continue
		}
		switch l.Key {
		case "file":
			var f struct{ Content, Path, Encoding string }
			if json.Unmarshal(l.Value, &f) != nil || f.Encoding != "base64" || !validPath(f.Path) {
				hubError(w, http.StatusBadRequest, "", fmt.Sprintf("invalid file operation on line %d (path %q)", n, f.Path))
				return
			}
			data, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				hubError(w, http.StatusBadRequest, "", "content is not base64: "+f.Path)
				return
			}
			if mustLFS(f.Path, len(data), data[:min(512, len(data))]) {
				hubError(w, http.StatusBadRequest, "", "Your push was rejected because it contains binary files or files larger than 10 MiB sent without LFS: "+f.Path)
				return
			}
			changes[f.Path] = data
		case "lfsFile":
			var f struct {
				Path, Algo, OID string
				Size            *int
			}
			if json.Unmarshal(l.Value, &f) != nil || f.Algo != "sha256" || !validPath(f.Path) {
				hubError(w, http.StatusBadRequest, "", fmt.Sprintf("invalid lfsFile operation on line %d (path %q)", n, f.Path))
				return
			}
			data, ok := s.lfs[f.OID]
			if !ok || (f.Size != nil && *f.Size != len(data)) {
				hubError(w, http.StatusBadRequest, "", "LFS file "+f.Path+" points to an object that was not uploaded")
				return
			}
			changes[f.Path] = data
		case "deletedFile":
			var f struct{ Path string }
			if json.Unmarshal(l.Value, &f) != nil || !validPath(f.Path) {
				hubError(w, http.StatusBadRequest, "", "invalid deletedFile operation")
				return
			}
			if _, ok := repo.Files[f.Path]; !ok {
				hubError(w, http.StatusNotFound, "EntryNotFound", "File to delete not found: "+f.Path)
				return
			}
			deleted = append(deleted, f.Path)
		default:
			hubError(w, http.StatusBadRequest, "", fmt.Sprintf("unknown operation %q on line %d", l.Key, n))
			return
		}
	}
	if err := sc.Err(); err != nil {
		hubError(w, http.StatusBadRequest, "", "unreadable commit: "+err.Error())
		return
	}
	if n == 0 {
		hubError(w, http.StatusBadRequest, "", "the first line must be the header, with a summary")
		return
	}
	if repo.Files == nil {
		repo.Files = map[string][]byte{}
	}
	for p, d := range changes {
		repo.Files[p] = d
	}
	for _, p := range deleted {
		delete(repo.Files, p)
	}
	sum := sha1.Sum([]byte(repo.SHA + *header.Summary + strconv.Itoa(s.commits)))
	repo.SHA = hex.EncodeToString(sum[:])
	s.commits++
	json.NewEncoder(w).Encode(map[string]any{"commitUrl": s.URL + "/" + repo.Type + "s/" + repo.ID + "/commit/" + repo.SHA, "commitOid": repo.SHA, "success": true})
}
