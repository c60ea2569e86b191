package dataset

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/hub"
)

// The AI Energy Score prompt set, pinned to the commit the Python original
// took its 1,000 prompts from (llem-inventory.md §8): split train, column
// text, apache-2.0.
const (
	AIEnergyScoreName     = "AIEnergyScore/text_generation"
	AIEnergyScoreRevision = "2dc92b2ee2cd9776a51ccf08c6c2ab04138370c3"
)

// HubRepo is the Hugging Face dataset repository of an aienergyscore
// spec at its revision: dataset.revision when set, else the pinned commit
// for the default name and "main" for any other name.
func (s Spec) HubRepo() hub.Repo {
	r := hub.Repo{Type: "dataset", ID: s.Name, Revision: s.Revision}
	if r.ID == "" {
		r.ID = AIEnergyScoreName
	}
	if r.Revision == "" {
		r.Revision = "main"
		if r.ID == AIEnergyScoreName {
			r.Revision = AIEnergyScoreRevision
		}
	}
	return r
}

func (s Spec) split() string {
	if s.Split == "" {
		return "train"
	}
	return s.Split
}

// manualHint is how to get a Hub dataset into the cache without llem.
func manualHint(r hub.Repo, cache string) string {
	return fmt.Sprintf("on a machine with access run `huggingface-cli download --repo-type dataset %s --revision %s` and copy its hub cache to %s; or use a synthetic or jsonl dataset",
		r.ID, r.Revision, cache)
}

// FetchOptions configure Fetch.
type FetchOptions struct {
	// HFHubCache overrides the Hugging Face hub cache directory.
	HFHubCache string
	// Progress receives download progress (a bar on a terminal, lines
	// otherwise); nil prints nothing.
	Progress io.Writer
	// Client overrides the Hub client (default hub.FromEnv()).
	Client *hub.Client
}

// Fetch makes sure the Hub dataset of an aienergyscore spec is in the hub
// cache with files for its split, downloading it when it is not; other
// sources need nothing. It reports whether it downloaded. Build then reads
// the cache only, so workers never touch the network.
func Fetch(ctx context.Context, s Spec, o FetchOptions) (bool, error) {
	if s.Source != "aienergyscore" {
		return false, nil
	}
	c := o.Client
	if c == nil {
		c = hub.FromEnv()
	}
	if o.HFHubCache != "" {
		cc := *c
		cc.Cache = o.HFHubCache
		c = &cc
	}
	if o.Progress != nil && c.Progress == nil {
		cc := *c
		cc.Progress = o.Progress
		c = &cc
	}
	r := s.HubRepo()
	if dir, ok := hub.Cached(c.Cache, r); ok {
		if files, err := snapshotFiles(dir); err == nil {
			if _, err := pickSplit(files, s.split()); err == nil {
				return false, nil
			}
		}
	}
	_, err := c.Download(ctx, r, func(files []string) ([]string, error) {
		return pickSplit(files, s.split())
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, err
		}
		if errors.Is(err, ErrDataset) { // the split is not in the repository
			return false, err
		}
		hint := manualHint(r, c.Cache)
		if h := errs.Hint(err); h != "" {
			hint = h + "; or " + hint
		}
		msg := err.Error()
		var he *hub.Error
		if errors.As(err, &he) {
			msg = he.Msg
		}
		return false, errs.WithHint(&fetchError{
			msg: fmt.Sprintf("%s: %s is not in the Hugging Face cache (%s) and was not downloaded: %s", ErrDataset, r, r.Dir(c.Cache), msg),
			err: err,
		}, hint)
	}
	return true, nil
}

// fetchError is a failed Fetch: errors.Is finds ErrDataset and the hub's
// error kinds.
type fetchError struct {
	msg string
	err error
}

func (e *fetchError) Error() string   { return e.msg }
func (e *fetchError) Unwrap() []error { return []error{ErrDataset, e.err} }

// aiEnergyScore reads a Hub prompt set (by default the AI Energy Score set
// at its pinned commit) from the Hugging Face cache, where Fetch, `llem
// eval`, huggingface-cli or the Python side put it. Parquet, CSV (header
// row), JSON Lines and JSON array files of the split are read in file-name
// order and row order, the prompt auto-detected as for JSONL (the set's
// prompts are in "text"); empty or whitespace-only prompts are skipped and
// the rest stripped, as the original took "the first 1,000 non-empty
// stripped rows".
func aiEnergyScore(d Spec, cache string) ([]record, error) {
	if cache == "" {
		cache = HubCacheDir()
	}
	r := d.HubRepo()
	dir, ok := hub.Cached(cache, r)
	if !ok {
		return nil, fail("`llem eval` downloads it before a study starts; or "+manualHint(r, cache),
			"%s is not in the Hugging Face cache (%s)", r, r.Dir(cache))
	}
	files, err := snapshotFiles(dir)
	if err != nil {
		return nil, fail("", "read %s: %v", dir, err)
	}
	picked, err := pickSplit(files, d.split())
	if err != nil {
		return nil, err
	}
	var recs []record
	for _, f := range picked {
		rs, err := readHubFile(filepath.Join(dir, filepath.FromSlash(f)), d.Field)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rs...)
	}
	if len(recs) == 0 {
		return nil, fail("", "the cached %s has no prompts in split %s (files: %s)", r, d.split(), strings.Join(picked, ", "))
	}
	return recs, nil
}

// snapshotFiles lists a snapshot's files (slash paths relative to it),
// leaving out hidden files and directories (downloads in progress).
func snapshotFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(e.Name(), ".") {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// dataExts are the file types read as prompt data.
var dataExts = []string{".parquet", ".csv", ".jsonl", ".json"}

// dataFile reports whether a repository file holds rows: a data type, not
// hidden, not the datasets library's metadata.
func dataFile(name string) bool {
	base := strings.ToLower(filepath.Base(name))
	if strings.HasPrefix(base, ".") || base == "dataset_info.json" || base == "dataset_infos.json" || base == "dataset_dict.json" || base == "state.json" {
		return false
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	return slices.Contains(dataExts, filepath.Ext(base))
}

// splitWords are the Hugging Face datasets library's default split
// keywords: a data file belongs to a split when its path holds one of them
// between separators ("train.csv", "data/train-00000-of-00001.parquet",
// "test/part0.jsonl").
var splitWords = map[string][]string{
	"train":      {"train", "training"},
	"validation": {"validation", "valid", "dev", "val"},
	"test":       {"test", "testing", "eval", "evaluation"},
}

func splitRE(words []string) *regexp.Regexp {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = regexp.QuoteMeta(strings.ToLower(w))
	}
	return regexp.MustCompile(`(^|[-._ 0-9/])(` + strings.Join(q, "|") + `)([-._ 0-9/]|$)`)
}

// pickSplit chooses the data files of a split, as the datasets library
// does without a loading script or configs: the files naming the split; if
// no file names any split, all data files are the train split.
func pickSplit(files []string, split string) ([]string, error) {
	var data []string
	for _, f := range files {
		if dataFile(f) {
			data = append(data, f)
		}
	}
	if len(data) == 0 {
		return nil, fail("use a dataset repository with .parquet, .csv, .jsonl or .json files",
			"no data files (%s) among: %s", strings.Join(dataExts, " "), strings.Join(files, ", "))
	}
	words, ok := splitWords[split]
	if !ok {
		words = []string{split}
	}
	var picked []string
	re := splitRE(words)
	for _, f := range data {
		if re.MatchString(strings.ToLower(f)) {
			picked = append(picked, f)
		}
	}
	if len(picked) > 0 {
		return picked, nil
	}
	var named []string
	for s, ws := range splitWords {
		re := splitRE(ws)
		if slices.ContainsFunc(data, func(f string) bool { return re.MatchString(strings.ToLower(f)) }) {
			named = append(named, s)
		}
	}
	if len(named) == 0 && split == "train" {
		return data, nil
	}
	slices.Sort(named)
	var hint string
	if len(named) > 0 {
		hint = "set dataset.split to one of: " + strings.Join(named, ", ")
	} else {
		hint = `leave dataset.split at "train": the files name no split`
	}
	return nil, fail(hint, "no data files of split %q among: %s", split, strings.Join(data, ", "))
}

// readHubFile reads one data file of a Hub dataset into records, in row
// order, skipping rows whose prompt is empty.
func readHubFile(path, field string) ([]record, error) {
	var rows []map[string]any
	var err error
	switch filepath.Ext(strings.ToLower(path)) {
	case ".parquet":
		rows, err = parquetRows(path)
	case ".csv":
		rows, err = csvRows(path)
	case ".jsonl", ".json":
		rows, err = jsonRows(path)
	default:
		return nil, fail("", "%s: not a data file", path)
	}
	if err != nil {
		return nil, err
	}
	var recs []record
	for i, row := range rows {
		r, ok, err := hubRecord(row, field)
		if err != nil {
			return nil, fmt.Errorf("%s row %d: %w", path, i+1, err)
		}
		if ok {
			recs = append(recs, r)
		}
	}
	return recs, nil
}

// hubRecord is recordOf for a table row, except that a row whose prompt
// column is there but empty (or null) is skipped (ok false), not an error.
func hubRecord(row map[string]any, field string) (record, bool, error) {
	cands := promptFields
	if field != "" {
		cands = []string{field}
	}
	present := false
	for _, f := range cands {
		v, ok := row[f]
		if !ok {
			continue
		}
		present = true
		if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
			r, err := recordOf(row, field)
			return r, err == nil, err
		}
	}
	if present {
		return record{}, false, nil
	}
	_, err := recordOf(row, field) // names the columns there are
	return record{}, false, err
}

// jsonRows reads JSON Lines, or a JSON array of objects, skipping objects
// with a "_"-prefixed key (a provenance header, as in readJSONL).
func jsonRows(path string) ([]map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail("", "read %s: %v", path, err)
	}
	var rows []map[string]any
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &rows); err != nil {
			return nil, fail("a .json data file is JSON Lines or one array of objects", "%s: %v", path, err)
		}
	} else {
		for i, line := range bytes.Split(data, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			var obj map[string]any
			if err := json.Unmarshal(line, &obj); err != nil || obj == nil {
				return nil, fail("each line must be one JSON object", "%s:%d: not a JSON object", path, i+1)
			}
			rows = append(rows, obj)
		}
	}
	return slices.DeleteFunc(rows, func(r map[string]any) bool {
		return slices.ContainsFunc(keys(r), func(k string) bool { return strings.HasPrefix(k, "_") })
	}), nil
}

// csvRows reads a CSV file whose first row names the columns. Every value
// is a string, except max_new_tokens/max_tokens, which are numbers (empty:
// absent).
func csvRows(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fail("", "read %s: %v", path, err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return nil, fail("a CSV data file starts with a header row", "%s: no header row: %v", path, err)
	}
	if len(head) > 0 {
		head[0] = strings.TrimPrefix(head[0], "\ufeff") // a UTF-8 byte order mark
	}
	var rows []map[string]any
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fail("", "%s: %v", path, err)
		}
		row := make(map[string]any, len(head))
		for i, v := range rec {
			if i >= len(head) {
				break
			}
			switch head[i] {
			case "max_new_tokens", "max_tokens":
				if v = strings.TrimSpace(v); v != "" {
					n, err := strconv.ParseFloat(v, 64)
					if err != nil {
						row[head[i]] = v // recordOf says it is not a number
					} else {
						row[head[i]] = n
					}
				}
			default:
				row[head[i]] = v
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// parquetRows reads a Parquet file's string and numeric columns (others,
// such as lists and structs, are left out of the rows).
func parquetRows(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fail("", "read %s: %v", path, err)
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fail("", "%s: not a readable Parquet file: %v", path, err)
	}
	defer tbl.Release()
	rows := make([]map[string]any, tbl.NumRows())
	for i := range rows {
		rows[i] = map[string]any{}
	}
	for c := range int(tbl.NumCols()) {
		col := tbl.Column(c)
		name := col.Name()
		row := 0
		for _, chunk := range col.Data().Chunks() {
			for i := range chunk.Len() {
				if v, ok := arrowValue(chunk, i); ok {
					rows[row][name] = v
				} else if chunk.IsNull(i) {
					rows[row][name] = nil
				}
				row++
			}
		}
	}
	return rows, nil
}

// arrowValue is a string or number cell as a Go value (numbers as float64,
// like encoding/json).
func arrowValue(a arrow.Array, i int) (any, bool) {
	if a.IsNull(i) {
		return nil, false
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), true
	case *array.LargeString:
		return a.Value(i), true
	case *array.StringView:
		return a.Value(i), true
	case *array.Dictionary:
		return arrowValue(a.Dictionary(), a.GetValueIndex(i))
	case *array.Int64:
		return float64(a.Value(i)), true
	case *array.Int32:
		return float64(a.Value(i)), true
	case *array.Int16:
		return float64(a.Value(i)), true
	case *array.Int8:
		return float64(a.Value(i)), true
	case *array.Uint64:
		return float64(a.Value(i)), true
	case *array.Uint32:
		return float64(a.Value(i)), true
	case *array.Float64:
		return a.Value(i), true
	case *array.Float32:
		return float64(a.Value(i)), true
	}
	return nil, false
}
