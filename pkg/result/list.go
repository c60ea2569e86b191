package result

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
)

// StudyInfo describes one study directory for llem results ls.
type StudyInfo struct {
	Dir       string     `json:"dir"`
	Study     string     `json:"study"`
	Status    string     `json:"status"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	Runs      int        `json:"runs" doc:"distinct runs (configs)"`
	Counts    Counts     `json:"counts" doc:"run×cycle entries by state"`
	Error     string     `json:"error,omitempty" doc:"why the manifest could not be read"`
	// Writer is the llem process working on the study now, if any.
	Writer *LockHolder `json:"writer,omitempty" doc:"the llem process writing the study now (pid, host, command, since)"`
}

// StudyDied is the status results ls shows for a study whose manifest says
// running while no process holds its lock: the llem that ran it was killed
// (or its machine went down); --resume continues it.
const StudyDied = "died"

// ListStudies finds study directories (holding manifest.json) directly
// under root or up to two levels deeper, newest first. A directory with an
// unreadable manifest is listed with its error rather than hidden.
func ListStudies(root string) ([]StudyInfo, error) {
	st, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errs.BadInput(fmt.Errorf("results root %s does not exist", root),
				"run llem eval first, or pass --root DIR (default: results_dir of the user config, LLEM_RESULTS_DIR, else ./results)")
		}
		return nil, fmt.Errorf("list studies: %w", err)
	}
	if !st.IsDir() {
		return nil, errs.BadInput(fmt.Errorf("results root %s is not a directory", root), "pass --root DIR")
	}
	var out []StudyInfo
	var visit func(dir string, depth int) error
	visit = func(dir string, depth int) error {
		if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err == nil {
			out = append(out, studyInfo(dir))
			return nil
		}
		if depth == 0 {
			return nil
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list studies: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				if err := visit(filepath.Join(dir, e.Name()), depth-1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(root, 2); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out, nil
}

func studyInfo(dir string) StudyInfo {
	in := StudyInfo{Dir: dir}
	m, err := ReadManifest(dir)
	if err != nil {
		in.Status = "unreadable"
		in.Error = err.Error()
		if me := (*ManifestError)(nil); errors.As(err, &me) && me.Err != nil {
			in.Error = me.Err.Error() // the directory is in its own column
		}
		return in
	}
	runs := map[string]bool{}
	for _, e := range m.Entries {
		runs[e.RunID] = true
	}
	in.Study, in.Status, in.StartedAt, in.EndedAt = m.Study, m.Status, m.StartedAt, m.EndedAt
	in.Runs, in.Counts = len(runs), m.Counts
	held, holder, err := LockState(dir)
	switch {
	case err != nil:
	case held:
		in.Writer = &holder
	case m.Status == StudyRunning:
		in.Status = StudyDied
	}
	return in
}
