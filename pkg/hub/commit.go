package hub

// Uploading to the Hub: the commit API as huggingface_hub's create_commit
// uses it, read from huggingface/huggingface_hub
// src/huggingface_hub/_commit_api.py @ 32a2b30969c24562479acceb9bddff521268553f
// (_fetch_upload_modes, _prepare_commit_payload, _validate_path_in_repo)
// and src/huggingface_hub/lfs.py (post_lfs_batch_info, lfs_upload,
// _upload_single_part, _upload_multi_part, as in the release whose source
// the search index holds as id 66746246337):
//
//  1. POST {ep}/api/{type}s/{repo}/preupload/{rev}  {"files":[{path,sample,size,sha}]}
//     → {"files":[{path,uploadMode: "lfs"|"regular"}]}; empty files are regular.
//  2. LFS files: POST {ep}/{prefix}{repo}.git/info/lfs/objects/batch
//     (application/vnd.git-lfs+json) {"operation":"upload","transfers":["basic","multipart"],
//     "objects":[{oid,size}],"hash_algo":"sha256","ref":{"name":rev}} → per object
//     actions.upload (PUT href; header.chunk_size and numbered part URLs for
//     multipart, then POST the completion {oid, parts:[{partNumber,etag}]})
//     and actions.verify (POST {oid,size}); no actions: already stored.
//  3. POST {ep}/api/{type}s/{repo}/commit/{rev} as application/x-ndjson: a
//     {"key":"header","value":{"summary","description"}} line, then one
//     {"key":"file","value":{content(base64),path,encoding:"base64"}} or
//     {"key":"lfsFile","value":{path,algo:"sha256",oid,size}} line per file
//     → {"commitUrl","commitOid"}.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
)

// CommitFile is one file of a commit: its path in the repository and bytes.
type CommitFile struct {
	Path string
	Data []byte
}

// CommitInfo is the Hub's answer to a commit.
type CommitInfo struct {
	URL string `json:"commitUrl"`
	OID string `json:"commitOid"`
}

var repoNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`)
}) // compiled on first use: start-up stays fast

// ParseDatasetURL reads hf://datasets/OWNER/NAME[@revision] (revision
// defaults to main).
func ParseDatasetURL(s string) (Repo, error) {
	rest, ok := strings.CutPrefix(s, "hf://datasets/")
	if !ok {
		return Repo{}, errs.BadInput(fmt.Errorf("%q is not a Hub dataset address", s), "write hf://datasets/OWNER/NAME, or hf://datasets/OWNER/NAME@BRANCH")
	}
	id, rev, hasRev := strings.Cut(rest, "@")
	if !hasRev {
		rev = "main"
	}
	if !repoNameRE().MatchString(id) || strings.Contains(id, "..") || strings.HasSuffix(id, ".git") {
		return Repo{}, errs.BadInput(fmt.Errorf("%q: %q is not OWNER/NAME", s, id), "a Hub repository id is OWNER/NAME of letters, digits, '-', '_' and '.'")
	}
	if rev == "" || strings.ContainsAny(rev, " ~^:?*[\\") || strings.Contains(rev, "..") || strings.HasPrefix(rev, "/") || strings.HasSuffix(rev, "/") {
		return Repo{}, errs.BadInput(fmt.Errorf("%q: %q is not a branch name", s, rev), "give a branch such as main after @")
	}
	return Repo{Type: "dataset", ID: id, Revision: rev}, nil
}

// ValidatePathInRepo applies huggingface_hub's _validate_path_in_repo rules,
// stricter: no leading "/" or "./", no "." or ".." component, nothing under
// .git/, no backslash.
func ValidatePathInRepo(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return fmt.Errorf("invalid path in repository %q", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." || part == ".git" {
			return fmt.Errorf("invalid path in repository %q", p)
		}
	}
	return nil
}

// CreateRepo makes the repository (POST /api/repos/create, as
// huggingface_hub's create_repo); one that exists already (409) is fine.
func (c *Client) CreateRepo(ctx context.Context, r Repo, private bool) error {
	owner, name, _ := strings.Cut(r.ID, "/")
	body := map[string]any{"name": name, "organization": owner, "type": r.Type, "private": private}
	resp, err := c.send(ctx, http.MethodPost, c.Endpoint+"/api/repos/create", "application/json", body, true)
	if err != nil {
		return c.netErr(err, r)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict {
		return nil
	}
	return c.writeErr(resp, r, "create the repository")
}

// Commit uploads files to r.Revision in one commit: regular files inline,
// the files the Hub wants in LFS (Parquet, large files) through the LFS
// batch API first. Nothing is committed unless every LFS upload succeeded.
func (c *Client) Commit(ctx context.Context, r Repo, files []CommitFile, summary string) (*CommitInfo, error) {
	if c.Offline {
		return nil, c.fail(ErrOffline, r, "HF_HUB_OFFLINE is set, so llem does not upload")
	}
	if c.Token == "" {
		return nil, errs.BadInput(&Error{Kind: ErrUnauthorized, Repo: r, Msg: "no Hugging Face token"}, "set HF_TOKEN (or sharing.hf_token in the user config) to a token with write access (huggingface.co/settings/tokens)")
	}
	seen := map[string]bool{}
	for _, f := range files {
		if err := ValidatePathInRepo(f.Path); err != nil {
			return nil, fmt.Errorf("hub: %s: %w", r, err)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("hub: %s: %s twice in one commit", r, f.Path)
		}
		seen[f.Path] = true
	}
	modes, err := c.preupload(ctx, r, files)
	if err != nil {
		return nil, err
	}
	var lfs []CommitFile
	for _, f := range files {
		if modes[f.Path] == "lfs" {
			lfs = append(lfs, f)
		}
	}
	if len(lfs) > 0 {
		if err := c.uploadLFS(ctx, r, lfs); err != nil {
			return nil, err
		}
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body) // one JSON value per line: NDJSON
	enc.Encode(map[string]any{"key": "header", "value": map[string]string{"summary": summary, "description": ""}})
	for _, f := range files {
		if modes[f.Path] == "lfs" {
			sum := sha256.Sum256(f.Data)
			enc.Encode(map[string]any{"key": "lfsFile", "value": map[string]any{"path": f.Path, "algo": "sha256", "oid": hex.EncodeToString(sum[:]), "size": len(f.Data)}})
			continue
		}
		enc.Encode(map[string]any{"key": "file", "value": map[string]string{"content": base64.StdEncoding.EncodeToString(f.Data), "path": f.Path, "encoding": "base64"}})
	}
	u := fmt.Sprintf("%s/api/%ss/%s/commit/%s", c.Endpoint, r.Type, r.ID, url.PathEscape(r.Revision))
	resp, err := c.send(ctx, http.MethodPost, u, "application/x-ndjson", body.Bytes(), true)
	if err != nil {
		return nil, c.netErr(err, r)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.writeErr(resp, r, "commit")
	}
	var info CommitInfo
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info); err != nil || info.OID == "" {
		return nil, fmt.Errorf("hub: %s: unreadable answer to the commit (%v)", r, err)
	}
	return &info, nil
}

// preupload asks the Hub which files go through LFS.
func (c *Client) preupload(ctx context.Context, r Repo, files []CommitFile) (map[string]string, error) {
	modes := map[string]string{}
	for start := 0; start < len(files); start += 256 { // huggingface_hub's chunk size
		chunk := files[start:min(start+256, len(files))]
		type entry struct {
			Path   string `json:"path"`
			Sample string `json:"sample"`
			Size   int    `json:"size"`
			SHA    string `json:"sha"`
		}
		var req struct {
			Files []entry `json:"files"`
		}
		for _, f := range chunk {
			sum := sha256.Sum256(f.Data)
			req.Files = append(req.Files, entry{Path: f.Path, Sample: base64.StdEncoding.EncodeToString(f.Data[:min(512, len(f.Data))]), Size: len(f.Data), SHA: hex.EncodeToString(sum[:])})
		}
		u := fmt.Sprintf("%s/api/%ss/%s/preupload/%s", c.Endpoint, r.Type, r.ID, url.PathEscape(r.Revision))
		resp, err := c.send(ctx, http.MethodPost, u, "application/json", req, true)
		if err != nil {
			return nil, c.netErr(err, r)
		}
		var ans struct {
			Files []struct {
				Path       string `json:"path"`
				UploadMode string `json:"uploadMode"`
			} `json:"files"`
		}
		if resp.StatusCode != http.StatusOK {
			defer resp.Body.Close()
			return nil, c.writeErr(resp, r, "preupload")
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&ans)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("hub: %s: unreadable preupload answer: %w", r, err)
		}
		for _, f := range ans.Files {
			if f.UploadMode != "lfs" && f.UploadMode != "regular" {
				return nil, fmt.Errorf("hub: %s: preupload answered upload mode %q for %s", r, f.UploadMode, f.Path)
			}
			modes[f.Path] = f.UploadMode
		}
	}
	for _, f := range files {
		if _, ok := modes[f.Path]; !ok {
			return nil, fmt.Errorf("hub: %s: preupload did not answer for %s", r, f.Path)
		}
		if len(f.Data) == 0 { // empty files cannot go through LFS
			modes[f.Path] = "regular"
		}
	}
	return modes, nil
}

type lfsAction struct {
	Href   string            `json:"href"`
	Header map[string]string `json:"header"`
}

type lfsObject struct {
	OID     string `json:"oid"`
	Size    int64  `json:"size"`
	Actions *struct {
		Upload *lfsAction `json:"upload"`
		Verify *lfsAction `json:"verify"`
	} `json:"actions"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// uploadLFS sends files through the LFS batch API.
func (c *Client) uploadLFS(ctx context.Context, r Repo, files []CommitFile) error {
	prefix := ""
	if r.Type != "model" {
		prefix = r.Type + "s/"
	}
	byOID := map[string]CommitFile{}
	type obj struct {
		OID  string `json:"oid"`
		Size int    `json:"size"`
	}
	req := map[string]any{"operation": "upload", "transfers": []string{"basic", "multipart"}, "hash_algo": "sha256", "ref": map[string]string{"name": r.Revision}}
	var objs []obj
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		oid := hex.EncodeToString(sum[:])
		if _, dup := byOID[oid]; !dup {
			objs = append(objs, obj{oid, len(f.Data)})
		}
		byOID[oid] = f
	}
	req["objects"] = objs
	u := fmt.Sprintf("%s/%s%s.git/info/lfs/objects/batch", c.Endpoint, prefix, r.ID)
	resp, err := c.send(ctx, http.MethodPost, u, "application/vnd.git-lfs+json", req, true)
	if err != nil {
		return c.netErr(err, r)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.writeErr(resp, r, "LFS batch")
	}
	var ans struct {
		Objects []lfsObject `json:"objects"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&ans); err != nil {
		return fmt.Errorf("hub: %s: unreadable LFS batch answer: %w", r, err)
	}
	answered := map[string]bool{}
	for _, o := range ans.Objects {
		f, ok := byOID[o.OID]
		if !ok {
			return fmt.Errorf("hub: %s: LFS batch answered for an object not asked (%s)", r, o.OID)
		}
		answered[o.OID] = true
		if o.Error != nil {
			return fmt.Errorf("hub: %s: LFS refused %s: %d %s", r, f.Path, o.Error.Code, o.Error.Message)
		}
		if o.Actions == nil || o.Actions.Upload == nil {
			continue // already stored upstream
		}
		if err := c.lfsUpload(ctx, r, f, o); err != nil {
			return err
		}
	}
	for oid, f := range byOID {
		if !answered[oid] {
			return fmt.Errorf("hub: %s: LFS batch did not answer for %s", r, f.Path)
		}
	}
	return nil
}

// lfsUpload PUTs one object (single part, or multipart when the action's
// header carries chunk_size and numbered part URLs), then verifies it.
func (c *Client) lfsUpload(ctx context.Context, r Repo, f CommitFile, o lfsObject) error {
	up := o.Actions.Upload
	if cs, ok := up.Header["chunk_size"]; ok {
		size, err := strconv.Atoi(cs)
		if err != nil || size <= 0 {
			return fmt.Errorf("hub: %s: LFS chunk_size %q is not a positive integer", r, cs)
		}
		var parts []int
		for k := range up.Header {
			if n, err := strconv.Atoi(k); err == nil && n > 0 {
				parts = append(parts, n)
			}
		}
		sort.Ints(parts)
		if len(parts) != (len(f.Data)+size-1)/size {
			return fmt.Errorf("hub: %s: invalid server response to upload large LFS file %s", r, f.Path)
		}
		type part struct {
			PartNumber int    `json:"partNumber"`
			ETag       string `json:"etag"`
		}
		var done []part
		for i, n := range parts {
			chunk := f.Data[i*size : min((i+1)*size, len(f.Data))]
			resp, err := c.send(ctx, http.MethodPut, up.Header[strconv.Itoa(n)], "", chunk, false)
			if err != nil {
				return c.netErr(err, r)
			}
			resp.Body.Close()
			etag := resp.Header.Get("ETag")
			if resp.StatusCode/100 != 2 || etag == "" {
				return fmt.Errorf("hub: %s: upload of part %d of %s: HTTP %d, etag %q", r, n, f.Path, resp.StatusCode, etag)
			}
			done = append(done, part{i + 1, etag})
		}
		resp, err := c.send(ctx, http.MethodPost, up.Href, "application/vnd.git-lfs+json", map[string]any{"oid": o.OID, "parts": done}, false)
		if err != nil {
			return c.netErr(err, r)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("hub: %s: completing the upload of %s: HTTP %d", r, f.Path, resp.StatusCode)
		}
	} else {
		resp, err := c.send(ctx, http.MethodPut, up.Href, "", f.Data, false)
		if err != nil {
			return c.netErr(err, r)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("hub: %s: upload of %s: HTTP %d", r, f.Path, resp.StatusCode)
		}
	}
	if v := o.Actions.Verify; v != nil {
		resp, err := c.send(ctx, http.MethodPost, v.Href, "application/json", map[string]any{"oid": o.OID, "size": len(f.Data)}, true)
		if err != nil {
			return c.netErr(err, r)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return c.writeErr(resp, r, "LFS verify of "+f.Path)
		}
	}
	return nil
}

// send makes a request; body is []byte or a value sent as JSON. auth sends
// the token, which only requests to the Hub itself do (never an upload URL,
// which may be a storage provider's presigned address).
func (c *Client) send(ctx context.Context, method, u, contentType string, body any, auth bool) (*http.Response, error) {
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if contentType == "application/vnd.git-lfs+json" {
		req.Header.Set("Accept", contentType)
	}
	req.Header.Set("User-Agent", "llem/"+version.Version)
	if auth && c.Token != "" && strings.HasPrefix(u, c.Endpoint+"/") {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.httpClient().Do(req)
}

// writeErr describes a refused write.
func (c *Client) writeErr(resp *http.Response, r Repo, what string) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	detail := strings.TrimSpace(string(msg))
	var je struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(msg, &je) == nil && je.Error != "" {
		detail = je.Error
	}
	e := &Error{Repo: r, Msg: fmt.Sprintf("%s refused (HTTP %d): %s", what, resp.StatusCode, detail)}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
		return errs.WithHint(e, "the Hub refused the token: set HF_TOKEN (or sharing.hf_token) to a valid token")
	case resp.StatusCode == http.StatusForbidden:
		e.Kind = ErrUnauthorized
		return errs.WithHint(e, "the token may not write to "+r.ID+": use a token with write access to it (huggingface.co/settings/tokens)")
	case resp.Header.Get("X-Error-Code") == "RevisionNotFound":
		e.Kind = ErrNotFound
		return errs.WithHint(e, "create the branch "+r.Revision+" on the Hub first, or push to main")
	case resp.StatusCode == http.StatusNotFound:
		e.Kind = ErrNotFound
		return errs.WithHint(e, "check the repository name")
	}
	return e
}
