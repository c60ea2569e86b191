package dataset

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/hub"
	"github.com/llenergymeasure/llem/pkg/hub/hubtest"
)

// These tests download from hubtest, a local server standing in for
// huggingface.co (the real Hub is not reachable from CI).

// parquetFile is a Parquet file with a nullable string column "text" and
// an int64 column "id", one row per text ("" = null).
func parquetFile(t *testing.T, texts ...string) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, s := range texts {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if s == "" {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(s)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const sha = "89abcdef0123456789abcdef0123456789abcdef"

func promptsRepo(t *testing.T) hubtest.Repo {
	return hubtest.Repo{Type: "dataset", ID: "org/prompts", SHA: sha, Branches: []string{"main"},
		Files: map[string][]byte{
			"README.md":                         []byte("---\nlicense: apache-2.0\n---\n"),
			"data/train-00000-of-00003.parquet": parquetFile(t, "p1", "", "  ", " p2\n"),
			"data/train-00001-of-00003.csv":     []byte("\ufeffid,text\n1,c1\n2,\"c2, with \"\"quotes\"\"\nand a newline\"\n3,\n"),
			"data/train-00002-of-00003.jsonl":   []byte(`{"text":"j1"}` + "\n" + `{"text":null}` + "\n" + `{"text":" j2 ","max_new_tokens":7}` + "\n"),
			"data/test-00000-of-00001.jsonl":    []byte(`{"text":"t1"}` + "\n"),
		}}
}

func TestFetchDownloadsAndReads(t *testing.T) {
	s := hubtest.New(t, promptsRepo(t))
	cache := t.TempDir()
	var prog bytes.Buffer
	spec := Spec{Source: "aienergyscore", Name: "org/prompts", Revision: "main"}
	opts := FetchOptions{HFHubCache: cache, Progress: &prog, Client: &hub.Client{Endpoint: s.URL}}
	got, err := Fetch(context.Background(), spec, opts)
	if err != nil || !got {
		t.Fatalf("Fetch = %v, %v", got, err)
	}
	snap := filepath.Join(cache, "datasets--org--prompts", "snapshots", sha)
	files, _ := snapshotFiles(snap)
	want := []string{"data/train-00000-of-00003.parquet", "data/train-00001-of-00003.csv", "data/train-00002-of-00003.jsonl"}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("cached %v, want the train split only %v", files, want)
	}
	if !strings.Contains(prog.String(), "downloading dataset org/prompts (revision main)") {
		t.Errorf("progress:\n%s", prog.String())
	}

	// Dataset order across files (parquet, csv, jsonl), empty and null rows
	// skipped, prompts stripped.
	c := Config{N: 6, Order: "interleaved", Dataset: spec}
	ps, err := Build(c, Options{HFHubCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	wantTexts := []string{"p1", "p2", "c1", "c2, with \"quotes\"\nand a newline", "j1", "j2"}
	if got := texts(ps); !reflect.DeepEqual(got, wantTexts) {
		t.Errorf("prompts %q, want %q", got, wantTexts)
	}
	if ps[5].MaxTokens != 7 {
		t.Errorf("max_new_tokens of the jsonl row: %d", ps[5].MaxTokens)
	}

	// The second time: from the cache, no request (the server is gone).
	s.Close()
	prog.Reset()
	if got, err := Fetch(context.Background(), spec, opts); err != nil || got {
		t.Fatalf("cached Fetch = %v, %v", got, err)
	}
	if prog.Len() != 0 {
		t.Errorf("progress for a cached set: %q", prog.String())
	}

	// Another split of the same revision: downloaded into the same snapshot.
	s2 := hubtest.New(t, promptsRepo(t))
	opts.Client = &hub.Client{Endpoint: s2.URL}
	test := spec
	test.Split = "test"
	if got, err := Fetch(context.Background(), test, opts); err != nil || !got {
		t.Fatalf("test split: %v, %v", got, err)
	}
	ps, err = Build(Config{N: 1, Order: "interleaved", Dataset: test}, Options{HFHubCache: cache})
	if err != nil || texts(ps)[0] != "t1" {
		t.Fatalf("test split: %v %v", texts(ps), err)
	}
	// A split the repository lacks names the ones it has.
	bad := spec
	bad.Split = "validation"
	_, err = Fetch(context.Background(), bad, opts)
	if !errors.Is(err, ErrDataset) || !strings.Contains(errs.Hint(err), "one of: test, train") {
		t.Errorf("missing split: %v (hint %q)", err, errs.Hint(err))
	}
}

// TestFetchDefaultPinned: the default spec asks the Hub for the pinned
// commit of AIEnergyScore/text_generation, and a file naming no split is
// the train split.
func TestFetchDefaultPinned(t *testing.T) {
	s := hubtest.New(t, hubtest.Repo{Type: "dataset", ID: AIEnergyScoreName, SHA: AIEnergyScoreRevision,
		Files: map[string][]byte{"text_generation.csv": []byte("text\nq1\nq2\n"), "README.md": []byte("x")}})
	cache := t.TempDir()
	spec := Spec{Source: "aienergyscore"}
	if _, err := Fetch(context.Background(), spec, FetchOptions{HFHubCache: cache, Client: &hub.Client{Endpoint: s.URL}}); err != nil {
		t.Fatal(err)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/api/datasets/AIEnergyScore/text_generation/revision/"+AIEnergyScoreRevision ||
		reqs[1].Path != "/datasets/AIEnergyScore/text_generation/resolve/"+AIEnergyScoreRevision+"/text_generation.csv" {
		t.Errorf("requests %v", reqs)
	}
	if _, err := os.Stat(filepath.Join(cache, "datasets--AIEnergyScore--text_generation", "refs")); err == nil {
		t.Error("a ref written for a commit revision")
	}
	ps, err := Build(Config{N: 2, Order: "interleaved", Dataset: spec}, Options{HFHubCache: cache})
	if err != nil || !reflect.DeepEqual(texts(ps), []string{"q1", "q2"}) {
		t.Fatalf("%v %v", texts(ps), err)
	}
}

func TestFetchFailures(t *testing.T) {
	spec := Spec{Source: "aienergyscore"}
	manual := "huggingface-cli download --repo-type dataset AIEnergyScore/text_generation --revision " + AIEnergyScoreRevision

	// Offline: no request, a hint to unset it or download elsewhere.
	s := hubtest.New(t)
	_, err := Fetch(context.Background(), spec, FetchOptions{HFHubCache: t.TempDir(), Client: &hub.Client{Endpoint: s.URL, Offline: true}})
	if !errors.Is(err, ErrDataset) || !errors.Is(err, hub.ErrOffline) || !strings.Contains(err.Error(), "AIEnergyScore/text_generation") ||
		!strings.Contains(errs.Hint(err), "unset HF_HUB_OFFLINE") || !strings.Contains(errs.Hint(err), manual) ||
		!strings.Contains(errs.Hint(err), "synthetic or jsonl dataset") {
		t.Errorf("offline: %v (hint %q)", err, errs.Hint(err))
	}
	if len(s.Requests()) != 0 {
		t.Errorf("offline made requests %v", s.Requests())
	}
	// Offline with the set cached is fine.
	cache := t.TempDir()
	writeFile(t, cache, "datasets--AIEnergyScore--text_generation/snapshots/"+AIEnergyScoreRevision+"/train.csv", "text\na\n")
	if _, err := Fetch(context.Background(), spec, FetchOptions{HFHubCache: cache, Client: &hub.Client{Endpoint: s.URL, Offline: true}}); err != nil {
		t.Errorf("offline with the set cached: %v", err)
	}

	// Server down.
	down := httptest.NewServer(nil)
	down.Close()
	_, err = Fetch(context.Background(), spec, FetchOptions{HFHubCache: t.TempDir(), Client: &hub.Client{Endpoint: down.URL}})
	if !errors.Is(err, hub.ErrUnreachable) || !strings.Contains(errs.Hint(err), "connect this machine") || !strings.Contains(errs.Hint(err), manual) {
		t.Errorf("server down: %v (hint %q)", err, errs.Hint(err))
	}

	// Gated: the HF_TOKEN hint.
	gated := hubtest.New(t, hubtest.Repo{Type: "dataset", ID: AIEnergyScoreName, SHA: AIEnergyScoreRevision, Gated: true, Token: "hf_a",
		Files: map[string][]byte{"train.csv": []byte("text\na\n")}})
	_, err = Fetch(context.Background(), spec, FetchOptions{HFHubCache: t.TempDir(), Client: &hub.Client{Endpoint: gated.URL}})
	if !errors.Is(err, hub.ErrUnauthorized) || !strings.Contains(errs.Hint(err), "set HF_TOKEN") {
		t.Errorf("gated: %v (hint %q)", err, errs.Hint(err))
	}

	// A revision the repository lacks.
	other := spec
	other.Revision = "v0"
	_, err = Fetch(context.Background(), other, FetchOptions{HFHubCache: t.TempDir(), Client: &hub.Client{Endpoint: gated.URL, Token: "hf_a"}})
	if !errors.Is(err, hub.ErrNotFound) || !strings.Contains(err.Error(), `no revision "v0"`) || !strings.Contains(errs.Hint(err), "revision") {
		t.Errorf("bad revision: %v (hint %q)", err, errs.Hint(err))
	}

	// Not a prompt source: nothing to do.
	if got, err := Fetch(context.Background(), Spec{Source: "synthetic"}, FetchOptions{Client: &hub.Client{Offline: true}}); got || err != nil {
		t.Errorf("synthetic: %v, %v", got, err)
	}
}

func TestPickSplit(t *testing.T) {
	for _, tc := range []struct {
		files []string
		split string
		want  []string
	}{
		{[]string{"README.md", "text_generation.csv"}, "train", []string{"text_generation.csv"}},
		{[]string{"train.csv", "test.csv", "dataset_infos.json"}, "train", []string{"train.csv"}},
		{[]string{"data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/validation-00000-of-00001.parquet"}, "validation",
			[]string{"data/validation-00000-of-00001.parquet"}},
		{[]string{"train/a.jsonl", "dev/b.jsonl"}, "validation", []string{"dev/b.jsonl"}},
		{[]string{"contest.csv", "latest.csv"}, "train", []string{"contest.csv", "latest.csv"}}, // "test" inside words is no split
		{[]string{".hidden/train.csv", "x.csv"}, "train", []string{"x.csv"}},
	} {
		got, err := pickSplit(tc.files, tc.split)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("pickSplit(%v, %s) = %v, %v; want %v", tc.files, tc.split, got, err, tc.want)
		}
	}
	if _, err := pickSplit([]string{"README.md", "model.bin"}, "train"); err == nil || !errors.Is(err, ErrDataset) {
		t.Errorf("no data files: %v", err)
	}
	if _, err := pickSplit([]string{"train.csv"}, "test"); err == nil || !strings.Contains(errs.Hint(err), "one of: train") {
		t.Errorf("missing split: %v", err)
	}
}

func TestHubFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"nocol.csv":     "id,title\n1,x\n",
		"bad.parquet":   "not parquet",
		"bad.json":      "[1, 2",
		"nofield.jsonl": `{"title":"x"}` + "\n",
	} {
		_, err := readHubFile(writeFile(t, dir, name, body), "")
		if !errors.Is(err, ErrDataset) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A JSON array file, with a provenance header skipped.
	recs, err := readHubFile(writeFile(t, dir, "a.json", `[{"_provenance":"x"},{"prompt":"a"},{"prompt":" "},{"question":"b"}]`), "")
	if err != nil || len(recs) != 2 || recs[1].prompt.Text != "b" {
		t.Errorf("json array: %+v %v", recs, err)
	}
	// An explicit field (the spec's) picks the column.
	recs, err = readHubFile(writeFile(t, dir, "f.csv", "prompt,body\nignored,used\n"), "body")
	if err != nil || len(recs) != 1 || recs[0].prompt.Text != "used" {
		t.Errorf("field: %+v %v", recs, err)
	}
}
