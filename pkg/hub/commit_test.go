package hub

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/hub/hubtest"
)

func writeClient(t *testing.T, s *hubtest.Server, token string) *Client {
	return &Client{Endpoint: s.URL, Cache: t.TempDir(), Token: token}
}

func TestCommitRoundTrip(t *testing.T) {
	s := hubtest.New(t)
	s.AllowToken("hf_write", "write")
	c := writeClient(t, s, "hf_write")
	r := Repo{Type: "dataset", ID: "alice/energy", Revision: "main"}
	ctx := context.Background()
	if err := c.CreateRepo(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateRepo(ctx, r, false); err != nil { // exists: fine
		t.Fatal(err)
	}
	pq := append([]byte("PAR1"), bytes.Repeat([]byte{0, 1, 2}, 3000)...)
	files := []CommitFile{{Path: "README.md", Data: []byte("---\nlicense: cc-by-4.0\n---\n# energy\n")}, {Path: "data/train-00000-of-00001.parquet", Data: pq}, {Path: "empty.txt"}}
	info, err := c.Commit(ctx, r, files, "Upload llem results")
	if err != nil {
		t.Fatal(err)
	}
	if !IsCommit(info.OID) || !strings.Contains(info.URL, info.OID) {
		t.Fatalf("commit info %+v", info)
	}
	// What was committed downloads back, byte for byte, through the read API.
	snap, err := c.Download(ctx, r, func(fs []string) ([]string, error) { return fs, nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(snap, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Fatalf("%s: %d bytes back, want %d (%v)", f.Path, len(got), len(f.Data), err)
		}
	}
	// The Parquet file went through LFS storage, without the token.
	var puts int
	for _, q := range s.Requests() {
		if strings.HasPrefix(q.Path, "/lfs-storage/") {
			puts++
			if q.Authorization != "" {
				t.Fatalf("token sent to the storage URL %s", q.Path)
			}
		}
	}
	if puts != 1 {
		t.Fatalf("%d storage uploads, want 1", puts)
	}
	// The same object again: the LFS batch says it is stored; no upload.
	if _, err := c.Commit(ctx, r, files[1:2], "again"); err != nil {
		t.Fatal(err)
	}
	puts = 0
	for _, q := range s.Requests() {
		if strings.HasPrefix(q.Path, "/lfs-storage/") {
			puts++
		}
	}
	if puts != 1 || s.Commits() != 2 {
		t.Fatalf("after a second commit: %d uploads, %d commits", puts, s.Commits())
	}
}

func TestCommitMultipart(t *testing.T) {
	s := hubtest.New(t)
	s.AllowToken("hf_write", "write")
	s.MultipartChunk = 1000
	c := writeClient(t, s, "hf_write")
	r := Repo{Type: "dataset", ID: "alice/big", Revision: "main"}
	if err := c.CreateRepo(context.Background(), r, false); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 250) // 2500 bytes: 3 parts
	if _, err := c.Commit(context.Background(), r, []CommitFile{{Path: "data/x.parquet", Data: data}}, "big"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.File("dataset", "alice/big", "data/x.parquet"); !bytes.Equal(got, data) {
		t.Fatalf("multipart upload stored %d bytes", len(got))
	}
}

func TestCommitRefusals(t *testing.T) {
	s := hubtest.New(t)
	s.AllowToken("hf_write", "write")
	s.AllowToken("hf_read", "read")
	r := Repo{Type: "dataset", ID: "alice/energy", Revision: "main"}
	ctx := context.Background()
	if err := writeClient(t, s, "hf_write").CreateRepo(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	files := []CommitFile{{Path: "README.md", Data: []byte("x")}}
	for tok, kind := range map[string]error{"hf_read": ErrUnauthorized, "hf_wrong": ErrUnauthorized} {
		_, err := writeClient(t, s, tok).Commit(ctx, r, files, "x")
		if !errors.Is(err, kind) || strings.Contains(err.Error(), tok) {
			t.Errorf("token %s: %v", tok, err)
		}
	}
	if _, err := writeClient(t, s, "").Commit(ctx, r, files, "x"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("no token: %v", err)
	}
	if _, err := writeClient(t, s, "hf_write").Commit(ctx, Repo{Type: "dataset", ID: "alice/energy", Revision: "nope"}, files, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown branch: %v", err)
	}
	for _, bad := range []string{"../x", "/abs", ".git/config", "a//b", `a\b`, "./a", ""} {
		if _, err := writeClient(t, s, "hf_write").Commit(ctx, r, []CommitFile{{Path: bad, Data: []byte("x")}}, "x"); err == nil {
			t.Errorf("path %q committed", bad)
		}
	}
	if s.Commits() != 0 {
		t.Fatalf("%d commits made by refused requests", s.Commits())
	}
}

// TestStandInRejectsWhatTheHubRejects sends the stand-in requests the
// client never makes, to show it is strict where the Hub is.
func TestStandInRejectsWhatTheHubRejects(t *testing.T) {
	s := hubtest.New(t)
	s.AllowToken("hf_write", "write")
	if err := writeClient(t, s, "hf_write").CreateRepo(context.Background(), Repo{Type: "dataset", ID: "alice/e", Revision: "main"}, false); err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	header := `{"key":"header","value":{"summary":"s","description":""}}` + "\n"
	for name, c := range map[string]struct {
		body   string
		status int
	}{
		"no header":          {`{"key":"file","value":{"content":"` + b64("x") + `","path":"a.txt","encoding":"base64"}}`, 400},
		"empty body":         {"", 400},
		"parquet inline":     {header + `{"key":"file","value":{"content":"` + b64("PAR1") + `","path":"d/x.parquet","encoding":"base64"}}`, 400},
		"binary inline":      {header + `{"key":"file","value":{"content":"` + base64.StdEncoding.EncodeToString([]byte{0, 1}) + `","path":"x.dat","encoding":"base64"}}`, 400},
		"over 10 MiB inline": {header + `{"key":"file","value":{"content":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("a"), hubtest.MaxInline+1)) + `","path":"big.txt","encoding":"base64"}}`, 400},
		"lfs not uploaded":   {header + `{"key":"lfsFile","value":{"path":"x.parquet","algo":"sha256","oid":"` + strings.Repeat("a", 64) + `","size":3}}`, 400},
		"path escapes":       {header + `{"key":"file","value":{"content":"` + b64("x") + `","path":"../x","encoding":"base64"}}`, 400},
		"under .git":         {header + `{"key":"file","value":{"content":"` + b64("x") + `","path":".git/hooks/x","encoding":"base64"}}`, 400},
		"unknown op":         {header + `{"key":"rename","value":{}}`, 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/datasets/alice/e/commit/main", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer hf_write")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: HTTP %d, want %d", name, resp.StatusCode, c.status)
		}
	}
	if s.Commits() != 0 {
		t.Fatalf("a rejected commit was applied")
	}
}

func FuzzParseDatasetURL(f *testing.F) {
	for _, s := range []string{"hf://datasets/alice/energy", "hf://datasets/alice/energy@dev", "hf://datasets/a/b@", "hf://models/a/b", "hf://datasets/../b", "hf://datasets/a/b@x..y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseDatasetURL(s)
		if err != nil {
			return
		}
		if r.Type != "dataset" || r.Revision == "" || strings.Count(r.ID, "/") != 1 || strings.Contains(r.ID, "..") {
			t.Fatalf("%q parsed as %+v", s, r)
		}
		if ValidatePathInRepo(r.ID) != nil {
			t.Fatalf("%q: id %q is not a clean path", s, r.ID)
		}
	})
}
