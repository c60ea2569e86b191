package result

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// JournalFile is the manifest's append-only journal. manifest.json is a
// snapshot; every per-slot transition since the snapshot is one line here
// (the entry's whole new state), so a checkpoint costs one small append and
// fsync however many runs the study has, instead of rewriting the whole
// manifest. Readers apply the journal over the snapshot. The writer folds
// it into a new snapshot (compaction) when it opens the directory, when it
// outgrows the snapshot, and at the end of every session.
const JournalFile = "manifest.journal"

// journalLine is one transition: entry Pos becomes Entry.
type journalLine struct {
	Pos       int       `json:"pos"`
	Entry     Entry     `json:"entry"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ManifestError says why a study directory's manifest cannot be read.
type ManifestError struct {
	Dir  string
	Kind ManifestErrorKind
	Err  error
}

// ManifestErrorKind classifies a ManifestError.
type ManifestErrorKind int

// Kinds of ManifestError.
const (
	NoDirectory  ManifestErrorKind = iota // the path does not exist
	NotDirectory                          // the path is a file
	NoManifest                            // a directory without manifest.json
	BadManifest                           // manifest.json is unreadable or corrupt
	BadJournal                            // manifest.json is sound, a line of manifest.journal is not
)

func (e *ManifestError) Error() string {
	switch e.Kind {
	case NoDirectory:
		return fmt.Sprintf("%s does not exist", e.Dir)
	case NotDirectory:
		return fmt.Sprintf("%s is a file, not a study directory", e.Dir)
	case NoManifest:
		return fmt.Sprintf("%s is not a study directory (no %s)", e.Dir, ManifestFile)
	}
	return fmt.Sprintf("%s: the study's manifest is damaged: %v", e.Dir, e.Err)
}

func (e *ManifestError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *ManifestError) Hint() string {
	switch e.Kind {
	case NoDirectory, NotDirectory, NoManifest:
		return "pass a directory made by llem eval (llem results ls lists them)"
	case BadJournal:
		return "llem eval STUDY.cue --resume " + e.Dir + " repairs it: it keeps the journal's good lines, sets the bad ones aside, adopts every verified record and re-runs the rest"
	}
	return "the records under records/ are intact; restore manifest.json from a backup, or start the study again in a new directory"
}

// ReadManifest reads dir's manifest as of now: the snapshot with the journal
// applied. It writes, removes and locks nothing, so it is safe while a
// writer works in dir.
func ReadManifest(dir string) (Manifest, error) {
	m, _, err := readManifest(dir)
	return m, err
}

// readManifest returns the manifest and whether a journal was applied.
func readManifest(dir string) (Manifest, bool, error) {
	var m Manifest
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return m, false, &ManifestError{Dir: dir, Kind: NoDirectory, Err: err}
	case err != nil:
		return m, false, &ManifestError{Dir: dir, Kind: BadManifest, Err: err}
	case !st.IsDir():
		return m, false, &ManifestError{Dir: dir, Kind: NotDirectory}
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, &ManifestError{Dir: dir, Kind: NoManifest, Err: err}
	}
	if err != nil {
		return m, false, &ManifestError{Dir: dir, Kind: BadManifest, Err: err}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, &ManifestError{Dir: dir, Kind: BadManifest, Err: fmt.Errorf("%s: %w", ManifestFile, err)}
	}
	if m.Study == "" && m.StartedAt.IsZero() && m.Entries == nil {
		return m, false, &ManifestError{Dir: dir, Kind: BadManifest, Err: fmt.Errorf("%s holds no study", ManifestFile)}
	}
	applied, err := applyJournal(dir, &m)
	if err != nil {
		return m, false, &ManifestError{Dir: dir, Kind: BadJournal, Err: err}
	}
	m.Recount()
	return m, applied, nil
}

// applyJournal applies dir's journal to m. A torn last line (a writer killed
// mid-append) is ignored: its transition never completed. Any other bad
// line is corruption.
func applyJournal(dir string, m *Manifest) (bool, error) {
	f, err := os.Open(filepath.Join(dir, JournalFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<16)
	applied := false
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return applied, nil // a line without its newline was torn
		}
		if err != nil {
			return applied, fmt.Errorf("%s: %w", JournalFile, err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var jl journalLine
		if err := json.Unmarshal(line, &jl); err != nil {
			return applied, fmt.Errorf("%s line %d: %w", JournalFile, n, err)
		}
		if jl.Pos < 0 || jl.Pos >= len(m.Entries) {
			return applied, fmt.Errorf("%s line %d: entry %d out of range (the manifest has %d)", JournalFile, n, jl.Pos, len(m.Entries))
		}
		m.Entries[jl.Pos] = jl.Entry
		if jl.UpdatedAt.After(m.UpdatedAt) {
			m.UpdatedAt = jl.UpdatedAt
		}
		applied = true
	}
}

// applyJournalPrefix applies dir's journal lines up to the first bad one.
func applyJournalPrefix(dir string, m *Manifest) {
	b, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil {
		return
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var jl journalLine
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if json.Unmarshal(line, &jl) != nil || jl.Pos < 0 || jl.Pos >= len(m.Entries) {
			return
		}
		m.Entries[jl.Pos] = jl.Entry
	}
}

// TestHookMidAppend, when set, runs in the middle of writing a journal
// line. Kill tests set it to die mid-append; nothing else may.
var TestHookMidAppend func(path string)

// journal is the writer's open journal.
type journal struct {
	f     *os.File
	bytes int64
	buf   []byte
}

func openJournal(dir string) (*journal, error) {
	f, err := os.OpenFile(filepath.Join(dir, JournalFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", JournalFile, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &journal{f: f, bytes: st.Size()}, nil
}

// append writes one transition and fsyncs it.
func (j *journal) append(jl journalLine) error {
	b, err := json.Marshal(jl)
	if err != nil {
		return err
	}
	j.buf = append(append(j.buf[:0], b...), '\n')
	buf := j.buf
	if TestHookMidAppend != nil {
		// Write half the line first, so a kill in the hook leaves the torn
		// last line a real crash mid-append would.
		half := len(buf) / 2
		if _, err := j.f.Write(buf[:half]); err != nil {
			j.f.Truncate(j.bytes)
			return fmt.Errorf("append to %s: %w", JournalFile, err)
		}
		TestHookMidAppend(filepath.Join(filepath.Dir(j.f.Name()), JournalFile))
		buf = buf[half:]
	}
	if _, err := j.f.Write(buf); err != nil {
		// A short write (disk full) must not leave a fragment that the next
		// line would be glued to: cut back to the last whole line.
		j.f.Truncate(j.bytes)
		return fmt.Errorf("append to %s: %w", JournalFile, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", JournalFile, err)
	}
	j.bytes += int64(len(j.buf))
	return nil
}

func (j *journal) close() error {
	if j == nil || j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
