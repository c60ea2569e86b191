// Package hub downloads files of a Hugging Face Hub repository at a pinned
// revision into the huggingface_hub cache layout, so what llem downloads is
// what huggingface-cli and the Python side find, and the reverse:
//
//	<cache>/datasets--org--name/snapshots/<commit sha>/<file>
//	<cache>/datasets--org--name/refs/<branch or tag>   (holds the sha)
//
// (files are stored directly in the snapshot directory, not as symlinks
// into blobs/, as huggingface_hub does where symlinks are unavailable).
//
// The Hub's HTTP API used: GET {endpoint}/api/{type}s/{repo}/revision/{rev}
// for the commit sha and the file list, and
// GET {endpoint}/{type}s/{repo}/resolve/{sha}/{file} for each file. The
// environment is read as huggingface_hub reads it: HF_ENDPOINT, HF_TOKEN,
// HF_HUB_OFFLINE and the cache variables (internal/hfcache).
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/hfcache"
	"github.com/llenergymeasure/llem/internal/version"
)

// DefaultEndpoint is the Hub's address when HF_ENDPOINT is not set.
const DefaultEndpoint = "https://huggingface.co"

// Errors of Download, for errors.Is; each comes with a message naming the
// repository and a hint (internal/errs).
var (
	// ErrOffline: HF_HUB_OFFLINE is set, so nothing was requested.
	ErrOffline = errors.New("hub offline")
	// ErrUnreachable: the endpoint could not be reached (DNS, connection
	// refused, timeout, TLS).
	ErrUnreachable = errors.New("hub unreachable")
	// ErrUnauthorized: 401/403, a gated or private repository, or a token
	// that was refused.
	ErrUnauthorized = errors.New("hub unauthorized")
	// ErrNotFound: 404, no such repository, revision or file.
	ErrNotFound = errors.New("hub not found")
)

// Repo names a repository at a revision.
type Repo struct {
	// Type is "dataset" or "model".
	Type string
	// ID is "org/name".
	ID string
	// Revision is a commit sha, a branch or a tag.
	Revision string
}

func (r Repo) String() string {
	return fmt.Sprintf("%s %s (revision %s)", r.Type, r.ID, r.Revision)
}

// Dir is the repository's folder in the cache: <cache>/datasets--org--name.
func (r Repo) Dir(cache string) string {
	return filepath.Join(cache, r.Type+"s--"+strings.ReplaceAll(r.ID, "/", "--"))
}

var commitRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{40}$`) }) // compiled on first use: start-up stays fast

// IsCommit reports whether rev is a full commit sha (not a branch or tag).
func IsCommit(rev string) bool { return commitRE().MatchString(rev) }

// Cached returns the repository's snapshot directory for its revision when
// the cache has one: a commit sha names snapshots/<sha>; a branch or tag is
// looked up in refs/<rev>. It never touches the network, and says nothing
// about which files the snapshot holds.
func Cached(cache string, r Repo) (string, bool) {
	sha := r.Revision
	if !IsCommit(sha) {
		b, err := os.ReadFile(filepath.Join(r.Dir(cache), "refs", filepath.FromSlash(r.Revision)))
		if err != nil {
			return "", false
		}
		sha = strings.TrimSpace(string(b))
		if !IsCommit(sha) {
			return "", false
		}
	}
	dir := filepath.Join(r.Dir(cache), "snapshots", sha)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", false
	}
	return dir, true
}

// Client downloads from the Hub. The zero value is not useful: use FromEnv.
type Client struct {
	// Endpoint is the Hub's base URL, without a trailing slash.
	Endpoint string
	// Token, when set, is sent as "Authorization: Bearer" to Endpoint
	// (Go's client drops it on a redirect to another host, such as the CDN
	// that serves the files). It is never printed.
	Token string
	// Offline forbids any request (HF_HUB_OFFLINE).
	Offline bool
	// Cache is the hub cache directory.
	Cache string
	// HTTP is the client used; nil = one with connect and header timeouts
	// and the environment's proxy settings.
	HTTP *http.Client
	// Progress receives download progress: a bar per file when it is a
	// terminal, a line per file otherwise, nothing when nil.
	Progress io.Writer
}

// FromEnv is a client configured as huggingface_hub would be: HF_ENDPOINT
// (default https://huggingface.co), HF_TOKEN, HF_HUB_OFFLINE and the hub
// cache (hfcache.HubDir).
func FromEnv() *Client {
	ep := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")
	if ep == "" {
		ep = DefaultEndpoint
	}
	return &Client{
		Endpoint: ep,
		Token:    os.Getenv("HF_TOKEN"),
		Offline:  OfflineFromEnv(),
		Cache:    hfcache.HubDir(),
	}
}

// OfflineFromEnv reports whether HF_HUB_OFFLINE is set to a true value
// (1, on, yes, true, as huggingface_hub reads it).
func OfflineFromEnv() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("HF_HUB_OFFLINE"))) {
	case "1", "on", "yes", "true":
		return true
	}
	return false
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 60 * time.Second
	tr.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: tr}
}

// Info is a repository's revision as the Hub describes it.
type Info struct {
	// SHA is the commit the revision resolves to.
	SHA string `json:"sha"`
	// Files are the repository's file paths ("data/train-0.parquet").
	Files []string `json:"-"`
}

// Download resolves r.Revision on the Hub, lets pick choose among the
// repository's files, and downloads the chosen ones that the cache's
// snapshot lacks. It returns the snapshot directory. Each file is written
// to a temporary name and renamed into place, so an interrupted download
// leaves no partial file under snapshots/ (all files are renamed into place
// once all have arrived); for a branch or tag, refs/<rev>
// is written (the same way) once the files are in place.
func (c *Client) Download(ctx context.Context, r Repo, pick func(files []string) ([]string, error)) (string, error) {
	if c.Offline {
		return "", c.fail(ErrOffline, r, "HF_HUB_OFFLINE is set, so llem does not download it")
	}
	info, err := c.Revision(ctx, r)
	if err != nil {
		return "", err
	}
	files, err := pick(info.Files)
	if err != nil {
		return "", err
	}
	repoDir := r.Dir(c.Cache)
	snap := filepath.Join(repoDir, "snapshots", info.SHA)
	var missing []string // files of the snapshot not yet in the cache
	for _, f := range files {
		if !localPath(f) {
			return "", fmt.Errorf("hub: %s lists an unsafe file name %q", r, f)
		}
		if _, err := os.Stat(filepath.Join(snap, filepath.FromSlash(f))); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		if err := os.MkdirAll(snap, 0o755); err != nil {
			return "", fmt.Errorf("hub: create the cache directory: %w", err)
		}
		removeStale(snap)
		// Every file goes to a temporary name first; they are renamed into
		// place only when all have arrived, so a reader never sees half a
		// file, nor a split with some of its shards.
		temps := make([]string, 0, len(missing))
		defer func() {
			for _, t := range temps {
				os.Remove(t) // no-op once renamed
			}
		}()
		prog := newProgress(c.Progress, r)
		for _, f := range missing {
			tmp, err := c.file(ctx, r, info.SHA, f, snap, prog)
			if err != nil {
				prog.close()
				return "", err
			}
			temps = append(temps, tmp)
		}
		prog.close()
		for i, f := range missing {
			if err := os.Rename(temps[i], filepath.Join(snap, filepath.FromSlash(f))); err != nil {
				return "", fmt.Errorf("hub: %w", err)
			}
		}
	}
	if !IsCommit(r.Revision) {
		ref := filepath.Join(repoDir, "refs", filepath.FromSlash(r.Revision))
		if err := writeAtomic(ref, strings.NewReader(info.SHA)); err != nil {
			return "", fmt.Errorf("hub: write %s: %w", ref, err)
		}
	}
	return snap, nil
}

// localPath reports whether a repository file name stays inside the
// snapshot directory.
func localPath(name string) bool {
	return name != "" && !strings.Contains(name, `\`) && filepath.IsLocal(filepath.FromSlash(name)) && path.Clean(name) == name
}

// Revision asks the Hub for the commit sha of r.Revision and its file list.
func (c *Client) Revision(ctx context.Context, r Repo) (*Info, error) {
	if c.Offline {
		return nil, c.fail(ErrOffline, r, "HF_HUB_OFFLINE is set, so llem does not download it")
	}
	u := fmt.Sprintf("%s/api/%ss/%s/revision/%s", c.Endpoint, r.Type, r.ID, url.PathEscape(r.Revision))
	resp, err := c.get(ctx, u)
	if err != nil {
		return nil, c.netErr(err, r)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusErr(resp, r, "")
	}
	var body struct {
		SHA      string `json:"sha"`
		Siblings []struct {
			RFilename string `json:"rfilename"`
		} `json:"siblings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("hub: %s: unreadable answer from %s: %w", r, c.Endpoint, err)
	}
	if !IsCommit(body.SHA) {
		return nil, fmt.Errorf("hub: %s: the Hub answered without a commit sha", r)
	}
	info := &Info{SHA: body.SHA}
	for _, s := range body.Siblings {
		info.Files = append(info.Files, s.RFilename)
	}
	slices.Sort(info.Files)
	return info, nil
}

func (c *Client) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "llem/"+version.Version)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return c.httpClient().Do(req)
}

// file downloads one file to a temporary file next to its place in dir and
// returns the temporary file's path.
func (c *Client) file(ctx context.Context, r Repo, sha, name, dir string, prog progress) (string, error) {
	u := fmt.Sprintf("%s/%ss/%s/resolve/%s/%s", c.Endpoint, r.Type, r.ID, sha, escapePath(name))
	resp, err := c.get(ctx, u)
	if err != nil {
		return "", c.netErr(err, r)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", c.statusErr(resp, r, name)
	}
	body, done := prog.file(name, resp.ContentLength, resp.Body)
	tmp, err := writeTemp(filepath.Join(dir, filepath.FromSlash(name)), body, func(n int64) error {
		if resp.ContentLength >= 0 && n != resp.ContentLength {
			return fmt.Errorf("%w: got %d of %d bytes", errShort, n, resp.ContentLength)
		}
		return nil
	})
	done(err)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errShort) {
			return "", c.fail(ErrUnreachable, r, "download of %s from %s broke off: %v", name, c.host(), err)
		}
		return "", fmt.Errorf("hub: %s: %s: %w", r, name, err)
	}
	return tmp, nil
}

var errShort = errors.New("the download ended early")

// tempSuffix ends the names of files being downloaded (hidden, with a
// leading dot, too), so readers of a snapshot can tell them apart.
const tempSuffix = ".incomplete"

// removeStale deletes temporary files that a killed download left in dir
// more than an hour ago.
func removeStale(dir string) {
	filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, tempSuffix) {
			return nil
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(p)
		}
		return nil
	})
}

func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// writeTemp copies src to a temporary file next to dst and returns its
// path; check, when set, vets the byte count. On any failure the temporary
// file is removed.
func writeTemp(dst string, src io.Reader, check func(n int64) error) (_ string, err error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*"+tempSuffix)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, src)
	if err != nil {
		return "", err
	}
	if check != nil {
		if err := check(n); err != nil {
			return "", err
		}
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	return tmp.Name(), nil
}

// writeAtomic writes src to dst through a temporary file and a rename.
func writeAtomic(dst string, src io.Reader) error {
	tmp, err := writeTemp(dst, src, nil)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func (c *Client) host() string {
	if u, err := url.Parse(c.Endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return c.Endpoint
}

// Error is a failed download: "<repo>: <what went wrong>".
type Error struct {
	// Kind is ErrOffline, ErrUnreachable, ErrUnauthorized, ErrNotFound or
	// nil (another HTTP status).
	Kind error
	Repo Repo
	// Msg says what went wrong, without the repository.
	Msg string
}

func (e *Error) Error() string { return e.Repo.String() + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// fail makes an *Error of kind with the hint for that kind.
func (c *Client) fail(kind error, r Repo, format string, args ...any) error {
	return errs.WithHint(&Error{Kind: kind, Repo: r, Msg: fmt.Sprintf(format, args...)}, c.hint(kind, r))
}

func (c *Client) hint(kind error, r Repo) string {
	page := fmt.Sprintf("%s/%ss/%s", c.Endpoint, r.Type, r.ID)
	switch kind {
	case ErrOffline:
		return "unset HF_HUB_OFFLINE to let llem download it"
	case ErrUnreachable:
		return fmt.Sprintf("connect this machine to %s (or set HF_ENDPOINT to a mirror; HTTPS_PROXY is honoured)", c.host())
	case ErrUnauthorized:
		if c.Token != "" {
			return fmt.Sprintf("HF_TOKEN was refused: check that it is valid and its account has accepted the terms at %s", page)
		}
		return fmt.Sprintf("the repository is gated or private: accept its terms at %s and set HF_TOKEN to a token of that account (huggingface.co/settings/tokens)", page)
	case ErrNotFound:
		return fmt.Sprintf("check the repository name and revision (%s; the revision is a commit sha, branch or tag)", page)
	}
	return ""
}

// netErr describes a request that got no answer.
func (c *Client) netErr(err error, r Repo) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return c.fail(ErrUnreachable, r, "%s does not resolve (no network?)", c.host())
	case errors.Is(err, syscall.ECONNREFUSED):
		return c.fail(ErrUnreachable, r, "connection to %s refused", c.host())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is in the message already, without the token
	}
	return c.fail(ErrUnreachable, r, "%s unreachable: %v", c.host(), err)
}

// statusErr describes a non-200 answer. The Hub says which thing was
// missing in X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound,
// GatedRepo); a 401 for a missing repository is how it hides private ones.
func (c *Client) statusErr(resp *http.Response, r Repo, file string) error {
	code := resp.Header.Get("X-Error-Code")
	what := "the repository"
	if file != "" {
		what = file
	}
	switch {
	case code == "RevisionNotFound":
		return c.fail(ErrNotFound, r, "the repository has no revision %q", r.Revision)
	case code == "RepoNotFound" && resp.StatusCode == http.StatusUnauthorized && c.Token == "":
		return errs.WithHint(&Error{Kind: ErrNotFound, Repo: r, Msg: "the repository does not exist, or is private (HTTP 401)"},
			"check the repository name; if it is private, set HF_TOKEN to a token with access")
	case code == "RepoNotFound":
		return c.fail(ErrNotFound, r, "the repository does not exist on %s", c.host())
	case code == "EntryNotFound":
		return c.fail(ErrNotFound, r, "%s does not exist", what)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || code == "GatedRepo":
		return c.fail(ErrUnauthorized, r, "access to %s refused (HTTP %d): gated or private", what, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		return c.fail(ErrNotFound, r, "%s not found on %s (HTTP 404): no such repository or revision", what, c.host())
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	detail := strings.TrimSpace(string(msg))
	if detail != "" {
		detail = ": " + strings.ReplaceAll(detail, "\n", " ")
	}
	return errs.WithHint(&Error{Repo: r, Msg: fmt.Sprintf("%s: HTTP %d from %s%s", what, resp.StatusCode, c.host(), detail)},
		"the Hub may be having trouble: try again later")
}
