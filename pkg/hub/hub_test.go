package hub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/hub/hubtest"
)

// The tests run against hubtest, a local server that stands in for
// huggingface.co (the real Hub is not reachable from CI).

const sha = "0123456789abcdef0123456789abcdef01234567"

func repo() hubtest.Repo {
	return hubtest.Repo{Type: "dataset", ID: "org/prompts", SHA: sha, Branches: []string{"main"},
		Files: map[string][]byte{
			"README.md":                    []byte("# prompts\n"),
			"data/train-00000.parquet":     bytes.Repeat([]byte("p"), 5000),
			"data/train-00001.csv":         []byte("text\nhello\n"),
			"data/test-00000.jsonl":        []byte(`{"text":"t"}` + "\n"),
			"dir with space/x+y.json":      []byte(`[]`),
			"data/validation-00000.jsonl":  []byte(`{"text":"v"}` + "\n"),
			"data/train-00002.jsonl":       []byte(`{"text":"j"}` + "\n"),
			"data/other/train-notes.jsonl": []byte(`{"text":"n"}` + "\n"),
		}}
}

func client(t *testing.T, s *hubtest.Server) *Client {
	return &Client{Endpoint: s.URL, Cache: t.TempDir()}
}

func train(files []string) ([]string, error) {
	var out []string
	for _, f := range files {
		if strings.HasPrefix(f, "data/train-") || f == "dir with space/x+y.json" {
			out = append(out, f)
		}
	}
	return out, nil
}

func TestDownloadLayout(t *testing.T) {
	s := hubtest.New(t, repo())
	c := client(t, s)
	var prog bytes.Buffer
	c.Progress = &prog
	r := Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}
	dir, err := c.Download(context.Background(), r, train)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(c.Cache, "datasets--org--prompts", "snapshots", sha)
	if dir != want {
		t.Fatalf("snapshot %s, want %s", dir, want)
	}
	for _, f := range []string{"data/train-00000.parquet", "data/train-00001.csv", "data/train-00002.jsonl", "dir with space/x+y.json"} {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil || !bytes.Equal(got, repo().Files[f]) {
			t.Errorf("%s: %v (%d bytes)", f, err, len(got))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err == nil {
		t.Error("downloaded a file pick did not choose")
	}
	ref, err := os.ReadFile(filepath.Join(c.Cache, "datasets--org--prompts", "refs", "main"))
	if err != nil || string(ref) != sha {
		t.Errorf("refs/main = %q, %v; want the sha", ref, err)
	}
	if got, ok := Cached(c.Cache, r); !ok || got != dir {
		t.Errorf("Cached(main) = %q, %v", got, ok)
	}
	if got, ok := Cached(c.Cache, Repo{Type: "dataset", ID: "org/prompts", Revision: sha}); !ok || got != dir {
		t.Errorf("Cached(sha) = %q, %v", got, ok)
	}
	if _, ok := Cached(c.Cache, Repo{Type: "dataset", ID: "org/prompts", Revision: "v2"}); ok {
		t.Error("Cached found an unknown tag")
	}
	if !strings.Contains(prog.String(), "llem: downloading dataset org/prompts (revision main): data/train-00000.parquet (4.9 KiB)") ||
		!strings.Contains(prog.String(), "llem: downloaded data/train-00000.parquet (4.9 KiB") {
		t.Errorf("progress lines:\n%s", prog.String())
	}

	// Again: only the revision is asked for, the files are there.
	n := len(s.Requests())
	prog.Reset()
	if _, err := c.Download(context.Background(), r, train); err != nil {
		t.Fatal(err)
	}
	if reqs := s.Requests()[n:]; len(reqs) != 1 || !strings.HasPrefix(reqs[0].Path, "/api/") {
		t.Errorf("second download made requests %v", reqs)
	}
	if prog.Len() != 0 {
		t.Errorf("progress for nothing to download: %q", prog.String())
	}
	// A commit revision writes no ref.
	c2 := client(t, s)
	if _, err := c2.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: sha}, train); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(c2.Cache, "datasets--org--prompts", "refs")); err == nil {
		t.Error("refs/ written for a commit revision")
	}
}

func TestTokenSentNotShown(t *testing.T) {
	rp := repo()
	rp.Gated, rp.Token = true, "hf_secret123"
	s := hubtest.New(t, rp)
	c := client(t, s)
	var prog bytes.Buffer
	c.Progress = &prog
	c.Token = "hf_secret123"
	r := Repo{Type: "dataset", ID: "org/prompts", Revision: sha}
	if _, err := c.Download(context.Background(), r, train); err != nil {
		t.Fatal(err)
	}
	for _, q := range s.Requests() {
		if q.Authorization != "Bearer hf_secret123" {
			t.Errorf("%s: Authorization %q", q.Path, q.Authorization)
		}
	}
	// A refused token: the error names neither it nor the header.
	c = client(t, s)
	c.Progress = &prog
	c.Token = "hf_wrong456"
	_, err := c.Download(context.Background(), r, train)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(errs.Hint(err), "HF_TOKEN was refused") {
		t.Fatalf("wrong token: %v (hint %q)", err, errs.Hint(err))
	}
	for _, text := range []string{err.Error(), errs.Hint(err), prog.String()} {
		if strings.Contains(text, "secret123") || strings.Contains(text, "wrong456") {
			t.Errorf("token shown: %q", text)
		}
	}
}

func TestGated(t *testing.T) {
	rp := repo()
	rp.Gated, rp.Token = true, "hf_x"
	s := hubtest.New(t, rp)
	_, err := client(t, s).Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}, train)
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HTTP 401") ||
		!strings.Contains(errs.Hint(err), "set HF_TOKEN") || !strings.Contains(errs.Hint(err), s.URL+"/datasets/org/prompts") {
		t.Fatalf("gated: %v (hint %q)", err, errs.Hint(err))
	}
}

func TestNotFound(t *testing.T) {
	s := hubtest.New(t, repo())
	c := client(t, s)
	_, err := c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "v9"}, train)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `has no revision "v9"`) || !strings.Contains(errs.Hint(err), "revision") {
		t.Errorf("bad revision: %v (hint %q)", err, errs.Hint(err))
	}
	_, err = c.Download(context.Background(), Repo{Type: "dataset", ID: "org/nope", Revision: "main"}, train)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "org/nope (revision main): the repository does not exist, or is private") {
		t.Errorf("bad repo: %v", err)
	}
	// A file the listing named but the server lacks.
	_, err = c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"},
		func([]string) ([]string, error) { return []string{"gone.csv"}, nil })
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "gone.csv") {
		t.Errorf("missing file: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(c.Cache, "datasets--org--prompts", "snapshots", sha)); len(entries) != 0 {
		t.Errorf("left %v behind", entries)
	}
}

func TestServerDown(t *testing.T) {
	s := httptest.NewServer(nil)
	url := s.URL
	s.Close()
	c := &Client{Endpoint: url, Cache: t.TempDir()}
	_, err := c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}, train)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "refused") || !strings.Contains(errs.Hint(err), "connect this machine") {
		t.Fatalf("server down: %v (hint %q)", err, errs.Hint(err))
	}
	// A name that does not resolve (.invalid never does, RFC 2606).
	c.Endpoint = "http://hub.invalid"
	c.HTTP = &http.Client{Transport: &http.Transport{}} // no proxy from the environment
	_, err = c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}, train)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "hub.invalid") {
		t.Fatalf("no DNS: %v", err)
	}
}

func TestOffline(t *testing.T) {
	s := hubtest.New(t, repo())
	c := client(t, s)
	c.Offline = true
	_, err := c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}, train)
	if !errors.Is(err, ErrOffline) || !strings.Contains(errs.Hint(err), "HF_HUB_OFFLINE") {
		t.Fatalf("offline: %v", err)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("offline client made %d requests", n)
	}
}

// TestAtomic: a download that breaks off in its second file leaves no file
// in the snapshot, neither the broken one nor the complete first one.
func TestAtomic(t *testing.T) {
	rp := repo()
	rp.Truncate = []string{"data/train-00001.csv"}
	s := hubtest.New(t, rp)
	c := client(t, s)
	_, err := c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}, train)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "broke off") {
		t.Fatalf("truncated download: %v", err)
	}
	var left []string
	filepath.WalkDir(filepath.Join(c.Cache, "datasets--org--prompts"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, ok := Cached(c.Cache, Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}); ok {
		t.Error("refs/main written for a failed download")
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("HF_ENDPOINT", "https://mirror.example/")
	t.Setenv("HF_TOKEN", "hf_t")
	t.Setenv("HF_HUB_CACHE", "/tmp/hubcache")
	for v, want := range map[string]bool{"1": true, "ON": true, "yes": true, "True": true, "0": false, "": false, "no": false} {
		t.Setenv("HF_HUB_OFFLINE", v)
		c := FromEnv()
		if c.Offline != want || c.Endpoint != "https://mirror.example" || c.Token != "hf_t" || c.Cache != "/tmp/hubcache" {
			t.Errorf("HF_HUB_OFFLINE=%q: %+v", v, c)
		}
	}
	t.Setenv("HF_ENDPOINT", "")
	if c := FromEnv(); c.Endpoint != DefaultEndpoint {
		t.Errorf("default endpoint %q", c.Endpoint)
	}
}

func TestUnsafeNames(t *testing.T) {
	s := hubtest.New(t, repo())
	c := client(t, s)
	for _, name := range []string{"../x.csv", "/abs.csv", "a/../../b.csv", `a\b.csv`} {
		_, err := c.Download(context.Background(), Repo{Type: "dataset", ID: "org/prompts", Revision: "main"},
			func([]string) ([]string, error) { return []string{name}, nil })
		if err == nil || !strings.Contains(err.Error(), "unsafe") {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// TestBarProgress drives the terminal progress (mpb) into a buffer: bars
// complete for known and unknown sizes, abort on failure, and close returns.
func TestBarProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &barProgress{w: &buf, p: mpb.New(mpb.WithOutput(&buf), mpb.WithWidth(30), mpb.WithAutoRefresh()), repo: Repo{Type: "dataset", ID: "org/prompts", Revision: "main"}}
	for i, size := range []int64{6, -1, 6} {
		r, done := p.file("f.csv", size, strings.NewReader("abcdef"))
		data, err := io.ReadAll(r)
		if err != nil || string(data) != "abcdef" {
			t.Fatalf("read %q, %v", data, err)
		}
		if i == 2 {
			done(errors.New("broke"))
		} else {
			done(nil)
		}
	}
	finished := make(chan struct{})
	go func() { p.close(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("close hangs")
	}
	if !strings.Contains(buf.String(), "downloading dataset org/prompts") {
		t.Errorf("bar output:\n%s", buf.String())
	}
	if newProgress(&buf, Repo{}) == nil || newProgress(nil, Repo{}) != (noProgress{}) {
		t.Error("newProgress")
	}
}
