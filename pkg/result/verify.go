package result

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// RecordProblem is a record file that is not a trustworthy part of its
// study: missing, unreadable, or not the record the manifest says it is.
// Readers skip such files and say so; a resume re-runs the slot.
type RecordProblem struct {
	Path   string `json:"path" doc:"relative to the study directory"`
	Pos    int    `json:"position" doc:"manifest entry, -1 for a file no entry names"`
	Kind   string `json:"kind" doc:"missing, corrupt, foreign or stray"`
	Detail string `json:"detail"`
}

// Kinds of RecordProblem.
const (
	RecordMissing = "missing" // the manifest names it, the file is gone
	RecordCorrupt = "corrupt" // not a parseable record object
	RecordForeign = "foreign" // a record of another study, run, cycle or slot
	RecordStray   = "stray"   // a file under records/ that no entry names
)

func (p RecordProblem) String() string {
	return fmt.Sprintf("%s: %s record: %s", p.Path, p.Kind, p.Detail)
}

// StudyRecords reads the records that m's finished entries name, in
// executed order, verifying that each belongs where the manifest puts it:
// its study and design hash, run ID, cycle, position, path and status. A
// file that fails is not returned but listed among the problems, as is any
// file under records/ that no entry names (another study's record copied
// in, say): nothing foreign is ever merged into a study's results.
func StudyRecords(dir string, m Manifest) ([]*Record, []RecordProblem, error) {
	var recs []*Record
	var probs []RecordProblem
	named := map[string]bool{}
	for pos, e := range m.Entries {
		if e.Record == "" || (e.Status != EntryDone && e.Status != EntryFailed) {
			continue
		}
		named[filepath.ToSlash(e.Record)] = true
		r, p := verifyRecord(dir, m, pos, e)
		if p != nil {
			probs = append(probs, *p)
			continue
		}
		recs = append(recs, r)
	}
	for _, e := range m.Quality { // a run's quality record and lm-eval's file beside it
		named[QualityPath(e.RunID, e.Cycle)] = true
		named[LMEvalResultsPath(e.RunID, e.Cycle)] = true
	}
	stray, err := strayRecords(dir, named)
	if err != nil {
		return nil, nil, err
	}
	probs = append(probs, stray...)
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Position < recs[j].Position })
	return recs, probs, nil
}

func verifyRecord(dir string, m Manifest, pos int, e Entry) (*Record, *RecordProblem) {
	prob := func(kind, format string, a ...any) (*Record, *RecordProblem) {
		return nil, &RecordProblem{Path: e.Record, Pos: pos, Kind: kind, Detail: fmt.Sprintf(format, a...)}
	}
	if want := RecordPath(e.RunID, e.Cycle); filepath.ToSlash(e.Record) != want {
		return prob(RecordForeign, "the manifest names %s for run %s cycle %d, whose record is %s", e.Record, e.RunID, e.Cycle, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Record)))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return prob(RecordMissing, "entry %d (run %s cycle %d) is %s but its record file is gone", pos, e.RunID, e.Cycle, e.Status)
	}
	if err != nil {
		return prob(RecordCorrupt, "%v", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return prob(RecordCorrupt, "not a JSON object")
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return prob(RecordCorrupt, "%v", err)
	}
	switch {
	case !strings.HasPrefix(r.SchemaVersion, "3."):
		return prob(RecordCorrupt, "schema_version %q, want 3.x", r.SchemaVersion)
	case r.Study != m.Study:
		return prob(RecordForeign, "it is a record of study %q, not %q", r.Study, m.Study)
	case m.StudyHash != "" && r.StudyHash != m.StudyHash:
		return prob(RecordForeign, "its study design %s is not this study's %s", r.StudyHash, m.StudyHash)
	case r.RunID != e.RunID || r.Cycle != e.Cycle:
		return prob(RecordForeign, "it holds run %s cycle %d, not run %s cycle %d", r.RunID, r.Cycle, e.RunID, e.Cycle)
	case r.Position != e.Position:
		return prob(RecordForeign, "it was measured at position %d, the manifest's entry is at %d", r.Position, e.Position)
	case (e.Status == EntryDone) != (r.Status == StatusOK):
		return prob(RecordForeign, "its status %s disagrees with the manifest's %s", r.Status, e.Status)
	}
	return &r, nil
}

// strayRecords lists the .json files under records/ that no entry names.
func strayRecords(dir string, named map[string]bool) ([]RecordProblem, error) {
	var out []RecordProblem
	err := filepath.WalkDir(filepath.Join(dir, RecordsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".json") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !named[rel] {
			out = append(out, RecordProblem{Path: rel, Pos: -1, Kind: RecordStray, Detail: "no manifest entry names this file; it is not part of the study and is ignored"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	return out, nil
}

// Repair makes the manifest agree with the verified records. Every
// finished entry whose record is missing, corrupt or foreign goes back to
// pending (so the next session re-runs it), and a bad file is moved aside to
// <name>.bad-<UTC time> — kept for inspection, never deleted, and no longer
// read as a record. A pending entry whose record file is there and verifies
// (a session killed between writing the record and marking the slot done,
// or a journal line lost) adopts it instead of measuring again. Entries left
// running by a killed session go back to pending. It returns what it found.
func (s *Store) Repair() ([]RecordProblem, error) {
	if err := s.clearBlockers(); err != nil {
		return nil, err
	}
	m := s.Manifest()
	var found []RecordProblem
	for pos, e := range m.Entries {
		switch e.Status {
		case EntryRunning, EntryPending:
			if err := s.adoptOrReset(m, pos, e); err != nil {
				return found, err
			}
			continue
		case EntryDone, EntryFailed:
		default:
			continue
		}
		var p *RecordProblem
		if e.Record == "" {
			p = &RecordProblem{Pos: pos, Kind: RecordMissing, Detail: fmt.Sprintf("entry %d (run %s cycle %d) is %s but names no record", pos, e.RunID, e.Cycle, e.Status)}
		} else if _, p = verifyRecord(s.Dir, m, pos, e); p == nil {
			continue
		} else if p.Kind != RecordMissing {
			if err := setAside(filepath.Join(s.Dir, filepath.FromSlash(RecordPath(e.RunID, e.Cycle)))); err != nil {
				return found, err
			}
		}
		found = append(found, *p)
		if err := s.UpdateEntry(pos, func(e *Entry) {
			e.Status, e.Record, e.StartedAt, e.EndedAt = EntryPending, "", nil, nil
			e.Error = "re-run: " + p.Detail
		}); err != nil {
			return found, err
		}
	}
	return found, nil
}

// adoptOrReset handles an unfinished entry: a verified record at its path
// makes it finished; a file there that does not verify is set aside, and
// the entry is (back to) pending.
func (s *Store) adoptOrReset(m Manifest, pos int, e Entry) error {
	rel := RecordPath(e.RunID, e.Cycle)
	full := filepath.Join(s.Dir, filepath.FromSlash(rel))
	cand := e
	cand.Record, cand.Status = rel, EntryDone
	if b, err := os.ReadFile(full); err == nil {
		var head struct {
			Status Status `json:"status"`
		}
		if json.Unmarshal(b, &head) == nil && head.Status == StatusFailed {
			cand.Status = EntryFailed
		}
		if _, p := verifyRecord(s.Dir, m, pos, cand); p == nil {
			return s.UpdateEntry(pos, func(en *Entry) { *en = cand; en.Error = "" })
		}
		if err := setAside(full); err != nil {
			return err
		}
	}
	if e.Status == EntryPending {
		return nil
	}
	return s.UpdateEntry(pos, func(en *Entry) { en.Status, en.StartedAt = EntryPending, nil })
}

// clearBlockers sets aside a file standing where a study's directory
// (records/, timeseries/, work/) must be, so re-runs can write.
func (s *Store) clearBlockers() error {
	for _, d := range []string{RecordsDir, SeriesDir, WorkDir} {
		p := filepath.Join(s.Dir, d)
		if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
			if err := setAside(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// setAside renames p to p.bad-<UTC time>; a missing p is fine.
func setAside(p string) error {
	err := os.Rename(p, p+".bad-"+time.Now().UTC().Format("20060102T150405.000000000Z"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("set aside %s: %w", p, err)
	}
	return nil
}
