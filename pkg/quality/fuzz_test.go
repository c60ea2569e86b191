package quality

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/pkg/study"
)

// FuzzParseResults: any bytes parse or fail cleanly, and a parsed file's
// tasks and score are finite with weights as given.
func FuzzParseResults(f *testing.F) {
	for _, n := range []string{"results_2025-01-21T00-40-03.356274.json", "cpu_regression_expected.json"} {
		b, err := readFixtureF(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"results":{"t":{"acc,none":"N/A","acc_stderr,none":1e400}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResults(data)
		if err != nil {
			return
		}
		names := sortedKeys(r.Results)
		if len(names) == 0 {
			return
		}
		q := &study.Quality{Tasks: names}
		tasks, err := Tasks(r, q)
		if err != nil {
			t.Fatalf("a reported task must be found: %v", err)
		}
		if s, _, ok := Score(tasks); ok && (s != s) {
			t.Fatalf("NaN score from %q", data)
		}
	})
}

func readFixtureF(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", "lm-eval-results", name))
}
