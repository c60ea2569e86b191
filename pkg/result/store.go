package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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
//
// A Store is the directory's only writer: Create and Open take the
// directory's lock (LockFile) and Close releases it. Per-slot transitions
// (UpdateEntry) append to the manifest's journal in O(1); whole-manifest
// changes (Update) rewrite the snapshot.
type Store struct {
	Dir string

	mu      sync.Mutex
	m       Manifest
	lock    *dirLock
	journal *journal
	snapLen int64 // size of the last manifest.json written
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
// suffix when that name is taken; nothing is ever overwritten), locked, with
// its first manifest and plan (when plan is not nil). The directory is
// assembled under a hidden name and renamed into place, so a study directory
// never exists without its manifest: a kill at any moment leaves either no
// study or one that --resume continues.
func Create(root string, m Manifest, now time.Time, plan ...any) (*Store, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create results directory: %w", err)
	}
	removeAbandonedCreates(root)
	tmp, err := os.MkdirTemp(root, creatingPrefix)
	if err != nil {
		return nil, fmt.Errorf("create study directory: %w", err)
	}
	// The plan and the manifest are written side by side: for large
	// studies each is seconds of encoding.
	planErr := make(chan error, 1)
	go func() {
		if len(plan) > 0 && plan[0] != nil {
			planErr <- (&Store{Dir: tmp}).WritePlan(plan[0])
			return
		}
		planErr <- nil
	}()
	s, err := CreateAt(tmp, m)
	if perr := <-planErr; err == nil {
		err = perr
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		os.RemoveAll(tmp)
		return nil, err
	}
	base := filepath.Join(root, studyDirName(m.Study, now))
	dir := base
	for i := 2; ; i++ {
		err := renameNoReplace(tmp, dir)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 10000 {
			s.Close()
			os.RemoveAll(tmp)
			return nil, fmt.Errorf("create study directory: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
	syncDir(root)
	s.Dir = dir
	return s, nil
}

// creatingPrefix names study directories still being assembled by Create.
const creatingPrefix = ".llem-creating-"

// maxNameLen keeps a study directory's name within every file system's
// 255-byte limit (with room for the time and a -N suffix).
const maxNameLen = 200

func studyDirName(study string, now time.Time) string {
	name := Slug(study)
	if len(name) > maxNameLen {
		name = strings.TrimRight(name[:maxNameLen], "-.")
	}
	return name + "-" + now.UTC().Format("20060102T150405Z")
}

// removeAbandonedCreates deletes directories that a Create killed before its
// rename left behind: they never held a study anyone saw. A directory whose
// lock is held belongs to a Create in progress and is left alone.
func removeAbandonedCreates(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), creatingPrefix) {
			continue
		}
		p := filepath.Join(root, e.Name())
		if held, _, err := LockState(p); err == nil && !held {
			os.RemoveAll(p)
		}
	}
}

// CreateAt starts a study execution in dir, which must not hold a manifest.
// It takes dir's lock; Close releases it.
func CreateAt(dir string, m Manifest) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		return nil, fmt.Errorf("create study in %s: it already holds a study (resume it instead)", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create study directory: %w", err)
	}
	lk, err := lockStudyDir(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
		lk.release()
		return nil, fmt.Errorf("create study in %s: it already holds a study (resume it instead)", dir)
	}
	s := &Store{Dir: dir, m: m, lock: lk}
	if s.m.SchemaVersion == "" {
		s.m.SchemaVersion = SchemaVersion
	}
	s.m.Recount()
	if err := s.writeManifestLocked(); err != nil {
		lk.release()
		return nil, err
	}
	return s, nil
}

// Open takes dir's lock and loads its manifest for resuming: the snapshot
// with the journal applied, folded into a fresh snapshot. Only the lock
// holder removes temp files a killed writer left behind — a reader doing so
// would delete a live writer's in-flight files.
func Open(dir string) (*Store, error) {
	if _, _, err := readManifest(dir); err != nil && !isBadJournal(err) {
		return nil, err
	}
	lk, err := lockStudyDir(dir)
	if err != nil {
		return nil, err
	}
	m, applied, err := readManifest(dir) // again, now that no one else writes
	if isBadJournal(err) {
		// The snapshot is sound; keep the journal's good lines, set the file
		// aside (never deleted) and let Repair adopt the verified records.
		m, applied, err = recoverJournal(dir)
	}
	if err != nil {
		lk.release()
		return nil, err
	}
	s := &Store{Dir: dir, m: m, lock: lk}
	removeStaleTemps(dir)
	if applied {
		if err := s.writeManifestLocked(); err != nil {
			lk.release()
			return nil, err
		}
	}
	return s, nil
}

func isBadJournal(err error) bool {
	var me *ManifestError
	return errors.As(err, &me) && me.Kind == BadJournal
}

// recoverJournal applies the journal's lines up to the first bad one over
// the snapshot and moves the journal aside to manifest.journal.bad-<time>.
func recoverJournal(dir string) (Manifest, bool, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, false, &ManifestError{Dir: dir, Kind: BadManifest, Err: err}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, &ManifestError{Dir: dir, Kind: BadManifest, Err: err}
	}
	applyJournalPrefix(dir, &m)
	m.Recount()
	src := filepath.Join(dir, JournalFile)
	if err := os.Rename(src, src+".bad-"+time.Now().UTC().Format("20060102T150405.000000000Z")); err != nil {
		return m, false, fmt.Errorf("set aside %s: %w", JournalFile, err)
	}
	return m, true, nil
}

// Close folds the journal into the snapshot and releases the lock. The
// Store must not be used afterwards.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.journal != nil {
		err = s.writeManifestLocked()
	}
	s.journal.close()
	s.journal = nil
	s.lock.release()
	s.lock = nil
	return err
}

// Manifest returns a copy of the current manifest. It copies every entry:
// use Entry or Counts in loops.
func (s *Store) Manifest() Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m
	m.Entries = append([]Entry(nil), s.m.Entries...)
	return m
}

// Entry returns entry pos of the manifest.
func (s *Store) Entry(pos int) Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Entries[pos]
}

// Counts returns the manifest's entry counts.
func (s *Store) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Counts
}

// Update applies fn to the manifest, recounts, stamps UpdatedAt and rewrites
// manifest.json atomically (folding in the journal). It costs O(entries):
// per-slot transitions use UpdateEntry. fn's change is kept in memory even
// when the write fails, so the next successful write carries it.
func (s *Store) Update(fn func(m *Manifest)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.m)
	s.m.Recount()
	s.m.UpdatedAt = time.Now().UTC()
	return s.writeManifestLocked()
}

// UpdateEntry applies fn to entry pos and makes the change durable by
// appending it to the journal: O(1) in the number of entries. When the
// journal has grown past the snapshot it is folded into a new snapshot,
// which keeps the cost amortised O(1).
func (s *Store) UpdateEntry(pos int, fn func(e *Entry)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Entries[pos].Status
	fn(&s.m.Entries[pos])
	s.m.Counts.move(old, s.m.Entries[pos].Status)
	now := time.Now().UTC()
	s.m.UpdatedAt = now
	if s.journal == nil {
		j, err := openJournal(s.Dir)
		if err != nil {
			return err
		}
		s.journal = j
	}
	if err := s.journal.append(journalLine{Pos: pos, Entry: s.m.Entries[pos], UpdatedAt: now}); err != nil {
		return err
	}
	if s.journal.bytes > max(s.snapLen, 1<<20) {
		return s.writeManifestLocked()
	}
	return nil
}

// writeManifestLocked writes the snapshot, then empties the journal: a kill
// between the two leaves a journal whose every line the snapshot already
// holds, and applying it again changes nothing.
func (s *Store) writeManifestLocked() error {
	b, err := encodeManifest(&s.m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ManifestFile, err)
	}
	if err := WriteFileAtomic(filepath.Join(s.Dir, ManifestFile), b); err != nil {
		return err
	}
	s.snapLen = int64(len(b))
	s.journal.close()
	s.journal = nil
	if err := os.Remove(filepath.Join(s.Dir, JournalFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fold %s into %s: %w", JournalFile, ManifestFile, err)
	}
	return nil
}

// WritePlan writes plan.json (the study's expanded plan, whatever shape its
// producer gives it): indented for people up to IndentLimit bytes, compact
// beyond, where indenting would double the size and the time of the
// study's start (a 100,000-run plan is ~70 MB compact). A plan that can
// stream itself (study.Plan) is streamed when it is that large.
func (s *Store) WritePlan(plan any) error {
	path := filepath.Join(s.Dir, PlanFile)
	if sp, ok := plan.(streamingJSON); ok && sp.JSONSizeHint() > IndentLimit {
		return writeFileAtomicFunc(path, func(w io.Writer) error {
			if err := sp.WriteJSON(w); err != nil {
				return err
			}
			_, err := w.Write([]byte{'\n'})
			return err
		})
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("encode %s: %w", PlanFile, err)
	}
	if len(b) <= IndentLimit {
		var ind bytes.Buffer
		if err := json.Indent(&ind, b, "", "  "); err != nil {
			return fmt.Errorf("encode %s: %w", PlanFile, err)
		}
		b = ind.Bytes()
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// streamingJSON is a value that writes its own compact JSON as a stream.
type streamingJSON interface {
	WriteJSON(io.Writer) error
	JSONSizeHint() int
}

// IndentLimit is the size up to which plan.json is indented.
const IndentLimit = 4 << 20

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

// ReadRecords reads the verified records of the study in dir, in executed
// order (StudyRecords, without the list of files it skipped).
func ReadRecords(dir string) ([]*Record, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	recs, _, err := StudyRecords(dir, m)
	return recs, err
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
	return writeFileAtomicFunc(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileAtomicFunc is WriteFileAtomic with the content streamed by write.
func writeFileAtomicFunc(path string, write func(io.Writer) error) error {
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
	if err := write(f); err != nil {
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
	syncDir(dir)
	return nil
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
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

// encodeManifest writes the manifest's header indented and each entry
// compact on a line of its own: still one JSON document that reads well and
// greps by run, at a third of the size and cost of indenting every field
// (100,000 runs × 3 cycles are 300,000 entries).
func encodeManifest(m *Manifest) ([]byte, error) {
	head := *m
	head.Entries = nil
	hb, err := json.MarshalIndent(&head, "", "  ")
	if err != nil {
		return nil, err
	}
	const tail = "\"entries\": null\n}"
	if !bytes.HasSuffix(hb, []byte(tail)) {
		return nil, fmt.Errorf("manifest header does not end with its entries")
	}
	var buf bytes.Buffer
	buf.Grow(len(hb) + len(m.Entries)*256)
	buf.Write(hb[:len(hb)-len(tail)])
	buf.WriteString("\"entries\": [")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range m.Entries {
		if i > 0 {
			buf.Truncate(buf.Len() - 1) // the encoder's newline
			buf.WriteByte(',')
		}
		buf.WriteString("\n    ")
		if err := enc.Encode(&m.Entries[i]); err != nil {
			return nil, err
		}
	}
	if len(m.Entries) > 0 {
		buf.Truncate(buf.Len() - 1)
		buf.WriteString("\n  ")
	}
	buf.WriteString("]\n}\n")
	return buf.Bytes(), nil
}

// renameReserve is renameNoReplace where the kernel cannot refuse to
// replace: reserve new with mkdir (which fails when it exists), then
// rename over that empty directory.
func renameReserve(old, new string) error {
	if err := os.Mkdir(new, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	return os.Rename(old, new)
}
