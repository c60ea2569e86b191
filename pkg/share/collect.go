package share

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Item is one record ready to push.
type Item struct {
	RunID string
	Cycle int
	// Path is the record file, relative to the study directory.
	Path   string
	SHA256 string
	Record json.RawMessage
}

// Push is what `llem results push` would upload from one study.
type Push struct {
	Study string
	Dir   string
	Items []Item
	// Loaded is the study as read (unscrubbed records); exports that push
	// a whole dataset rebuild it from Items.
	Loaded *result.Study
	// EnvKept and EnvRemoved are the field paths present in at least one
	// record that are uploaded, and removed (see Scrub).
	EnvKept, EnvRemoved []string
	// Rewritten counts string values in which the home directory, user or
	// host name was replaced.
	Rewritten int
	// Skipped are record files the study's manifest does not vouch for
	// (result.StudyRecords): they are never pushed.
	Skipped []result.RecordProblem
}

// Collect reads what to push from path: a study directory (every verified
// record), or one record file inside a study directory
// (<study>/records/<run>/cycle-N.json; pushed only when the study's
// manifest vouches for it).
func Collect(path string, id Identity) (*Push, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, errs.BadInput(fmt.Errorf("push %s: %w", path, err), "give a study directory (llem results ls lists them) or one of its records/<run>/cycle-N.json files")
	}
	dir, only := path, ""
	if !fi.IsDir() {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, err
		}
		dir = filepath.Dir(filepath.Dir(filepath.Dir(abs)))
		rel, err := filepath.Rel(dir, abs)
		if err != nil || filepath.Base(filepath.Dir(filepath.Dir(abs))) != result.RecordsDir {
			return nil, errs.BadInput(fmt.Errorf("push %s: not a record file of a study directory", path),
				"give a study directory, or a file <study>/records/<run>/cycle-N.json")
		}
		only = filepath.ToSlash(rel)
	}
	st, err := result.LoadStudy(dir)
	if err != nil {
		return nil, err
	}
	p := &Push{Study: st.Name(), Dir: dir, Skipped: st.Problems, Loaded: st}
	kept, removed := map[string]bool{}, map[string]bool{}
	for _, r := range st.Records {
		rel := result.RecordPath(r.RunID, r.Cycle)
		if only != "" && rel != only {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("push: read %s: %w", rel, err)
		}
		sc, err := Scrub(bytes.TrimSpace(raw), id)
		if err != nil {
			return nil, fmt.Errorf("push: %s: %w", rel, err)
		}
		// The file was verified by LoadStudy; check that what was read now is
		// still that record (a writer may have replaced it meanwhile).
		var head struct {
			RunID string `json:"run_id"`
			Cycle int    `json:"cycle"`
		}
		if err := json.Unmarshal(sc.Record, &head); err != nil || head.RunID != r.RunID || head.Cycle != r.Cycle {
			return nil, fmt.Errorf("push: %s changed while it was read; try again once the study is not being written", rel)
		}
		sum, err := wire.RecordHash(sc.Record)
		if err != nil {
			return nil, fmt.Errorf("push: %s: %w", rel, err)
		}
		p.Items = append(p.Items, Item{RunID: r.RunID, Cycle: r.Cycle, Path: rel, SHA256: sum, Record: sc.Record})
		for _, k := range sc.Kept {
			kept[k] = true
		}
		for _, k := range sc.Removed {
			removed[k] = true
		}
		p.Rewritten += sc.Rewritten
	}
	if only != "" && len(p.Items) == 0 {
		return nil, errs.BadInput(fmt.Errorf("push %s: the study's manifest does not vouch for this record", path),
			"push the study directory instead; llem results show lists the records it trusts")
	}
	if len(p.Items) == 0 {
		return nil, errs.BadInput(fmt.Errorf("push %s: no records to push", dir), "the study has not finished a run yet; llem results ls shows its status")
	}
	p.EnvKept, p.EnvRemoved = sortedKeys(kept), sortedKeys(removed)
	return p, nil
}
