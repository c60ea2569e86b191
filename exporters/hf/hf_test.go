package hf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/exporters/hf"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/pkg/result"
)

func export(t *testing.T) (string, *result.Study) {
	t.Helper()
	dir, _, err := exportertest.WriteStudy(t.TempDir(), exportertest.Spec{Study: "hf-test", Runs: 2, Cycles: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	s, err := result.LoadStudy(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "dataset")
	e, err := hf.New(exporters.Params{Dest: out})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	return out, s
}

// The datasets library's own dtype strings map to these DuckDB types.
var duck = map[string]string{"string": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
	"timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE"}

func TestHuggingFaceMetadataMatchesColumns(t *testing.T) {
	out, s := export(t)
	got := exportertest.ReadParquet(t, filepath.Join(out, "data", "train-00000-of-00001.parquet"), "")
	if got.DuckDB.Count != len(s.Records) || got.Hyparquet.NumRows != len(s.Records) {
		t.Fatalf("rows %d/%d, want %d", got.DuckDB.Count, got.Hyparquet.NumRows, len(s.Records))
	}
	if got.DuckDB.HuggingFace == nil || got.Hyparquet.KV["huggingface"] != *got.DuckDB.HuggingFace {
		t.Fatalf("huggingface metadata missing or differs between readers")
	}
	var meta struct {
		Info struct {
			Features json.RawMessage `json:"features"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(*got.DuckDB.HuggingFace), &meta); err != nil {
		t.Fatalf("huggingface metadata is not JSON: %v", err)
	}
	// Decode preserving key order, as datasets' Features(dict) does.
	dec := json.NewDecoder(strings.NewReader(string(meta.Info.Features)))
	dec.Token() // {
	var names []string
	for dec.More() {
		tok, _ := dec.Token()
		name := tok.(string)
		var f map[string]any
		if err := dec.Decode(&f); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
		switch f["_type"] {
		case "Value":
			dt, _ := f["dtype"].(string)
			if got.DuckDB.Types[name] != duck[dt] {
				t.Errorf("feature %s dtype %q, but the file column is %s", name, dt, got.DuckDB.Types[name])
			}
			if len(f) != 2 {
				t.Errorf("feature %s has extra keys: %v", name, f)
			}
		case "Sequence":
			// The form datasets 3.x and 4.x both read (hf.Features).
			inner, _ := f["feature"].(map[string]any)
			if f["length"] != -1.0 || inner["_type"] != "Value" || inner["dtype"] != "string" || got.DuckDB.Types[name] != "VARCHAR[]" {
				t.Errorf("list feature %s = %v, column %s", name, f, got.DuckDB.Types[name])
			}
		default:
			t.Errorf("feature %s: unexpected _type %v", name, f["_type"])
		}
	}
	if strings.Join(names, ",") != strings.Join(got.Hyparquet.Columns, ",") {
		t.Errorf("features (%d) are not the file's columns (%d) in order", len(names), len(got.Hyparquet.Columns))
	}
}

func TestDatasetCard(t *testing.T) {
	out, s := export(t)
	b, err := os.ReadFile(filepath.Join(out, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.HasPrefix(text, "---\n") {
		t.Fatal("card has no YAML header")
	}
	header, body, ok := strings.Cut(text[4:], "\n---\n")
	if !ok {
		t.Fatal("YAML header not closed")
	}
	var card struct {
		License string `yaml:"license"`
		Configs []struct {
			ConfigName string `yaml:"config_name"`
			DataFiles  []struct {
				Split string `yaml:"split"`
				Path  string `yaml:"path"`
			} `yaml:"data_files"`
		} `yaml:"configs"`
		DatasetInfos []struct {
			ConfigName string `yaml:"config_name"`
			Features   []struct {
				Name     string `yaml:"name"`
				Dtype    string `yaml:"dtype"`
				Sequence string `yaml:"sequence"`
			} `yaml:"features"`
			Splits []struct {
				Name        string `yaml:"name"`
				NumBytes    int64  `yaml:"num_bytes"`
				NumExamples int    `yaml:"num_examples"`
			} `yaml:"splits"`
			DownloadSize int64 `yaml:"download_size"`
			DatasetSize  int64 `yaml:"dataset_size"`
		} `yaml:"dataset_info"`
	}
	if err := yaml.Unmarshal([]byte(header), &card); err != nil {
		t.Fatalf("YAML header: %v\n%s", err, header)
	}
	if card.License != hf.DefaultLicense || len(card.Configs) != 2 || card.Configs[0].ConfigName != "default" ||
		card.Configs[0].DataFiles[0].Split != "train" || card.Configs[0].DataFiles[0].Path != "data/train-*" ||
		card.Configs[1].ConfigName != "runs" || card.Configs[1].DataFiles[0].Path != "runs/train-*" || len(card.DatasetInfos) != 2 {
		t.Fatalf("card configs = %+v", card)
	}
	info := card.DatasetInfos[0]
	cols := pq.ColumnsFor(s.Records)
	if len(info.Features) != len(cols) {
		t.Fatalf("%d card features, want %d", len(info.Features), len(cols))
	}
	for i, c := range cols {
		f := info.Features[i]
		want := hf.Dtype(c.Kind)
		if c.Kind == pq.StringList {
			if f.Sequence != "string" {
				t.Errorf("card feature %s: sequence %q", c.Name, f.Sequence)
			}
			continue
		}
		if f.Name != c.Name || f.Dtype != want {
			t.Errorf("card feature %d = %+v, want %s %s", i, f, c.Name, want)
		}
	}
	st, _ := os.Stat(filepath.Join(out, filepath.FromSlash(hf.DataFile)))
	if info.Splits[0].NumExamples != len(s.Records) || info.DownloadSize != st.Size() || info.Splits[0].NumBytes <= 0 || info.DatasetSize != info.Splits[0].NumBytes {
		t.Errorf("splits/size = %+v / %d / %d, want %d / %d", info.Splits, info.DownloadSize, info.DatasetSize, len(s.Records), st.Size())
	}
	if runs := card.DatasetInfos[1]; runs.ConfigName != "runs" || runs.Splits[0].NumExamples != countRuns(s) || runs.Splits[0].NumBytes <= 0 {
		t.Errorf("runs config info = %+v", runs)
	}
	for _, want := range []string{"## Methodology", "bootstrap confidence intervals of the mean, 10000 resamples, seed 42; method: ", "## Hardware and software", "cpu: package-0", "## Licence", "| study | run | coordinates |"} {
		if !strings.Contains(body, want) {
			t.Errorf("card prose lacks %q", want)
		}
	}
}

func TestNeedsOutDir(t *testing.T) {
	if _, err := hf.New(exporters.Params{}); err == nil {
		t.Error("hf exporter accepted stdout")
	}
}

// TestCardBackendVersionsSorted: a backend's versions are listed in key
// order, so every record of one backend gives the same line (map order
// listed it once per permutation).
func TestCardBackendVersionsSorted(t *testing.T) {
	var recs []*result.Record
	for range 20 {
		recs = append(recs, &result.Record{RunID: "r", Backend: "native", Status: result.StatusOK,
			Worker: &result.WorkerInfo{Versions: map[string]string{"llem": "1", "go": "go1", "commit": "abc"}}})
	}
	card := string(hf.Card(exporters.NewSet(&result.Study{Dir: "d", Records: recs}), nil, nil, nil, hf.DefaultLicense))
	if !strings.Contains(card, "- Backends: native commit=abc go=go1 llem=1\n") {
		t.Errorf("card backends line:\n%s", card)
	}
}

func countRuns(s *result.Study) int {
	ids := map[string]bool{}
	for _, r := range s.Records {
		ids[r.RunID] = true
	}
	return len(ids)
}

// TestCardIdenticalAcrossExports: ten exports of one study give the same
// card, byte for byte, and the same data files.
func TestCardIdenticalAcrossExports(t *testing.T) {
	_, s := export(t)
	var first [][]byte
	for i := range 10 {
		out := filepath.Join(t.TempDir(), "hf")
		e, _ := hf.New(exporters.Params{Dest: out})
		if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
			t.Fatal(err)
		}
		var files [][]byte
		for _, f := range []string{"README.md", hf.DataFile, hf.RunsFile} {
			b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(f)))
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, b)
		}
		if i == 0 {
			first = files
			continue
		}
		for k, f := range []string{"README.md", hf.DataFile, hf.RunsFile} {
			if !bytes.Equal(files[k], first[k]) {
				t.Fatalf("export %d: %s differs from the first export's", i+1, f)
			}
		}
	}
}
