package exportertest

import (
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

//go:embed testdata/read_parquet.mjs
var readScript []byte

// Readers is what testdata/read_parquet.mjs reports.
type Readers struct {
	Hyparquet struct {
		NumRows int               `json:"num_rows"`
		Columns []string          `json:"columns"`
		KV      map[string]string `json:"kv"`
		Rows    []map[string]any  `json:"rows"`
	} `json:"hyparquet"`
	DuckDB struct {
		Count       int               `json:"count"`
		Types       map[string]string `json:"types"`
		HuggingFace *string           `json:"huggingface"`
		Query       []map[string]any  `json:"query"`
	} `json:"duckdb"`
}

// ReadersDir finds tools/parquet-readers with node_modules (env
// LLEM_PARQUET_READERS, else the repo path). Without them it skips, except
// under CI (env CI set), where make deps must have installed them.
func ReadersDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LLEM_PARQUET_READERS")
	if dir == "" {
		_, here, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(here), "..", "..", "tools", "parquet-readers")
	}
	_, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api"))
	_, nodeErr := exec.LookPath("node")
	if err != nil || nodeErr != nil {
		msg := "independent Parquet readers unavailable (need node and " + dir + "/node_modules: run make deps)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// ReadParquet reads file with hyparquet and DuckDB under node; sql (may be
// empty) is run by DuckDB over view t.
func ReadParquet(t testing.TB, file, sql string) Readers {
	t.Helper()
	dir := ReadersDir(t)
	script := filepath.Join(t.TempDir(), "read_parquet.mjs")
	if err := os.WriteFile(script, readScript, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{script, dir, file}
	if sql != "" {
		args = append(args, sql)
	}
	out, err := exec.Command("node", args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node readers: %v\n%s", err, stderr)
	}
	var r Readers
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node readers output: %v\n%.500s", err, out)
	}
	return r
}
