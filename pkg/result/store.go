package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Files of a study directory. The layout is documented in
// docs/results-layout.md.
const (
	PlanFile     = "plan.json"
	ManifestFile = "manifest.json"
	SummaryFile  = "summary.json"
	RecordsDir   = "records"
	SeriesDir    = "timeseries"
	WorkDir      = "work" // per-run exchange directories (worker stderr, spec)
)

// Store is one study execution's directory. Its methods are safe for
// concurrent use; every file it writes is written atomically (temp file in
// the same directory, fsync, rename, fsync of the directory), so a crash or
// kill -9 at any instant leaves each file either absent, old or new — never
// torn.
type Store struct {
	Dir string

	mu sync.Mutex
	m  Manifest
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Slug makes s safe as one path element.
func Slug(s string) string {
	s = strings.Trim(unsafeName.ReplaceAllString(s, "-"), "-.")
	if s == "" {
		return "study"
	}
	return s
}

// Create makes a new study directory root/<study>-<UTC time> (with a -2, -3
// suffix when that name is taken; nothing is ever overwritten) and writes its
// first manifest.
func Create(root string, m Manifest, now time.Time) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create results directory: %w", err)
	}
	base := filepath.Join(root, Slug(m.Study)+"-"+now.UTC().Format("20060102T150405Z"))
	dir := base
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create study directory: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	return CreateAt(dir, m)
}

// CreateAt starts a study execution in dir, which must not hold a manifest.
func CreateAt(dir string, m Manifest) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return nil, fmt.Errorf("create study in %s: it already holds a study (resume it instead)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create study directory: %w", err)
	}
	s := &Store{Dir: dir, m: m}
	if s.m.SchemaVersion == "" {
		s.m.SchemaVersion = SchemaVersion
	}
	s.m.Recount()
	if err := s.writeManifestLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Open loads an existing study directory for resuming.
func Open(dir string) (*Store, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open study %s: no %s (not a study directory, or it was never started)", dir, ManifestFile)
		}
		return nil, fmt.Errorf("open study: %w", err)
	}
	s := &Store{Dir: dir}
	if err := json.Unmarshal(b, &s.m); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	removeStaleTemps(dir)
	return s, nil
}

// Manifest returns a copy of the current manifest.
func (s *Store) Manifest() Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m
	m.Entries = append([]Entry(nil), s.m.Entries...)
	return m
}

// Update applies fn to the manifest, recounts, stamps UpdatedAt and rewrites
// manifest.json atomically. fn's change is kept in memory even when the write
// fails, so the next successful write carries it.
func (s *Store) Update(fn func(m *Manifest)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.m)
	s.m.Recount()
	s.m.UpdatedAt = time.Now().UTC()
	return s.writeManifestLocked()
}

func (s *Store) writeManifestLocked() error {
	return WriteJSON(filepath.Join(s.Dir, ManifestFile), &s.m)
}

// WritePlan writes plan.json (the study's expanded plan, whatever shape its
// producer gives it).
func (s *Store) WritePlan(plan any) error { return WriteJSON(filepath.Join(s.Dir, PlanFile), plan) }

// RecordPath is the record file of a run × cycle, relative to the study
// directory. It is fixed, so a retried run×cycle replaces its record rather
// than adding a second one.
func RecordPath(runID string, cycle int) string {
	return filepath.ToSlash(filepath.Join(RecordsDir, Slug(runID), fmt.Sprintf("cycle-%d.json", cycle)))
}

// TimeseriesPath is the timeseries Parquet of a run × cycle, relative.
func TimeseriesPath(runID string, cycle int) string {
	return filepath.ToSlash(filepath.Join(SeriesDir, Slug(runID), fmt.Sprintf("cycle-%d.parquet", cycle)))
}

// WorkPath is the per-run exchange directory, absolute.
func (s *Store) WorkPath(runID string, cycle int) string {
	return filepath.Join(s.Dir, WorkDir, Slug(runID), fmt.Sprintf("cycle-%d", cycle))
}

// WriteRecord writes r to its RecordPath and returns that path.
func (s *Store) WriteRecord(r *Record) (string, error) {
	rel := RecordPath(r.RunID, r.Cycle)
	if err := WriteJSON(filepath.Join(s.Dir, rel), r); err != nil {
		return "", err
	}
	return rel, nil
}

// ReadRecord reads a record by its path relative to the study directory.
func (s *Store) ReadRecord(rel string) (*Record, error) {
	return ReadRecordFile(filepath.Join(s.Dir, rel))
}

// ReadRecordFile reads one record file.
func ReadRecordFile(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read record %s: %w", path, err)
	}
	return &r, nil
}

// Records reads every record file of the study directory, in manifest order
// when a manifest exists (records not in it follow, by path).
func (s *Store) Records() ([]*Record, error) { return ReadRecords(s.Dir) }

// ReadRecords reads every record under dir/records, ordered by position.
func ReadRecords(dir string) ([]*Record, error) {
	var paths []string
	err := filepath.WalkDir(filepath.Join(dir, RecordsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list records: %w", err)
	}
	recs := make([]*Record, 0, len(paths))
	for _, p := range paths {
		r, err := ReadRecordFile(p)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Position < recs[j].Position })
	return recs, nil
}

// WriteSummary writes summary.json.
func (s *Store) WriteSummary(sum *Summary) error {
	return WriteJSON(filepath.Join(s.Dir, SummaryFile), sum)
}

// ReadSummary reads dir/summary.json.
func ReadSummary(dir string) (*Summary, error) {
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	if err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	var sum Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		return nil, fmt.Errorf("read summary: %w", err)
	}
	return &sum, nil
}

// WriteJSON encodes v (indented) and writes it atomically to path.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// TestHookBeforeRename, when set, runs after a temp file is synced and
// before it is renamed into place. Kill tests set it to kill the process in
// the middle of a manifest write; nothing else may.
var TestHookBeforeRename func(path string)

// WriteFileAtomic writes data to path so that readers (and a crash at any
// moment) see either the old file or the complete new one: write a temp file
// in the same directory, fsync it, rename it over path, fsync the directory.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if TestHookBeforeRename != nil {
		TestHookBeforeRename(path)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeStaleTemps deletes temp files a killed writer left behind; they are
// never the real file (the rename did not happen), so nothing is lost.
func removeStaleTemps(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			os.Remove(p)
		}
		return nil
	})
}
